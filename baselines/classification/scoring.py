"""Top-1 accuracy of classifier outputs, scored by the shared ``tasks`` classification metric.

Every image is asked about every class (present = its label, predicted = the arg-max class,
score = the softmax probability), which is the protocol under which the shared metric reports
top-1 ``accuracy`` over the dataset's class list, exactly as for InstructCV's answers.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tasks import get_task


def top1_metrics(probs: np.ndarray, items: Sequence[tuple[Path, int]], classes: Sequence[str],
                 dataset: str) -> dict[str, Any]:
    """Metrics dict of ``probs`` (N, C) against the labels of ``items``: ``accuracy`` (top-1, percent)
    and ``n``, the number of (image, class) queries, N x C, as the metric counts them."""
    metric = get_task("cls").new_metric(dataset)
    predicted = probs.argmax(axis=1) if len(probs) else np.zeros(0, np.int64)
    for row, (path, label) in enumerate(items):
        image_id = str(path)  # file names repeat across Caltech-101 class folders
        for c, name in enumerate(classes):
            metric.add(image_id, name, present=c == label, predicted=c == predicted[row], score=float(probs[row, c]))
    return metric.compute()
