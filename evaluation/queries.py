"""What the evaluation asks: the pairs samples, seeded absent-class queries, and ``--limit`` subsets.

A query is a metadata row (``evaluation.pairs``); generated ones carry ``"absent": True`` and
``"input_sample"`` (the pairs sample whose input image they reuse).

Absent-class queries. The pairs builder writes det and seg samples only for classes present in an
image, so a model that draws a box or a mask for whatever it is asked about would never be caught.
The evaluator adds, for every image with det or seg samples, ``absent_per_image`` queries (default 1;
-1: every class) for classes that are *not* in the image: drawn, seeded by (``seed``, task, dataset,
stem), from the classes that have that task's samples somewhere in the dataset's eval pairs (the full
class list on the real validation sets), minus every class the image has a sample for in any task
(cls: positives, which on COCO include classes present only as crowd regions). Their sample name
follows the pairs rule (``<stem>_<task>_<class_slug>``), their instruction is the task's template for
that class (rephrased or fixed, as the pairs use), and their truth is "nothing": an empty mask (the reader's ignore regions kept) or no boxes (the class's crowd /
difficult boxes, if any, stay ignore regions). A box or mask drawn for them is a false positive in the
standard metrics (COCOeval: unmatched detections of a category; mIoU: pixels added to the class's union).

``--limit N`` keeps N images per (task, dataset), chosen with ``numpy.random.default_rng([seed, 4243])``
over the images sorted by stem (the formula ``baselines/eval_data.py`` uses), with all their queries.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import tasks
from instructcv.cli import UsageError

# tasks whose pairs hold present classes only, so that the evaluator asks about absent ones too
ABSENT_TASKS = tuple(tag for tag in tasks.TAGS if tasks.task(tag).absent_tally)
# gt_args keys that name the queried class; an absent query must not inherit them
_CLASS_ARGS = ("label", "category_id")


def class_slug(name: str) -> str:
    """Class names in sample names: lower case, spaces (and slashes) as ``_`` (the pairs rule)."""
    return "_".join(str(name).strip().lower().replace("/", " ").split())


def stable_rng(seed: int, *keys: str) -> np.random.Generator:
    """A generator determined by ``seed`` and ``keys`` (sha256, never Python's salted ``hash()``)."""
    digest = hashlib.sha256("\x1f".join(keys).encode("utf-8")).digest()
    return np.random.default_rng([int(seed), int.from_bytes(digest[:8], "little")])


def prompt_style(rows: Iterable[dict[str, Any]], task: str) -> str:
    """``fixed`` when every row of ``task`` carries the fixed template's sentence, else ``rephrased``."""
    module = tasks.task(task)
    seen = False
    for row in rows:
        if row["task"] != task:
            continue
        seen = True
        try:
            fixed = module.make_instruction(row["sample"], 0, "fixed", class_name=row.get("class"),
                                            positive=(row.get("colors") or [None, None])[0],
                                            negative=(row.get("colors") or [None, None])[1])  # fmt: skip
        except ValueError:
            return "rephrased"
        if " ".join(str(row.get("edit", "")).split()) != " ".join(fixed.split()):
            return "rephrased"
    return "fixed" if seen else "rephrased"


def select_rows(rows: list[dict[str, Any]], tasks: Sequence[str] | None, datasets: Sequence[str] | None
                ) -> list[dict[str, Any]]:  # fmt: skip
    """Rows of the given tasks and datasets (None: all); a name matching nothing is a ``UsageError``."""
    for option, wanted, key in (("--tasks", tasks, "task"), ("--datasets", datasets, "dataset")):
        if wanted:
            have = {r[key] for r in rows}
            missing = [w for w in wanted if w not in have]
            if len(missing) == len(wanted):
                raise UsageError(f"{option} {' '.join(wanted)}: the pairs have none of these "
                                 f"(they have {', '.join(sorted(have))})")  # fmt: skip
    return [
        r for r in rows if (not tasks or r["task"] in tasks) and (not datasets or r["dataset"] in datasets)
    ]


def limit_rows(rows: list[dict[str, Any]], limit: int | None, seed: int = 0) -> list[dict[str, Any]]:
    """Keep ``limit`` images (stems) per (task, dataset), the same ones for the same seed and pairs."""
    if limit is None:
        return rows
    stems: dict[tuple[str, str], set[str]] = defaultdict(set)
    for r in rows:
        stems[(r["task"], r["dataset"])].add(r["stem"])
    keep: set[tuple[str, str, str]] = set()
    for (task, dataset), found in stems.items():
        names = sorted(found)
        if len(names) > limit:
            picked = np.sort(
                np.random.default_rng([seed, 4243]).choice(len(names), size=limit, replace=False)
            )
            names = [names[i] for i in picked]
        keep.update((task, dataset, s) for s in names)
    return [r for r in rows if (r["task"], r["dataset"], r["stem"]) in keep]


def _present_classes(rows: list[dict[str, Any]]) -> dict[tuple[str, str], set[str]]:
    """(dataset, stem) -> every class the image has a sample for (cls: positives only)."""
    present: dict[tuple[str, str], set[str]] = defaultdict(set)
    for r in rows:
        if r.get("class") is None or not r.get("positive", True):  # cls negatives name absent classes
            continue
        present[(r["dataset"], r["stem"])].add(str(r["class"]))
    return present


def absent_queries(all_rows: list[dict[str, Any]], kept: list[dict[str, Any]], per_image: int,
                   seed: int = 0) -> list[dict[str, Any]]:  # fmt: skip
    """Generated absent-class queries (see the module docstring) for the det/seg images of ``kept``.

    ``all_rows``: every row of the pairs (class pools and present classes come from it).
    ``per_image``: queries per image and task; 0 none, negative every absent class.
    """
    if per_image == 0:
        return []
    pools: dict[tuple[str, str], list[str]] = defaultdict(list)
    for r in all_rows:
        if r["task"] in ABSENT_TASKS and r.get("class") is not None:
            pools[(r["task"], r["dataset"])].append(str(r["class"]))
    pools = {k: sorted(set(v)) for k, v in pools.items()}
    present = _present_classes(all_rows)
    styles = {t: prompt_style(all_rows, t) for t in ABSENT_TASKS}

    first: dict[tuple[str, str, str], dict[str, Any]] = {}  # (task, dataset, stem) -> its first row
    for r in kept:
        if r["task"] in ABSENT_TASKS and r.get("class") is not None:
            first.setdefault((r["task"], r["dataset"], r["stem"]), r)
    out: list[dict[str, Any]] = []
    for (task, dataset, stem), row in sorted(first.items()):
        candidates = [c for c in pools.get((task, dataset), []) if c not in present[(dataset, stem)]]
        if not candidates:
            continue
        if 0 < per_image < len(candidates):
            picked = stable_rng(seed, "absent", task, dataset, stem).choice(
                len(candidates), per_image, replace=False
            )
            candidates = [candidates[i] for i in sorted(picked)]
        for cls in candidates:
            sample = f"{stem}_{task}_{class_slug(cls)}"
            query = {k: v for k, v in row.items() if k not in ("bbox", "crowd", "positive", "colors")}
            args = {k: v for k, v in (row.get("gt_args") or {}).items() if k not in _CLASS_ARGS}
            query.update(
                sample=sample,
                **{"class": cls},
                absent=True,
                input_sample=row["sample"],
                edit=tasks.task(task).make_instruction(sample, seed, styles[task], class_name=cls),
                **tasks.task(task).absent_fields(),
            )
            if args:
                query["gt_args"] = args
            else:
                query.pop("gt_args", None)
            out.append(query)
    return out


@dataclass
class QuerySet:
    """The queries of one evaluation and how they were chosen."""

    queries: list[dict[str, Any]]
    n_pairs: int  # pairs samples selected (after --tasks/--datasets/--limit)
    n_absent: int  # generated absent-class queries
    # (task, dataset) -> every class it has in the pairs (before --limit): the class list of cls top-1
    classes: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def build_queries(rows: list[dict[str, Any]], *, tasks: Sequence[str] | None = None,
                  datasets: Sequence[str] | None = None, limit: int | None = None, seed: int = 0,
                  absent_per_image: int = 1) -> QuerySet:  # fmt: skip
    """Every selected pairs sample plus its images' absent-class queries, sorted by sample name."""
    if limit is not None and limit < 1:
        raise UsageError(f"--limit must be at least 1, got {limit}")
    notes = []
    train = sum(r.get("split") == "train" for r in rows)
    if train:  # a training pairs folder, or a mixed one: its training images must not be scored
        rows = [r for r in rows if r.get("split") != "train"]
        if not rows:
            raise UsageError("the pairs folder holds training samples only; build evaluation pairs with "
                             "format_dataset.py --split eval")  # fmt: skip
        notes.append(f"{train} training sample(s) in the pairs folder are not scored")
    chosen = limit_rows(select_rows(rows, tasks, datasets), limit, seed)
    if not chosen:
        raise UsageError("no samples left to evaluate after --tasks/--datasets/--limit")
    names = {r["sample"] for r in rows}
    extra = [q for q in absent_queries(rows, chosen, absent_per_image, seed) if q["sample"] not in names]
    queries = sorted(chosen + extra, key=lambda r: r["sample"])
    classes: dict[tuple[str, str], set[str]] = defaultdict(set)
    for r in rows:
        if r.get("class") is not None:
            classes[(r["task"], r["dataset"])].add(str(r["class"]))
    return QuerySet(queries, len(chosen), len(extra), {k: sorted(v) for k, v in classes.items()}, notes)
