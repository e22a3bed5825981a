"""Reading an evaluation pairs folder: its metadata rows and each sample's files (layout: instructcv.pairs).

The index gives one row per sample with ``sample``, ``stem``, ``task``, ``dataset``, ``class``,
``edit``, the task's fields (``bbox``/``crowd``, ``positive``/``colors``, ``gt``/``gt_args``) and
``data_root``. A folder without an index (the original project's layout) is read from its sample
folders instead (their prompt and box files); such rows have no raw ground truth, so they are
scored against the target images.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from instructcv import pairs
from instructcv.cli import UsageError
from tasks import TAGS as TASK_TAGS


def input_path(pairs_dir: str | Path, row: dict[str, Any]) -> Path:
    """The input image of a query: its own sample's, or that of ``input_sample`` (absent-class queries)."""
    return pairs.find_input(Path(pairs_dir) / str(row.get("input_sample") or row["sample"]), row["stem"])


def target_path(pairs_dir: str | Path, row: dict[str, Any]) -> Path:
    """The target image of a sample."""
    return pairs.find_target(Path(pairs_dir) / str(row["sample"]), row["stem"])


def _check_row(row: Any) -> str | None:
    """Why a metadata row cannot be used, or None."""
    if not isinstance(row, dict):
        return "not a JSON object"
    for key in ("sample", "stem", "task", "dataset"):
        if not isinstance(row.get(key), str) or not row[key]:
            return f"no {key!r}"
    if row["task"] not in TASK_TAGS:
        return f"unknown task {row['task']!r}"
    return None


def read_pairs(pairs_dir: str | Path, problems: list[str] | None = None) -> list[dict[str, Any]]:
    """The metadata rows of a pairs folder, sorted by sample name.

    Unusable lines are reported in ``problems`` (one line each, naming the file and line) and left
    out; a missing or empty folder is a ``UsageError``.
    """
    problems = problems if problems is not None else []
    root = Path(pairs_dir)
    if not root.is_dir():
        raise UsageError(f"--pairs {pairs_dir}: no such folder (build one with dataset_creation/format_dataset.py "
                         "--split eval)")  # fmt: skip
    found = pairs.index_lines(root, problems) if pairs.has_index(root) else pairs.folder_rows(root, problems)
    rows: dict[str, dict[str, Any]] = {}
    for where, row in found:
        why = _check_row(row)
        if why:
            problems.append(f"{where}: {why}")
            continue
        rows[row["sample"]] = row
    if not rows:
        raise UsageError(f"--pairs {pairs_dir}: no samples (expected the index or sample folders with prompts, "
                         "as dataset_creation/format_dataset.py writes)")  # fmt: skip
    return [rows[k] for k in sorted(rows)]
