"""The evaluation images of a dataset, read by the same reader that builds InstructCV's eval pairs.

A reader yields one sample per (image, class) query; a specialist model looks at each image once,
so the samples are grouped by image (``stem``). Ground truth comes from the reader's
``load_ground_truth``, the function the evaluator uses for InstructCV's answers, so both are scored
against identical truth (VOC borders, ADE label 0, 16-bit NYU depth, SUN RGB-D's bit rotation).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from baselines.common import Skipped
from dataset_creation.readers import get_reader
from dataset_creation.readers.base import LayoutError, Sample, SampleError
from instructcv.cli import UsageError


@dataclass
class EvalImage:
    """One raw evaluation image and the samples (queries) the reader made of it."""

    stem: str
    image: Path
    samples: list[Sample] = field(default_factory=list)

    @property
    def classes(self) -> list[str]:
        return [s.class_name for s in self.samples if s.class_name is not None]


def eval_images(dataset: str, data_root: str | Path, task: str, skipped: Skipped, *,
                limit: int | None = None, seed: int = 0, options: dict[str, Any] | None = None) -> list[EvalImage]:
    """The ``eval`` split of ``dataset`` for ``task``, grouped by image in reader order.

    Items the reader cannot use are added to ``skipped``. ``limit`` keeps a seeded subset of images.
    """
    reader = get_reader(dataset)
    if task not in reader.TASKS:
        raise UsageError(f"the {dataset} reader has no {task!r} samples (it has {', '.join(reader.TASKS)})")
    groups: dict[str, EvalImage] = {}
    try:
        for item in reader.iter_samples(data_root, "eval", [task], options or {}):
            if isinstance(item, SampleError):
                skipped.add(item.path, item.reason)
                continue
            if item.task != task:
                continue
            group = groups.setdefault(item.stem, EvalImage(item.stem, Path(item.image)))
            group.samples.append(item)
    except LayoutError as e:
        raise UsageError(str(e)) from None
    images = list(groups.values())
    if limit is not None and len(images) > limit:
        keep = np.sort(np.random.default_rng([seed, 4243]).choice(len(images), size=limit, replace=False))
        images = [images[i] for i in keep]
    return images


def load_truth(dataset: str, data_root: str | Path, sample: Sample) -> Any:
    """The reader's ground truth of ``sample`` (raises ``SampleError`` when unusable)."""
    return get_reader(dataset).load_ground_truth(data_root, sample)
