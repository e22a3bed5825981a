"""Dataset readers, one module per raw dataset format, looked up by name.

Each module exposes NAME, TASKS, looks_like(data_root), check_layout(data_root, split),
iter_samples(data_root, split, tasks, options) and load_ground_truth(data_root, record)
(see docs/ARCHITECTURE.md section 3).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

DATASETS = ("coco", "ade20k", "pets", "nyuv2", "sunrgbd", "voc", "imagenet", "caltech")


def get_reader(name: str) -> ModuleType:
    """The reader module of dataset ``name`` (one of ``DATASETS``)."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; expected one of {', '.join(DATASETS)}")
    return importlib.import_module(f"dataset_creation.readers.{name}")


def guess_dataset(data_root: str | Path) -> str | None:
    """The dataset whose layout ``data_root`` holds, or None when no reader recognises it."""
    for name in DATASETS:
        try:
            reader = get_reader(name)
        except ImportError:
            continue
        if reader.looks_like(Path(data_root)):
            return name
    return None
