"""Reading an evaluation pairs folder (DESIGN.md section 4): metadata rows and each sample's files.

The index is ``metadata.jsonl``: one row per sample with ``sample``, ``stem``, ``task``, ``dataset``,
``class``, ``edit``, the task's fields (``bbox``/``crowd``, ``positive``/``colors``, ``gt``/``gt_args``)
and ``data_root``. A folder without it (the original project's layout) is read from its sample
folders instead: ``prompt.json`` (+ ``bbox.json``); such rows have no raw ground truth, so they are
scored against the target images.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from instructcv.cli import UsageError
from tasks import TAGS as TASK_TAGS

METADATA_FILE = "metadata.jsonl"


def _sample_files(folder: Path, suffix: str) -> list[Path]:
    return sorted(p for p in folder.glob(f"*{suffix}.*") if p.is_file() and not p.name.startswith("."))


def input_path(pairs_dir: str | Path, row: dict[str, Any]) -> Path:
    """The input image of a sample: ``<pairs>/<sample>/<stem>_0.jpg`` (any extension in old layouts)."""
    folder = Path(pairs_dir) / str(row.get("input_sample") or row["sample"])
    path = folder / f"{row['stem']}_0.jpg"
    if path.is_file():
        return path
    found = _sample_files(folder, "_0")
    return found[0] if found else path


def target_path(pairs_dir: str | Path, row: dict[str, Any]) -> Path:
    """The target image of a sample: ``<pairs>/<sample>/<stem>_1.png`` (any extension in old layouts)."""
    folder = Path(pairs_dir) / str(row["sample"])
    path = folder / f"{row['stem']}_1.png"
    if path.is_file():
        return path
    found = _sample_files(folder, "_1")
    return found[0] if found else path


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


def _rows_from_folders(pairs_dir: Path, problems: list[str]) -> list[dict[str, Any]]:
    rows = []
    for folder in sorted(p for p in pairs_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
        prompt = folder / "prompt.json"
        inputs = _sample_files(folder, "_0")
        if not prompt.is_file() or not inputs:
            continue
        try:
            meta = json.loads(prompt.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            problems.append(f"{prompt}: unreadable ({e})")
            continue
        stem = inputs[0].name.rsplit("_0.", 1)[0]
        row: dict[str, Any] = {"sample": folder.name, "stem": stem, "task": meta.get("task"),
                               "dataset": meta.get("dataset") or "unknown", "class": meta.get("class"),
                               "edit": meta.get("edit", "")}  # fmt: skip
        if row["task"] == "det" and (folder / "bbox.json").is_file():
            try:
                row["bbox"] = json.loads((folder / "bbox.json").read_text(encoding="utf-8")).get("bbox", [])
            except (OSError, ValueError) as e:
                problems.append(f"{folder / 'bbox.json'}: unreadable ({e})")
        why = _check_row(row)
        if why:
            problems.append(f"{prompt}: {why}")
            continue
        rows.append(row)
    return rows


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
    index = root / METADATA_FILE
    rows: dict[str, dict[str, Any]] = {}
    if index.is_file():
        with open(index, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except ValueError as e:
                    problems.append(f"{index}:{lineno}: not JSON ({e})")
                    continue
                why = _check_row(row)
                if why:
                    problems.append(f"{index}:{lineno}: {why}")
                    continue
                rows[row["sample"]] = row
    else:
        rows = {r["sample"]: r for r in _rows_from_folders(root, problems)}
    if not rows:
        raise UsageError(f"--pairs {pairs_dir}: no samples (expected {METADATA_FILE} or sample folders with "
                         "prompt.json, as dataset_creation/format_dataset.py writes)")  # fmt: skip
    return [rows[k] for k in sorted(rows)]
