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

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

import tasks
from dataset_creation.readers import get_reader
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


def _raw_record(row: dict[str, Any]) -> dict[str, Any]:
    """The row as the reader reads it; an absent query's det record has no boxes, so the reader reads its own."""
    rec = dict(row)
    if row.get("absent"):
        rec.pop("bbox", None)
        rec.pop("crowd", None)
    return rec


def _size_of(path: Path) -> tuple[int, int]:
    try:
        with Image.open(path) as im:
            return im.size
    except OSError as e:
        raise TruthError(f"{path}: cannot read the input image ({e})") from None


def _from_target(row: dict[str, Any], pairs_dir: Path | None, why: str) -> Truth:
    """The truth read back from the sample's target image (8-bit, no ignore regions); absent queries: nothing."""
    task = tasks.task(row["task"])
    if row.get("absent"):
        def input_size() -> tuple[int, int]:
            if pairs_dir is None:
                raise TruthError(f"{row['sample']}: {why}")
            return _size_of(input_path(pairs_dir, row))

        try:
            return Truth(task.absent_truth(input_size), "none", f"{why}; {task.absent_unknown}")
        except ValueError:
            raise TruthError(f"{row['sample']}: {why}") from None
    if pairs_dir is None:
        raise TruthError(f"{row['sample']}: {why}, and no pairs folder to read the target from")
    path = target_path(pairs_dir, row)
    try:
        target = load_rgb(path)
    except ImageReadError as e:
        raise TruthError(f"{row['sample']}: {why}; target unreadable too ({e.reason}: {path})") from None
    try:
        value = task.truth_from_target(target, row)
    except ValueError as e:
        raise TruthError(f"{row['sample']}: {why}; {e}") from None
    return Truth(value, "target", f"{why}; scored against the target image")


def resolve_truth(row: dict[str, Any], data_root: str | Path | None = None,
                  pairs_dir: str | Path | None = None) -> Truth:  # fmt: skip
    """The truth of a query (metadata row), where it came from, and why when not the raw annotation.

    ``data_root``: the raw dataset folder (default: the row's ``data_root``). Raises ``TruthError``
    when nothing usable can be read.
    """
    task = tasks.task(row["task"])
    root = Path(data_root) if data_root is not None else data_root_of(row)
    pairs = Path(pairs_dir) if pairs_dir is not None else None
    try:
        value = task.truth_from_row(row)
    except ValueError as e:
        raise TruthError(f"{row['sample']}: {e}") from None
    if value is not None:
        return Truth(value, "metadata")
    if task.row_truth_only:
        return _from_target(row, pairs, task.row_truth_only)
    if root is None:
        return _from_target(row, pairs, f"no data_root in metadata; pass --data_root {row['dataset']}=PATH")
    if not root.is_dir():
        return _from_target(row, pairs, f"data_root {root} not found; pass --data_root {row['dataset']}=PATH")
    if not row.get("gt"):
        return _from_target(row, pairs, "no raw ground-truth path ('gt') in metadata")
    try:
        value = get_reader(row["dataset"]).load_ground_truth(root, _raw_record(row))
    except (OSError, ValueError, KeyError, TypeError) as e:  # SampleError and ImageReadError are ValueErrors
        return _from_target(row, pairs, f"raw annotation unreadable: {e}")
    return Truth(task.truth_from_raw(value, row), "raw")


def load_truth(record: dict[str, Any], data_root: str | Path | None = None,
               pairs_dir: str | Path | None = None) -> Any:  # fmt: skip
    """What ``Metric.add_answer`` takes as ``truth`` for ``record`` (see ``resolve_truth``)."""
    return resolve_truth(record, data_root, pairs_dir).value
