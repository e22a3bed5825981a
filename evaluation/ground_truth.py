"""The ground truth of a query, from the raw annotation (through the dataset's reader) wherever it can be.

What each task is scored against (``truth`` as ``Metric.add_answer`` takes it):

- det: ``{"boxes": (M, 4) xyxy, "crowd": (M,) bool}`` from the row's ``bbox`` and ``crowd`` (the reader
  wrote them from the raw annotation; crowd = COCO ``iscrowd`` / VOC ``difficult``, ignore regions);
- seg: ``{"mask": bool (H, W), "valid": bool (H, W)}`` from the reader's ``load_ground_truth`` on the raw
  annotation (VOC's 255 border, ADE20K's label 0, the Pets trimap border and COCO crowd regions are
  ``valid = False``);
- cls: the row's ``positive`` flag;
- depes: metres from the raw 16-bit depth through the reader (NYUv2 millimetres, SUN RGB-D's rotated
  1/8 mm), 0 = no measurement; never the 8-bit target.

Raw files are found under the row's ``data_root`` (written by the pairs builder), or the folder given
for its dataset with ``--data_root DATASET=PATH``. When the raw data cannot be read (moved, not
copied along, an old pairs folder without ``gt``), seg, cls and depth fall back to the sample's
target image and say so (``Truth.source == "target"`` with the reason): the target is the same truth
drawn at 8 bits, without ignore regions.
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from evaluation.pairs import input_path, target_path
from instructcv.images import ImageReadError, load_rgb


class TruthError(ValueError):
    """Neither the raw annotation nor the target image of a query can be read."""


@dataclass
class Truth:
    """A query's truth, where it came from (``raw``, ``metadata``, ``target``, ``none``) and why a fallback."""

    value: Any
    source: str
    note: str | None = None


def data_root_of(row: dict[str, Any], overrides: dict[str, Path] | None = None) -> Path | None:
    """The raw dataset folder of a row: ``--data_root`` for its dataset, else the row's ``data_root``."""
    root = (overrides or {}).get(row["dataset"]) or row.get("data_root")
    return Path(root) if root else None


def _reader(dataset: str):
    from dataset_creation.readers import get_reader

    return get_reader(dataset)


def _raw_record(row: dict[str, Any]) -> dict[str, Any]:
    """The row as the reader reads it; an absent query's det record has no boxes, so VOC re-reads its xml."""
    rec = dict(row)
    if row.get("absent") and row["task"] == "det":
        rec.pop("bbox", None)
        rec.pop("crowd", None)
    return rec


@functools.lru_cache(maxsize=2)
def _coco_crowd_index(path: str, mtime_ns: int) -> dict[tuple[Any, str], list[list[float]]]:
    """(image id, class name) -> its crowd boxes (xyxy) in a COCO instances json."""
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    names = {c["id"]: " ".join(str(c["name"]).split()) for c in data.get("categories", [])}
    out: dict[tuple[Any, str], list[list[float]]] = {}
    for a in data.get("annotations", []):
        if a.get("iscrowd") and a.get("category_id") in names and a.get("bbox"):
            x, y, w, h = (float(v) for v in a["bbox"])
            out.setdefault((a.get("image_id"), names[a["category_id"]]), []).append([x, y, x + w, y + h])
    return out


def _absent_det_truth(row: dict[str, Any], root: Path | None) -> Truth:
    """No box to find; the class's ignore boxes (COCO crowd, VOC difficult) stay ignore regions."""
    empty = {"boxes": np.zeros((0, 4)), "crowd": np.zeros(0, bool)}
    if root is None or not root.is_dir():
        return Truth(
            empty, "none", f"data_root {root} not found, crowd/difficult boxes of the class not known"
        )
    try:
        if (
            row["dataset"] == "coco"
            and row.get("gt")
            and (row.get("gt_args") or {}).get("image_id") is not None
        ):
            path = root / row["gt"]
            index = _coco_crowd_index(str(path), os.stat(path).st_mtime_ns)
            boxes = index.get((row["gt_args"]["image_id"], row["class"]), [])
        else:
            truth = _reader(row["dataset"]).load_ground_truth(root, _raw_record(row))
            boxes = np.asarray(truth.get("boxes"), dtype=np.float64).reshape(-1, 4)
    except (OSError, ValueError, KeyError, TypeError) as e:
        return Truth(
            empty, "none", f"raw annotation unreadable, crowd/difficult boxes of the class not known: {e}"
        )
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return Truth({"boxes": boxes, "crowd": np.ones(len(boxes), bool)}, "raw")


def _size_of(path: Path) -> tuple[int, int]:
    try:
        with Image.open(path) as im:
            return im.size
    except OSError as e:
        raise TruthError(f"{path}: cannot read the input image ({e})") from None


def _from_target(row: dict[str, Any], pairs_dir: Path | None, why: str) -> Truth:
    """The truth read back from the sample's target image (8-bit, no ignore regions)."""
    import tasks

    task = row["task"]
    if row.get("absent"):
        if task == "seg" and pairs_dir is not None:
            w, h = _size_of(input_path(pairs_dir, row))
            return Truth(
                {"mask": np.zeros((h, w), bool), "valid": None}, "none", f"{why}; ignore regions not known"
            )
        raise TruthError(f"{row['sample']}: {why}")
    if pairs_dir is None:
        raise TruthError(f"{row['sample']}: {why}, and no pairs folder to read the target from")
    path = target_path(pairs_dir, row)
    try:
        target = load_rgb(path)
    except ImageReadError as e:
        raise TruthError(f"{row['sample']}: {why}; target unreadable too ({e.reason}: {path})") from None
    size = target.size
    if task == "seg":
        value: Any = {"mask": tasks.get_task("seg").decode(target, size), "valid": None}
    elif task == "depes":
        value = tasks.get_task("depes").decode(target, size)
    elif task == "cls":
        from tasks.parser import parse_instruction

        colors = row.get("colors")
        if not colors:
            parsed = parse_instruction(row.get("edit", ""))
            colors = (parsed.positive, parsed.negative)
        if not colors[0] or not colors[1]:
            raise TruthError(f"{row['sample']}: {why}; no answer colours to read the target with")
        value = bool(tasks.get_task("cls").decode(target, colors[0], colors[1])[0])
    else:
        raise TruthError(f"{row['sample']}: {why}")
    return Truth(value, "target", f"{why}; scored against the target image")


def resolve_truth(row: dict[str, Any], data_root: str | Path | None = None,
                  pairs_dir: str | Path | None = None) -> Truth:  # fmt: skip
    """The truth of a query (metadata row), where it came from, and why when not the raw annotation.

    ``data_root``: the raw dataset folder (default: the row's ``data_root``). Raises ``TruthError``
    when nothing usable can be read.
    """
    task = row["task"]
    root = Path(data_root) if data_root is not None else data_root_of(row)
    pairs = Path(pairs_dir) if pairs_dir is not None else None
    if task == "det":
        if row.get("absent"):
            return _absent_det_truth(row, root)
        if row.get("bbox") is None:
            raise TruthError(
                f"{row['sample']}: det sample without boxes (no 'bbox' in its metadata row or box file)"
            )
        boxes = np.asarray(row["bbox"], dtype=np.float64).reshape(-1, 4)
        flags = row.get("crowd")
        crowd = np.asarray(flags if flags is not None else [False] * len(boxes), dtype=bool).reshape(-1)
        if len(crowd) != len(boxes):
            raise TruthError(f"{row['sample']}: {len(boxes)} boxes but {len(crowd)} crowd flags")
        return Truth({"boxes": boxes, "crowd": crowd}, "metadata")
    if task == "cls" and row.get("positive") is not None:
        return Truth(bool(row["positive"]), "metadata")
    if task == "cls":
        return _from_target(row, pairs, "no 'positive' flag in metadata")

    if root is None:
        return _from_target(row, pairs, f"no data_root in metadata; pass --data_root {row['dataset']}=PATH")
    if not root.is_dir():
        return _from_target(row, pairs, f"data_root {root} not found; pass --data_root {row['dataset']}=PATH")
    if not row.get("gt"):
        return _from_target(row, pairs, "no raw ground-truth path ('gt') in metadata")
    try:
        value = _reader(row["dataset"]).load_ground_truth(root, _raw_record(row))
    except (OSError, ValueError, KeyError, TypeError) as e:  # SampleError and ImageReadError are ValueErrors
        return _from_target(row, pairs, f"raw annotation unreadable: {e}")
    if task == "seg":
        mask = np.asarray(value["mask"], dtype=bool)
        valid = value.get("valid")
        if row.get("absent"):
            # the class is not in the image: nothing to find, whatever class the reader's mask is of (Pets: the pet)
            mask = np.zeros_like(mask)
        return Truth({"mask": mask, "valid": None if valid is None else np.asarray(valid, dtype=bool)}, "raw")
    if task == "depes":
        return Truth(np.asarray(value, dtype=np.float32), "raw")
    return Truth(value, "raw")


def load_truth(record: dict[str, Any], data_root: str | Path | None = None,
               pairs_dir: str | Path | None = None) -> Any:  # fmt: skip
    """What ``Metric.add_answer`` takes as ``truth`` for ``record`` (see ``resolve_truth``)."""
    return resolve_truth(record, data_root, pairs_dir).value
