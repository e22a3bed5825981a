"""Fine-tuning and evaluating an image classifier: the loop behind ``cls.py``.

SGD with momentum and a cosine learning-rate decay over ``epochs``; after every epoch the model is
scored on a validation part held out of the training split and the best one is saved (safetensors,
with its image processor, so ``--model <that folder>`` reopens it). The test split is touched only
once, by the best checkpoint. Unreadable images are skipped and reported, never fatal.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from baselines.classification.models import Classifier
from baselines.common import Skipped, atomic_dir, autocast
from instructcv.images import ImageReadError, load_rgb
from instructcv.io import write_json

log = logging.getLogger("baselines.cls")

Item = tuple[Path, int]  # image path, class index


class ImageDataset(torch.utils.data.Dataset):
    """(path, label) items read with ``load_rgb``; a bad image yields ``None`` and its reason."""

    def __init__(self, items: Sequence[Item], transform: Callable[..., np.ndarray], train: bool, seed: int = 0):
        self.items = list(items)
        self.transform = transform
        self.train = train
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[torch.Tensor | None, int, int, str | None]:
        path, label = self.items[i]
        try:
            img = load_rgb(path)
        except ImageReadError as e:
            return None, label, i, e.reason
        if self.train:
            # one generator per (seed, epoch, item): the same augmentation whatever the worker count
            rng = np.random.default_rng([self.seed, self.epoch, i])
            x = self.transform(img, rng)
        else:
            x = self.transform(img)
        return torch.from_numpy(x), label, i, None


def collate(batch: list) -> dict[str, Any]:
    good = [b for b in batch if b[0] is not None]
    bad = [(b[2], b[3]) for b in batch if b[0] is None]
    if not good:
        return {"pixel_values": None, "labels": None, "index": None, "bad": bad}
    return {
        "pixel_values": torch.stack([b[0] for b in good]),
        "labels": torch.tensor([b[1] for b in good], dtype=torch.long),
        "index": torch.tensor([b[2] for b in good], dtype=torch.long),
        "bad": bad,
    }


@dataclass
class LoopConfig:
    epochs: int
    lr: float
    batch_size: int
    momentum: float = 0.9
    weight_decay: float = 0.0
    workers: int = 0
    seed: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    dtype: torch.dtype = torch.float32
    progress: bool = True


def _loader(ds: ImageDataset, cfg: LoopConfig, shuffle: bool, generator: torch.Generator | None = None):
    return torch.utils.data.DataLoader(
        ds, batch_size=cfg.batch_size, shuffle=shuffle, num_workers=cfg.workers, collate_fn=collate,
        generator=generator, pin_memory=cfg.device.type == "cuda", drop_last=False,
    )


def _note_bad(batch: dict, ds: ImageDataset, skipped: Skipped, seen: set[int]) -> None:
    for i, reason in batch["bad"]:
        if i not in seen:
            seen.add(i)
            skipped.add(ds.items[i][0], reason)


@torch.no_grad()
def predict(clf: Classifier, items: Sequence[Item], cfg: LoopConfig, skipped: Skipped,
            desc: str = "eval") -> tuple[np.ndarray, np.ndarray]:
    """Softmax probabilities (N_ok, C) and the indices into ``items`` of the images that were read."""
    model = clf.model.to(cfg.device).eval()
    ds = ImageDataset(items, clf.preprocess.eval, train=False)
    probs, index, seen = [], [], set()
    for batch in tqdm(_loader(ds, cfg, shuffle=False), desc=desc, leave=False, disable=not cfg.progress):
        _note_bad(batch, ds, skipped, seen)
        if batch["pixel_values"] is None:
            continue
        with autocast(cfg.device, cfg.dtype):
            logits = model(pixel_values=batch["pixel_values"].to(cfg.device)).logits
        probs.append(torch.softmax(logits.float(), dim=-1).cpu().numpy())
        index.append(batch["index"].numpy())
    n_classes = model.config.num_labels
    if not probs:
        return np.zeros((0, n_classes), np.float32), np.zeros((0,), np.int64)
    return np.concatenate(probs), np.concatenate(index)


def save_checkpoint(clf: Classifier, folder: Path, info: dict[str, Any]) -> None:
    """Weights (model.safetensors), config, image processor and ``training.json``, replaced atomically."""
    with atomic_dir(folder) as tmp:
        clf.model.save_pretrained(tmp, safe_serialization=True)
        clf.processor.save_pretrained(tmp)
        write_json(tmp / "training.json", info, indent=2)


@dataclass
class TrainReport:
    best_epoch: int | None
    best_val: float | None
    history: list[dict[str, Any]]


def fine_tune(clf: Classifier, train_items: Sequence[Item], val_items: Sequence[Item], cfg: LoopConfig,
              ckpt_dir: Path, skipped: Skipped, val_score: Callable[[np.ndarray, np.ndarray], float],
              info: dict[str, Any]) -> TrainReport:
    """Train for ``cfg.epochs``; keep the epoch with the best ``val_score(probs, index)`` in ``ckpt_dir/best``.

    Without validation items the last epoch is kept. ``history.json`` in ``ckpt_dir`` grows by one
    entry per epoch (loss, learning rate, validation accuracy, seconds).
    """
    model = clf.model.to(cfg.device)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(trainable, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    ds = ImageDataset(train_items, clf.preprocess.train, train=True, seed=cfg.seed)
    generator = torch.Generator().manual_seed(cfg.seed)
    steps_per_epoch = max(1, math.ceil(len(ds) / cfg.batch_size))
    total = steps_per_epoch * cfg.epochs
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 0.5 * (1.0 + math.cos(math.pi * min(s, total) / total)))
    loss_fn = torch.nn.CrossEntropyLoss()
    history: list[dict[str, Any]] = []
    best_val, best_epoch, seen = -math.inf, None, set()
    epochs = tqdm(range(1, cfg.epochs + 1), desc="epochs", disable=not cfg.progress)
    for epoch in epochs:
        model.train()
        ds.epoch = epoch
        losses, n_images = [], 0
        for batch in tqdm(_loader(ds, cfg, shuffle=True, generator=generator), desc=f"epoch {epoch}",
                          leave=False, disable=not cfg.progress):
            _note_bad(batch, ds, skipped, seen)
            if batch["pixel_values"] is None:
                scheduler.step()
                continue
            x, y = batch["pixel_values"].to(cfg.device), batch["labels"].to(cfg.device)
            with autocast(cfg.device, cfg.dtype):
                logits = model(pixel_values=x).logits
            loss = loss_fn(logits.float(), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            losses.append(float(loss.detach()))
            n_images += len(y)
        if not losses:
            raise RuntimeError("no training image could be read")
        entry: dict[str, Any] = {"epoch": epoch, "loss": float(np.mean(losses)), "images": n_images,
                                 "lr": optimizer.param_groups[0]["lr"]}
        if val_items:
            probs, index = predict(clf, val_items, cfg, skipped, desc=f"val {epoch}")
            entry["val_accuracy"] = val = float(val_score(probs, index))
        else:
            val = float(epoch)  # no validation split: the last epoch wins
        history.append(entry)
        write_json(ckpt_dir / "history.json", history, indent=2)
        if val > best_val:
            best_val, best_epoch = val, epoch
            save_checkpoint(clf, ckpt_dir / "best", {**info, **entry, "selected_by": "val_accuracy" if val_items else "last epoch"})
        epochs.set_postfix(loss=f"{entry['loss']:.3f}", val=entry.get("val_accuracy", "-"))
        log.debug("epoch %d: %s", epoch, entry)
    return TrainReport(best_epoch, best_val if val_items else None, history)


def default_workers() -> int:
    """Data-loading processes: up to 8, leaving a core for the training process."""
    return max(0, min(8, (os.cpu_count() or 1) - 1))
