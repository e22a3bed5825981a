"""Answer images + ground truth -> metrics.json (DESIGN.md section 6), query by query.

Each answer is decoded once by its task (``tasks/``) at the ground truth's size and added to the
standard metric of its task and dataset (``evaluation.protocols.new_metric``), and with
``protocol="instructcv"`` also to the original project's scoring. A query whose answer is missing
or unreadable is a failure: it is listed and scored as a blank answer (no box, empty mask, no
colour, depth 0), never skipped, so a model that fails on hard images cannot look better for it.
Only a query without any usable truth is left out (and listed).

Absent-class queries (``evaluation.queries``) are scored like the others; their false positives
lower mAP and mIoU. What they got is also reported on its own (``absent``: queries, share answered
with nothing, boxes or mask area per query). When no answer at all exists for them (answers made by
another tool from the pairs folder alone) they are left out with a note instead of being scored as
failures.
"""

from __future__ import annotations

import functools
import time
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

import tasks
from evaluation import protocols
from evaluation.answers import answer_index
from evaluation.ground_truth import TruthError, data_root_of, resolve_truth
from evaluation.pairs import input_path, read_pairs
from evaluation.queries import build_queries
from instructcv.images import ImageReadError, load_rgb
from instructcv.io import write_json


@dataclass
class ScoreReport:
    """Metrics and everything a reader of them should know about how they were obtained."""

    metrics: dict[str, dict[str, dict[str, Any]]]
    n_queries: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)  # (sample, reason): scored as blank
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (sample, reason): not scored, no truth
    fallbacks: dict[str, list] = field(default_factory=dict)  # "task/dataset" -> [count, first reason]
    absent: dict[str, dict[str, Any]] = field(default_factory=dict)  # "task/dataset" -> summary
    absent_unscored: int = 0  # absent-class queries left out: no answer for any of them
    seconds: float = 0.0


@functools.lru_cache(maxsize=8)
def _input_pixels(path: str) -> np.ndarray:
    return np.asarray(load_rgb(path, exif_transpose=False))


class _AbsentTally:
    def __init__(self) -> None:
        self.queries = 0
        self.empty = 0
        self.amount = 0.0  # what the task counts (det: boxes, seg: predicted area in % of the valid pixels)

    def add(self, amount: float) -> None:
        self.queries += 1
        self.empty += amount == 0
        self.amount += amount

    def summary(self, key: str | None) -> dict[str, Any]:
        return {"queries": self.queries, "empty_pct": 100.0 * self.empty / max(self.queries, 1),
                (key or "amount_per_query"): self.amount / max(self.queries, 1)}  # fmt: skip


def _score_one(q: dict[str, Any], answer: Image.Image | None, truth: Any, pairs_dir: Path, metric: Any,
               original: Any, tally: _AbsentTally | None) -> None:  # fmt: skip
    """Read ``answer`` (None: blank) for query ``q`` and add it; raises ValueError when it cannot be read."""
    task = tasks.task(q["task"])
    image = None
    if task.uses_input:
        try:  # the input: its size, and the blue already in the photo, which is not an answer
            image = _input_pixels(str(input_path(pairs_dir, q)))
        except ImageReadError as e:
            raise TruthError(f"input image unreadable ({e})") from None
    size = task.answer_size(truth, image)
    pred = task.blank(q, size) if answer is None else task.read_answer(answer, q, size, image=image)
    metric.add_prediction(q, pred, truth)
    if original is not None:
        original.add_prediction(q, pred, truth)
    if tally is not None:
        tally.add(task.absent_amount(pred, truth))


def score_queries(queries: list[dict[str, Any]], pairs_dir: str | Path, answers: Mapping[str, str | Path], *,
                  protocol: str = "standard", data_roots: Mapping[str, Path] | None = None,
                  classes: Mapping[tuple[str, str], Sequence[str]] | None = None,
                  progress: bool = True) -> ScoreReport:  # fmt: skip
    """Score every query's answer (``answers``: sample -> image file) against its truth.

    ``classes``: (task, dataset) -> the dataset's class list (``QuerySet.classes``), which decides
    whether classification is top-1 (every class asked of every image) or verification accuracy.
    """
    from tqdm.auto import tqdm

    if protocol not in ("standard", "instructcv"):
        raise ValueError(f"unknown protocol {protocol!r} (standard or instructcv)")
    start = time.perf_counter()
    pairs_dir = Path(pairs_dir)
    report = ScoreReport(metrics={})
    absent = [q for q in queries if q.get("absent")]
    if absent and not any(q["sample"] in answers for q in absent):
        report.absent_unscored = len(absent)
        queries = [q for q in queries if not q.get("absent")]
    report.n_queries = len(queries)

    metrics: dict[tuple[str, str], Any] = {}
    originals: dict[tuple[str, str], Any] = {}
    tallies: dict[tuple[str, str], _AbsentTally] = defaultdict(_AbsentTally)
    fallbacks: Counter = Counter()
    first_reason: dict[str, str] = {}
    for q in tqdm(queries, desc="scoring", unit="query", disable=not progress, dynamic_ncols=True):
        key = (q["task"], q["dataset"])
        if key not in metrics:
            metrics[key] = protocols.new_metric(*key, classes=(classes or {}).get(key))
            originals[key] = protocols.new_instructcv_metric(q["task"]) if protocol == "instructcv" else None
        try:
            truth = resolve_truth(q, data_root_of(q, dict(data_roots or {})), pairs_dir)
        except TruthError as e:
            report.skipped.append((q["sample"], str(e)))
            continue
        if truth.source in ("target", "none") and truth.note:
            name = f"{q['task']}/{q['dataset']}"
            fallbacks[name] += 1
            first_reason.setdefault(name, truth.note)
        answer = None
        path = answers.get(q["sample"])
        if path is None:
            report.failures.append((q["sample"], "no answer image"))
        else:
            try:
                answer = load_rgb(path, exif_transpose=False)
            except ImageReadError as e:
                report.failures.append((q["sample"], f"answer unreadable ({e.reason}: {path})"))
        tally = tallies[key] if q.get("absent") else None
        try:
            _score_one(q, answer, truth.value, pairs_dir, metrics[key], originals[key], tally)
        except TruthError as e:
            report.skipped.append((q["sample"], str(e)))
        except ValueError as e:
            if answer is None:
                report.skipped.append((q["sample"], f"cannot be scored ({e})"))
                continue
            report.failures.append((q["sample"], f"answer cannot be decoded ({e})"))
            try:
                _score_one(q, None, truth.value, pairs_dir, metrics[key], originals[key], tally)
            except ValueError as e2:
                report.skipped.append((q["sample"], f"cannot be scored ({e2})"))

    for task, dataset in sorted(metrics, key=lambda k: (tasks.order(k[0]), k[1])):
        values = dict(metrics[(task, dataset)].compute())
        if originals[(task, dataset)] is not None:
            values.update(originals[(task, dataset)].compute())
        asked = [q for q in queries if (q["task"], q["dataset"]) == (task, dataset)]
        values.update(protocols.protocol_labels(task, dataset, asked, (classes or {}).get((task, dataset))))
        report.metrics.setdefault(task, {})[dataset] = values
    report.fallbacks = {k: [n, first_reason[k]] for k, n in sorted(fallbacks.items())}
    report.absent = {f"{t}/{d}": tally.summary(tasks.task(t).absent_tally) for (t, d), tally in sorted(tallies.items())}
    report.seconds = time.perf_counter() - start
    return report


def score(pairs_dir: str | Path, answers: Mapping[str, str | Path] | str | Path, out: str | Path | None = None,
          **options: Any) -> dict[str, dict[str, dict[str, Any]]]:  # fmt: skip
    """Score the answers to a pairs folder and return (and, with ``out``, write) the metrics.json dict.

    ``answers``: sample -> answer file, or a predictions folder. ``options``: ``tasks``, ``datasets``,
    ``limit``, ``seed``, ``absent_per_image`` (``evaluation.queries.build_queries``) and ``protocol``,
    ``data_roots``, ``progress`` (``score_queries``).
    """
    query_keys = ("tasks", "datasets", "limit", "seed", "absent_per_image")
    qs = build_queries(read_pairs(pairs_dir), **{k: options.pop(k) for k in query_keys if k in options})
    if isinstance(answers, (str, Path)):
        answers = answer_index(answers)
    report = score_queries(qs.queries, pairs_dir, answers, classes=qs.classes, **options)
    if out is not None:
        write_json(out, report.metrics, indent=2)
    return report.metrics
