"""The instruction/image pairs main.py trains on (DESIGN.md section 4) and their Lightning data module.

A pairs folder lists its samples in ``seeds.json`` (``[["<sample>", ["<stem>", ...]], ...]``); each
``<sample>/`` holds ``<stem>_0.jpg`` (input), ``<stem>_1.png`` (target) and ``prompt.json``
(``{"edit": ...}``). Several folders are pooled. A batch holds either images (``input``, ``target``
in [-1, 1], ``input_ids``) or, with the latent cache, precomputed latents and text embeddings.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from instructcv.cli import UsageError
from instructcv.images import ImageReadError, load_rgb

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PairRecord:
    """One training pair: ``<root>/<sample>/<stem>_0.jpg`` -> ``<stem>_1.png`` under ``prompt.json``."""

    root: Path
    sample: str
    stem: str

    @property
    def folder(self) -> Path:
        return self.root / self.sample

    @property
    def input_path(self) -> Path:
        return self.folder / f"{self.stem}_0.jpg"

    @property
    def target_path(self) -> Path:
        return self.folder / f"{self.stem}_1.png"

    @property
    def prompt_path(self) -> Path:
        return self.folder / "prompt.json"

    @property
    def key(self) -> str:
        """Unique within its pairs folder."""
        return f"{self.sample}/{self.stem}"


def read_seeds(root: str | os.PathLike) -> list[PairRecord]:
    """The pairs listed in ``<root>/seeds.json``, in file order."""
    root = Path(root)
    seeds = root / "seeds.json"
    if not seeds.is_file():
        raise UsageError(f"{seeds}: not found; is {root} a pairs folder written by format_dataset.py?")
    try:
        entries = json.loads(seeds.read_text())
        return [PairRecord(root, str(sample), str(stem)) for sample, stems in entries for stem in stems]
    except (ValueError, TypeError) as e:
        raise UsageError(f"{seeds}: not a list of [sample, [stem, ...]] entries ({e})") from None


def scan_pairs(roots: Sequence[str | os.PathLike]) -> tuple[list[PairRecord], list[str]]:
    """Pool the pairs of ``roots``; pairs with a missing file are left out and reported (one line each)."""
    records: list[PairRecord] = []
    problems: list[str] = []
    for root in roots:
        for record in read_seeds(root):
            missing = [p for p in (record.input_path, record.target_path, record.prompt_path) if not p.is_file()]
            if missing:
                problems.append(f"{missing[0]}: missing; pair {record.key} skipped")
            else:
                records.append(record)
    return records, problems


def read_prompt(record: PairRecord) -> str:
    try:
        prompt = json.loads(record.prompt_path.read_text(encoding="utf-8"))["edit"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ImageReadError(record.prompt_path, f"no readable 'edit' instruction ({type(e).__name__})") from None
    if not isinstance(prompt, str):
        raise ImageReadError(record.prompt_path, "'edit' is not a string")
    return prompt


def load_pair_images(record: PairRecord, resolution: int) -> tuple[np.ndarray, np.ndarray]:
    """Input and target as uint8 ``(resolution, resolution, 3)`` arrays (square resize, as the paper trains)."""
    size = (resolution, resolution)
    images = [load_rgb(p).resize(size, Image.Resampling.LANCZOS) for p in (record.input_path, record.target_path)]
    return np.asarray(images[0]), np.asarray(images[1])


def to_model_range(image: np.ndarray) -> torch.Tensor:
    """uint8 ``(H, W, 3)`` -> float ``(3, H, W)`` in [-1, 1], the range the SD VAE expects."""
    return torch.from_numpy(np.array(image, dtype=np.uint8, copy=True)).permute(2, 0, 1).float().div(127.5).sub(1.0)


def tokenize(tokenizer, prompts: str | list[str]) -> torch.Tensor:
    """CLIP token ids padded to the tokenizer's 77 tokens, shape ``(B, 77)``."""
    return tokenizer(
        prompts, padding="max_length", max_length=tokenizer.model_max_length, truncation=True, return_tensors="pt"
    ).input_ids


class PairsDataset(Dataset):
    """Decoded, resized, randomly flipped image pairs with their tokenised instruction."""

    def __init__(self, records: Sequence[PairRecord], tokenizer, resolution: int, flip: bool = True):
        self.records = list(records)
        self.tokenizer = tokenizer
        self.resolution = resolution
        self.flip = flip

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict[str, Any]:
        # A file that went bad after the scan is replaced by the next pair rather than ending the run.
        for attempt in range(len(self.records)):
            record = self.records[(index + attempt) % len(self.records)]
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
        return {"input": image, "target": target, "input_ids": tokenize(self.tokenizer, prompt)[0], "key": record.key}


class PairsDataModule(pl.LightningDataModule):
    """Pooled pairs folders -> shuffled batches; optionally from the latent cache (ldm/latent_cache.py).

    With ``cache_latents`` the VAE and text encoder of ``components`` encode every pair once in
    ``prepare_data`` (local rank 0); training then reads latents and never runs the VAE.
    """

    def __init__(
        self,
        pairs: Sequence[str | os.PathLike],
        components,
        *,
        resolution: int = 256,
        batch_size: int = 4,
        num_workers: int = 4,
        flip: bool = True,
        cache_latents: bool = False,
        cache_batch_size: int = 16,
        preview_pairs: Sequence[str | os.PathLike] = (),
        preview_count: int = 4,
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
        self.records: list[PairRecord] = []
        self.dataset: Dataset | None = None
        self.skipped: list[str] = []

    def scan(self) -> list[PairRecord]:
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
            from ldm.latent_cache import build_latent_cache

            build_latent_cache(self.scan(), self.components, self.resolution, batch_size=self.cache_batch_size,
                               device=self._encode_device(), num_workers=self.num_workers)

    def setup(self, stage: str | None = None) -> None:
        if self.dataset is not None:
            return
        records = self.scan()
        if self.cache_latents:
            from ldm.latent_cache import CachedPairsDataset, open_latent_cache

            self.dataset = CachedPairsDataset(open_latent_cache(records, self.components, self.resolution), self.flip)
        else:
            self.dataset = PairsDataset(records, self.components.tokenizer, self.resolution, self.flip)

    def train_dataloader(self) -> DataLoader:
        self.setup()
        if len(self.dataset) < self.batch_size:
            raise UsageError(f"only {len(self.dataset)} pairs for a batch size of {self.batch_size}")
        return DataLoader(
            self.dataset,
            batch_size=self.batch_size,
            shuffle=True,
            drop_last=True,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            pin_memory=torch.cuda.is_available(),
        )

    def preview_records(self) -> list[PairRecord]:
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
