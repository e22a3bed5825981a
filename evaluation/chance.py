"""Chance scores: the metrics of answers that ignore the input (empty mask, always present, mean depth, no boxes).

A number means little without the score of a trivial answer beside it: 61.5 % verification accuracy is
chance when 61.5 % of the queries are "present". Each task offers its trivial answers
(``Task.trivial_answers``); they are scored on the same queries, by the same code, as a model's answers,
and the best of them per task and dataset is the chance score.
"""

from __future__ import annotations

import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

import tasks
from evaluation.pairs import read_pairs, target_path
from evaluation.queries import build_queries
from evaluation.scoring import score_queries
from evaluation.table import COLUMNS
from instructcv.io import save_image

LOWER_IS_BETTER = {(c.task, c.metric) for c in COLUMNS if not c.higher_is_better}


def headline(values: dict[str, Any]) -> str:
    """The first metric of a metrics.json entry: the one tables and the demo lead with."""
    return next(k for k in values if k != "n")


def mean_targets(train_pairs: str | Path) -> dict[tuple[str, str], float]:
    """(task, dataset) -> mean grey level of the training target images (the depth code for depth)."""
    sums: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0.0])
    for row in read_pairs(train_pairs):
        with Image.open(target_path(train_pairs, row)) as image:
            grey = np.asarray(image.convert("L"), dtype=np.float64)
        entry = sums[(row["task"], row["dataset"])]
        entry[0] += grey.sum()
        entry[1] += grey.size
    return {key: total / max(count, 1.0) for key, (total, count) in sums.items()}


def _better(task: str, metric: str, a: float | None, b: float | None) -> bool:
    """Whether value ``a`` beats ``b`` (None: nothing scored, never better)."""
    if a is None:
        return False
    if b is None:
        return True
    return a < b if (task, metric) in LOWER_IS_BETTER else a > b


def chance_metrics(eval_pairs: str | Path, train_pairs: str | Path, seed: int = 0
                   ) -> dict[str, dict[str, dict[str, Any]]]:  # fmt: skip
    """task -> dataset -> {"answer": label, "metric": name, "value": v} of the best trivial answer.

    The queries are evaluate.py's for the same ``seed`` (absent-class ones included).
    """
    qs = build_queries(read_pairs(eval_pairs), seed=seed)
    means = mean_targets(train_pairs)
    best: dict[str, dict[str, dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="chance_") as work:
        answers_by_label: dict[str, dict[str, Path]] = defaultdict(dict)
        for i, q in enumerate(qs.queries):
            options = tasks.task(q["task"]).trivial_answers(q, means.get((q["task"], q["dataset"]), 0.0))
            for j, (label, image) in enumerate(options.items()):
                path = Path(work) / f"{i}_{j}.png"
                save_image(path, Image.fromarray(image))
                answers_by_label[label][q["sample"]] = path
        for label, answers in answers_by_label.items():
            asked = [q for q in qs.queries if q["sample"] in answers]
            report = score_queries(asked, eval_pairs, answers, classes=qs.classes, progress=False)
            for task, per_dataset in report.metrics.items():
                for dataset, values in per_dataset.items():
                    metric = headline(values)
                    held = best.setdefault(task, {}).get(dataset)
                    if held is None or _better(task, metric, values[metric], held["value"]):
                        best[task][dataset] = {"answer": label, "metric": metric, "value": values[metric]}
    return best
