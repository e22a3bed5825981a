"""The instruction/image pairs main.py trains on and their Lightning data module.

The samples of one or more pairs folders (instructcv.pairs reads the layout) are pooled. A batch
holds either images (``input``, ``target`` in [-1, 1], ``input_ids``, made by ldm/batch.py) or, with
the latent cache (ldm/latent_cache.py), precomputed latents and text embeddings.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset, WeightedRandomSampler

from instructcv.cli import UsageError
from instructcv.images import ImageReadError
from instructcv.pairs import PairSample, read_prompt, sample_tasks, scan_pairs
from ldm.batch import load_pair_images, to_model_range, tokenize
from ldm.latent_cache import CachedPairsDataset, build_latent_cache, open_latent_cache

log = logging.getLogger(__name__)


class PairsDataset(Dataset):
    """Decoded, resized, randomly flipped image pairs with their tokenised instruction."""

    def __init__(self, records: Sequence[PairSample], tokenizer, resolution: int, flip: bool = True,
                 tasks: Sequence[str | None] | None = None):
        self.records = list(records)
        self.tokenizer = tokenizer
        self.resolution = resolution
        self.flip = flip
        self.tasks = list(tasks) if tasks is not None else [None] * len(self.records)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict[str, Any]:
        # A file that went bad after the scan is replaced by the next pair rather than ending the run.
        for attempt in range(len(self.records)):
            used = (index + attempt) % len(self.records)
            record = self.records[used]
            try:
                image, target = load_pair_images(record, self.resolution)
                prompt = read_prompt(record)
                break
            except ImageReadError as e:
                log.warning("%s; using the next pair instead", e)
        else:
            raise RuntimeError("no readable pair left in the dataset")
        image, target = to_model_range(image), to_model_range(target)
        if self.flip and torch.rand(()) < 0.5:  # flip both, or the answer would not match the input
            image, target = image.flip(-1), target.flip(-1)
        return {"input": image, "target": target, "input_ids": tokenize(self.tokenizer, prompt)[0], "key": record.key,
                "task": self.tasks[used] or ""}


def task_sampling_weights(tasks: Sequence[str | None], weights: Mapping[str, float]) -> torch.Tensor:
    """Per-sample sampling weights that give each task a share of the draws proportional to ``weights[task]``
    (whatever its number of pairs); ``UsageError`` when a task of the pairs has no weight."""
    counts: dict[str | None, int] = {}
    for task in tasks:
        counts[task] = counts.get(task, 0) + 1
    missing = sorted(str(t) for t in counts if t not in weights)
    if missing:
        raise UsageError(f"data.params.task_weights has no weight for {', '.join(missing)} "
                         f"(the training pairs hold {', '.join(sorted(map(str, counts)))})")
    if not any(weights[t] > 0 for t in counts):
        raise UsageError("data.params.task_weights gives every task of the training pairs weight 0")
    return torch.tensor([float(weights[t]) / counts[t] for t in tasks], dtype=torch.double)


class PairsDataModule(pl.LightningDataModule):
    """Pooled pairs folders -> shuffled batches; optionally from the latent cache (ldm/latent_cache.py).

    The keyword arguments are ``data.params`` of the config (main.py's DEFAULTS holds their defaults and
    meanings). With ``cache_latents`` the VAE and text encoder of ``components`` encode every pair once
    in ``prepare_data`` (local rank 0); training then reads latents and never runs the VAE.
    """

    def __init__(
        self,
        components,
        *,
        pairs: Sequence[str | os.PathLike],
        resolution: int,
        batch_size: int,
        num_workers: int,
        flip: bool,
        cache_latents: bool,
        cache_batch_size: int,
        preview_pairs: Sequence[str | os.PathLike],
        preview_count: int,
        task_weights: Mapping[str, float],
    ):
        super().__init__()
        if isinstance(pairs, (str, os.PathLike)):
            pairs = [pairs]
        if not pairs:
            raise UsageError("data.params.pairs lists no pairs folder")
        self.roots = [Path(p) for p in pairs]
        self.components = components
        self.resolution = resolution
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.flip = flip
        self.cache_latents = cache_latents
        self.cache_batch_size = cache_batch_size
        self.preview_roots = [Path(p) for p in preview_pairs]
        self.preview_count = preview_count
        self.task_weights = dict(task_weights or {})
        self.records: list[PairSample] = []
        self.dataset: Dataset | None = None
        self.skipped: list[str] = []

    def scan(self) -> list[PairSample]:
        if not self.records:
            self.records, self.skipped = scan_pairs(self.roots)
            for line in self.skipped[:10]:
                log.warning(line)
            if len(self.skipped) > 10:
                log.warning("... and %d more pairs with missing files", len(self.skipped) - 10)
            if not self.records:
                raise UsageError(f"no complete pairs in {', '.join(map(str, self.roots))}")
        return self.records

    def prepare_data(self) -> None:
        if self.cache_latents:
            build_latent_cache(self.scan(), self.components, self.resolution, batch_size=self.cache_batch_size,
                               device=self._encode_device(), num_workers=self.num_workers, flip=self.flip)

    def setup(self, stage: str | None = None) -> None:
        if self.dataset is not None:
            return
        records = self.scan()
        task_of = dict(zip((r.key for r in records), sample_tasks(records), strict=True))
        if self.cache_latents:
            cache = open_latent_cache(records, self.components, self.resolution, flip=self.flip)
            self.dataset = CachedPairsDataset(cache, self.flip, [task_of[key] for key in cache.keys])
        else:
            self.dataset = PairsDataset(records, self.components.tokenizer, self.resolution, self.flip,
                                        [task_of[r.key] for r in records])

    def train_dataloader(self) -> DataLoader:
        self.setup()
        if len(self.dataset) < self.batch_size:
            raise UsageError(f"only {len(self.dataset)} pairs for a batch size of {self.batch_size}")
        sampler = None
        if self.task_weights:  # each task's share of the draws set by its weight, not by its number of pairs
            weights = task_sampling_weights(self.dataset.tasks, self.task_weights)
            sampler = WeightedRandomSampler(weights, num_samples=len(weights), replacement=True)
        return DataLoader(
            self.dataset,
            batch_size=self.batch_size,
            shuffle=sampler is None,
            sampler=sampler,
            drop_last=True,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            pin_memory=torch.cuda.is_available(),
        )

    def preview_records(self) -> list[PairSample]:
        """A fixed, evenly spread handful of pairs for the image logger (from preview_pairs if given)."""
        records = scan_pairs(self.preview_roots)[0] if self.preview_roots else self.scan()
        if not records or self.preview_count <= 0:
            return []
        picks = np.linspace(0, len(records) - 1, num=min(self.preview_count, len(records))).round().astype(int)
        return [records[i] for i in picks]

    def _encode_device(self) -> torch.device:
        trainer = getattr(self, "trainer", None)
        if trainer is not None:
            return trainer.strategy.root_device
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
