"""The classification splits, taken from the same dataset readers that build InstructCV's pairs.

Each reader's ``list_split(data_root, split)`` returns ``(image path, label)`` items and the class
names, so the baseline trains on exactly InstructCV's training images and is tested on exactly its
evaluation images (Pets: the official trainval/test lists; Caltech-101: the reader's fixed seeded
per-class split; ImageNet-sub: the reader's split). A validation part is held out of the training
split, per class and seeded, to choose the best epoch without looking at the test images.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dataset_creation.readers import get_reader
from dataset_creation.readers.base import LayoutError
from instructcv.cli import UsageError

# --dataset of cls.py -> dataset reader name (and the dataset key of the result file).
READERS = {"pets": "pets", "caltech": "caltech", "imagenet-sub": "imagenet"}
DEFAULT_ROOTS = {"pets": "data/oxford-iiit-pet", "caltech": "data/caltech101", "imagenet-sub": "data/imagenet"}

Item = tuple[Path, int]


@dataclass
class ClassificationSplit:
    classes: list[str]
    train: list[Item]
    val: list[Item]
    test: list[Item]


def load_split(dataset: str, data_root: str | Path, val_fraction: float = 0.1, seed: int = 0,
               limit: int | None = None) -> ClassificationSplit:
    """Train / val / test items of ``dataset``; ``limit`` keeps a seeded subset of each (quick runs)."""
    reader_name = READERS[dataset]
    try:
        reader = get_reader(reader_name)
    except ImportError as e:
        raise UsageError(f"the {reader_name} dataset reader is not available ({e})") from None
    if not hasattr(reader, "list_split"):
        raise UsageError(f"the {reader_name} dataset reader has no list_split() for classification yet")
    try:
        train, classes = reader.list_split(data_root, "train")
        test, test_classes = reader.list_split(data_root, "eval")
    except LayoutError as e:
        raise UsageError(str(e)) from None
    if list(test_classes) != list(classes):
        raise UsageError(f"{data_root}: the train and eval class lists of {dataset} differ")
    if not train or not test:
        which = "training" if not train else "evaluation"
        raise UsageError(f"{data_root}: no {which} image of {dataset} found on disk")
    train, val = hold_out(train, val_fraction, seed)
    if limit:
        train, val, test = (subset(x, limit, seed) for x in (train, val, test))
    return ClassificationSplit(list(classes), train, val, test)


def hold_out(items: list[Item], fraction: float, seed: int) -> tuple[list[Item], list[Item]]:
    """Move ``fraction`` of each class (rounded, at least one when a class has two or more) to validation."""
    if fraction <= 0:
        return list(items), []
    by_class: dict[int, list[int]] = defaultdict(list)
    for i, (_, label) in enumerate(items):
        by_class[label].append(i)
    rng = np.random.default_rng([seed, 1109])
    val_idx: set[int] = set()
    for label in sorted(by_class):
        idx = by_class[label]
        if len(idx) < 2:
            continue
        k = max(1, int(round(len(idx) * fraction)))
        val_idx.update(int(i) for i in rng.permutation(idx)[:k])
    train = [it for i, it in enumerate(items) if i not in val_idx]
    val = [it for i, it in enumerate(items) if i in val_idx]
    return train, val


def subset(items: list[Item], limit: int, seed: int) -> list[Item]:
    """A seeded subset of at most ``limit`` items, in their original order."""
    if len(items) <= limit:
        return list(items)
    keep = np.sort(np.random.default_rng([seed, 2203]).choice(len(items), size=limit, replace=False))
    return [items[i] for i in keep]
