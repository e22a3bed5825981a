"""Training batches from WebDataset shards (``dataset_creation/pack_pairs.py``): ``data.params.shards``.

``ShardsDataset`` is an IterableDataset over the tar shards, reading them through
``webdataset.tariterators`` by the plan of ``ldm/shard_reader.py``: every rank reads its own
contiguous part of each epoch's seeded shard order (disjoint between ranks, together covering the
epoch), each data-loader worker a part of that, through a seeded shuffle buffer. It yields whole
batches, the same number on every rank and worker, so DDP steps stay in lock step; the samples
beyond the last full batch of a worker (fewer than ``workers x batch_size`` per rank) are left out
of that epoch. Batches are those of ``ldm.data`` (images: ``input``, ``target``, ``input_ids``) or
of the latent cache (``input_mode``, ``target_mean``, ``target_std``, ``text_embedding``).

Resuming: ``EpochLoader`` tells the dataset, before each pass, the epoch and how many batches of it
this rank already trained on (from the trainer's global step); each worker skips its
share of them in the known emission order without reading them, so a resumed run continues the
epoch exactly where the checkpoint left it.
"""

from __future__ import annotations

import io
import json
import logging
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from PIL import Image, ImageOps
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from instructcv.cli import UsageError
from instructcv.images import ImageReadError, to_rgb
from instructcv.pairs import PROMPT_FILE, PairSample
from ldm.batch import to_model_range, tokenize
from ldm.data import PairsDataModule
from ldm.latent_cache import fingerprint
from ldm.shard_reader import SampleReader, ShardSet, buffer_order, emit, open_shards, rank_share, worker_plan

log = logging.getLogger(__name__)


def decode_image(data: bytes, name: str, resolution: int) -> np.ndarray:
    """Encoded image bytes -> uint8 ``(resolution, resolution, 3)`` RGB, as ``ldm.batch.load_pair_images`` resizes."""
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
        image = ImageOps.exif_transpose(image)
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        raise ImageReadError(name, f"cannot decode image ({e})") from None
    return np.asarray(to_rgb(image).resize((resolution, resolution), Image.Resampling.LANCZOS))


class ShardsDataset(IterableDataset):
    """Batches of one rank from image or latent shards; ``set_position`` picks the epoch and resume point."""

    def __init__(self, shard_set: ShardSet, *, batch_size: int, resolution: int, tokenizer=None, seed: int = 0,
                 rank: int = 0, world_size: int = 1, num_workers: int = 0, shuffle_buffer: int = 1000,
                 flip: bool = True):
        self.shard_set = shard_set
        self.batch_size, self.resolution, self.tokenizer = batch_size, resolution, tokenizer
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.workers = max(1, num_workers)
        self.shuffle_buffer, self.flip = shuffle_buffer, flip
        self.epoch = self.skip_batches = 0
        self._text: dict[int, np.ndarray] = {}  # latent shards: text embeddings per folder, memory-mapped

    def set_position(self, epoch: int, skip_batches: int = 0) -> None:
        """The next pass reads ``epoch``, leaving out the first ``skip_batches`` batches (already trained on)."""
        self.epoch, self.skip_batches = epoch, skip_batches

    def batches_per_worker(self, workers: int | None = None) -> int:
        share = rank_share(self.shard_set.total, self.world_size)
        return share // (workers or self.workers) // self.batch_size

    def __len__(self) -> int:
        return self.batches_per_worker() * self.workers

    def __getstate__(self) -> dict[str, Any]:  # workers open their own files and memory maps
        return {**self.__dict__, "_text": {}}

    # ---- samples ---------------------------------------------------------------------------------

    def worker_order(self, epoch: int, worker: int, workers: int):
        """(plan, emission order, flip flags) of one worker's part of an epoch; flags by emission index."""
        plan = worker_plan(self.shard_set.counts, self.seed, epoch, self.rank, self.world_size, worker, workers)
        rng = np.random.default_rng([self.seed, epoch, self.rank, worker, workers])
        order = buffer_order(len(plan[0]), self.shuffle_buffer, rng)
        return plan, order, rng.random(len(order)) < 0.5

    def raw_samples(self, epoch: int, worker: int = 0, workers: int = 1, start: int = 0,
                    stop: int | None = None) -> Iterator[tuple[int, dict[str, bytes]]]:
        """(emission index, tar members) of a worker's part, from ``start`` up to ``stop`` (all by default)."""
        plan, order, _ = self.worker_order(epoch, worker, workers)
        reader = SampleReader()
        try:
            yield from emit(self.shard_set.shards, plan, order[:stop], start, reader)
        finally:
            reader.close()

    def __iter__(self) -> Iterator[dict[str, Any]]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        per_worker = self.batches_per_worker(workers)
        done = max(0, -(-(self.skip_batches - worker) // workers))  # batches j < skip with j % workers == worker
        plan, order, flips = self.worker_order(self.epoch, worker, workers)
        reader = SampleReader()
        items: list[dict[str, Any]] = []
        last_good: dict[str, Any] | None = None
        try:
            stop = per_worker * self.batch_size
            for t, sample in emit(self.shard_set.shards, plan, order[:stop], min(done * self.batch_size, stop), reader):
                try:
                    last_good = self.decode(sample, bool(flips[t] and self.flip))
                except (ImageReadError, OSError, ValueError, KeyError) as e:
                    if last_good is None:
                        raise
                    log.warning("%s; using the previous sample instead", e)  # keeps every rank's batch count
                items.append(last_good)
                if len(items) == self.batch_size:
                    yield self.collate(items)
                    items = []
        finally:
            reader.close()

    # ---- decoding --------------------------------------------------------------------------------

    def decode(self, sample: dict[str, Any], flip: bool) -> dict[str, Any]:
        if self.shard_set.kind == "latents":
            return self.decode_latents(sample, flip)
        name = f"{sample['__url__']}:{sample['__key__']}"
        entry = json.loads(sample[PROMPT_FILE])
        prompt = entry["edit"]
        pair = [to_model_range(decode_image(sample[ext], f"{name}.{ext}", self.resolution)) for ext in ("jpg", "png")]
        if flip:  # both, or the answer would not match the input
            pair = [image.flip(-1) for image in pair]
        return {"input": pair[0], "target": pair[1], "prompt": prompt, "key": sample["__key__"],
                "task": entry.get("task") or ""}

    def decode_latents(self, sample: dict[str, Any], flip: bool) -> dict[str, Any]:
        latents = np.load(io.BytesIO(sample["latents.npy"]), allow_pickle=False)
        meta = json.loads(sample["json"])
        view = latents[1 if flip and len(latents) > 1 else 0]  # the mirrored orientation, encoded as such
        folder = sample["__folder__"]
        root, index = self.shard_set.roots[folder], self.shard_set.indexes[folder]
        if folder not in self._text:
            self._text[folder] = np.load(root / index["text_embeddings"], mmap_mode="r")
        item = {array: torch.from_numpy(np.array(view[i])) for i, array in enumerate(index["arrays"])}
        item["text_embedding"] = torch.from_numpy(np.array(self._text[folder][meta["prompt"]]))
        item["key"], item["task"] = sample["__key__"], meta.get("task") or ""
        return item

    def collate(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        batch: dict[str, Any] = {"key": [it["key"] for it in items], "task": [it.get("task", "") for it in items]}
        if "prompt" in items[0]:
            batch["input_ids"] = tokenize(self.tokenizer, [it["prompt"] for it in items])
        for name in items[0]:
            if isinstance(items[0][name], torch.Tensor):
                batch[name] = torch.stack([it[name] for it in items])
        return batch


class EpochLoader(DataLoader):
    """A DataLoader that, before each pass, gives its ShardsDataset ``position(batches per epoch)``."""

    def __init__(self, dataset: ShardsDataset, position: Callable[[int], tuple[int, int]], **kwargs: Any):
        super().__init__(dataset, batch_size=None, persistent_workers=False, **kwargs)
        self.position = position

    def __iter__(self):
        self.dataset.set_position(*self.position(len(self.dataset)))
        return super().__iter__()


class ShardsDataModule(pl.LightningDataModule):
    """Pooled shards folders -> per-rank batches; previews come from ``preview_pairs`` (shards hold no pairs folder)."""

    def __init__(self, shards: Sequence[str | os.PathLike], components, *, resolution: int = 256,
                 batch_size: int = 4, num_workers: int = 4, flip: bool = True, shuffle_buffer: int = 1000,
                 seed: int = 0, preview_pairs: Sequence[str | os.PathLike] = (), preview_count: int = 4):
        super().__init__()
        self.roots = [Path(p) for p in ([shards] if isinstance(shards, (str, os.PathLike)) else shards)]
        self.components = components
        self.resolution, self.batch_size, self.num_workers = resolution, batch_size, num_workers
        self.flip, self.shuffle_buffer, self.seed = flip, shuffle_buffer, seed
        self.preview_roots, self.preview_count = [Path(p) for p in preview_pairs], preview_count
        self._passes = 0
        self.shard_set = open_shards(self.roots)  # now: a bad folder is a usage error before training starts
        if self.shard_set.kind == "latents":
            self.check_latents(check_weights=False)

    def check_latents(self, check_weights: bool = True) -> None:
        """Latent shards must match the training resolution and (once weights are final) the VAE and text encoder."""
        for root, index in zip(self.shard_set.roots, self.shard_set.indexes, strict=True):
            if index["resolution"] != self.resolution:
                raise UsageError(f"{root}: latents packed at {index['resolution']} px, but data.params.resolution="
                                 f"{self.resolution}; pack again with --resolution {self.resolution}")
            if self.flip and index["orientations"] < 2:
                log.warning("%s: packed without flips (--no-flip); training on the stored orientation only", root)
            if check_weights and index["fingerprint"] != fingerprint(self.components, self.resolution):
                raise UsageError(f"{root}: latents encoded by another VAE or text encoder than the model's; "
                                 "pack again with --ckpt of this model")

    def train_dataloader(self) -> DataLoader:
        trainer = getattr(self, "trainer", None)
        rank, world = (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)
        dataset = ShardsDataset(
            self.shard_set, batch_size=self.batch_size, resolution=self.resolution,
            tokenizer=self.components.tokenizer, seed=self.seed, rank=rank, world_size=world,
            num_workers=self.num_workers, shuffle_buffer=self.shuffle_buffer, flip=self.flip)
        if len(dataset) == 0:
            raise UsageError(f"{self.shard_set.total} samples in the shards are too few for {world} rank(s) x "
                             f"{dataset.workers} worker(s) x batch size {self.batch_size}")
        if self.shard_set.kind == "latents":
            self.check_latents()
        # Lightning warns that __len__ may be wrong with several workers: here every worker yields exactly its share
        warnings.filterwarnings("ignore", message="Your `IterableDataset` has `__len__` defined")
        warnings.filterwarnings("ignore", message=".*your dataloader is not resumable")  # it is: see position()
        return EpochLoader(dataset, self.position, num_workers=self.num_workers,
                           pin_memory=torch.cuda.is_available())

    def position(self, batches_per_epoch: int) -> tuple[int, int]:
        """(epoch, batches of it already trained on), from the global step alone; counts passes without a trainer.

        Lightning's own epoch counter is not used: a checkpoint written as fit() ends already counts
        the next epoch. Each epoch is ``ceil(batches / accumulate)`` optimiser steps (Lightning steps
        on an epoch's last, partial group too).
        """
        trainer = getattr(self, "trainer", None)
        if trainer is None:
            self._passes += 1
            return self._passes - 1, 0
        accumulate = trainer.accumulate_grad_batches
        steps_per_epoch = -(-batches_per_epoch // accumulate)
        epoch, steps = divmod(trainer.global_step, steps_per_epoch)
        return epoch, min(steps * accumulate, batches_per_epoch)

    def preview_records(self) -> list[PairSample]:
        """Preview pairs for the image logger: only from ``preview_pairs``."""
        if not self.preview_roots:
            log.warning("training from shards: no preview images unless data.params.preview_pairs names a pairs folder")
            return []
        return PairsDataModule(self.preview_roots, self.components, preview_count=self.preview_count).preview_records()
