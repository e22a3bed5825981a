"""SUN RGB-D reader (evaluation only): depes pairs of the toolbox's validation list, NYU part removed.

Download ``SUNRGBD.zip`` from https://rgbd.cs.princeton.edu/ and unzip it into the data_root; copy
``splits/SUNRGBD_val_splits.txt`` of https://github.com/zhyever/Monocular-Depth-Estimation-Toolbox
next to it (the toolbox's ``data/SUNRGBD``)::

    <data_root>/
      SUNRGBD_val_splits.txt      "SUNRGBD/kv2/kinect2data/<frame>/image/0000103.jpg SUNRGBD/kv2/.../depth/0000103.png"
      SUNRGBD/{kv1,kv2,realsense,xtion}/<collection>/.../<frame>/image/*.jpg and .../depth/*.png

Split: the 5,050 lines of ``SUNRGBD_val_splits.txt`` minus the 654 of the NYU sub-collection
(``SUNRGBD/kv1/NYUdata/...``, the NYUv2 test images, which ``nyuv2`` already covers): 4,396 ``eval`` pairs.
There is no train split (``SPLITS = ("eval",)``; ``train`` yields nothing).

Samples: one ``depes`` sample per pair, stem ``sunrgbd_<frame path>`` (the path between ``SUNRGBD/`` and
``/image/`` with ``/`` read as ``_``, e.g. ``sunrgbd_kv2_kinect2data_000002_2014-05-26_14-23-37_260595134347_rgbf000103-resize``;
frame folder names alone repeat across sun3ddata sequences), ``gt`` = the depth PNG.

Depth units: the PNGs hold millimetres rotated left by 3 bits within 16 bits, i.e. about 1/8 mm.
``load_ground_truth`` undoes the rotation, ``mm = (v >> 3) | (v << 13)`` (uint16), and returns
``mm / 1000`` as float32 metres, 0 = invalid. This is exactly what the toolbox does when it scores
(``depth/datasets/sunrgbd.py``, ``SUNRGBDDataset.pre_eval``: ``np.bitwise_or(np.right_shift(d, 3),
np.left_shift(d, 16 - 3)) / 1000``), copied from the official SUNRGBDtoolbox ``read3dPoints.m``
(``bitor(bitshift(depthVis,-3), bitshift(depthVis,16-3))``, ``/1000``). The toolbox's config
(``configs/_base_/datasets/sun_rgbd.py``) also sets ``depth_scale=8000``, used only by its
``get_gt_depth_maps`` path (plain ``PNG / 8000``): the same value for depths below 8.192 m, wrong above,
where the wrapped-around top bits of the millimetres sit in the 3 low bits.
Not applied here but written down for the evaluator: ``pre_eval`` then caps ground truth *and* prediction
at 8 m (``MAX_DEPTH_M``, also in ``gt_args["max_depth_m"]``), keeps 1e-3 < depth < 10 m, and crops
rows 45:471, columns 41:601 (the NYU Eigen crop) whatever the image size.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from dataset_creation.readers.base import (
    LayoutError,
    ReaderItem,
    Sample,
    SampleError,
    read_list_lines,
    record_value,
)
from dataset_creation.readers.nyuv2 import read_depth_png

NAME = "sunrgbd"
TASKS = ("depes",)
SPLITS = ("eval",)
SPLIT_LIST = "SUNRGBD_val_splits.txt"
SENSORS = ("kv1", "kv2", "realsense", "xtion")
NYU_COLLECTION = ("kv1", "NYUdata")  # SUNRGBD/kv1/NYUdata: the NYUv2 images, excluded
MAX_DEPTH_M = 8.0  # the toolbox's evaluation cap (SUNRGBDDataset.pre_eval), not applied by load_ground_truth


def looks_like(data_root: str | Path) -> bool:
    """True when ``data_root`` holds the toolbox's SUN RGB-D list or the unzipped ``SUNRGBD/`` sensors."""
    root = Path(data_root)
    if (root / SPLIT_LIST).is_file():
        return True
    return (root / "SUNRGBD").is_dir() and any((root / "SUNRGBD" / s).is_dir() for s in SENSORS)


def check_layout(data_root: str | Path, split: str) -> None:
    """Raise ``LayoutError`` when the validation list is missing (``train`` has nothing to check)."""
    root = Path(data_root)
    if split not in ("train", "eval"):
        raise LayoutError(f"sunrgbd: unknown split {split!r}; SUN RGB-D has only 'eval'")
    if split == "eval" and not (root / SPLIT_LIST).is_file():
        raise LayoutError(
            f"{root} is not a SUN RGB-D root (Monocular-Depth-Estimation-Toolbox data/SUNRGBD layout): missing "
            f"{root / SPLIT_LIST}. Expected SUNRGBD_val_splits.txt (from the toolbox's splits/) beside the "
            "unzipped SUNRGBD/{kv1,kv2,realsense,xtion}/.../image/*.jpg and .../depth/*.png"
        )


def is_nyu_entry(rgb: str) -> bool:
    """True for the NYU sub-collection (``SUNRGBD/kv1/NYUdata/...``)."""
    parts = PurePosixPath(rgb).parts
    return any(parts[i : i + 2] == NYU_COLLECTION for i in range(len(parts) - 1))


def stem_of(rgb: str) -> str:
    """``SUNRGBD/kv2/kinect2data/<frame>/image/x.jpg`` -> ``sunrgbd_kv2_kinect2data_<frame>``."""
    parts = list(PurePosixPath(rgb).parts)
    if parts and parts[0] == "SUNRGBD":
        parts = parts[1:]
    if len(parts) >= 3 and parts[-2] == "image":
        parts = parts[:-2]
    else:
        parts[-1] = PurePosixPath(parts[-1]).stem
    return "sunrgbd_" + "_".join("_".join(parts).split())


def iter_samples(
    data_root: str | Path,
    split: str,
    tasks: list[str] | tuple[str, ...],
    options: dict[str, Any] | None = None,
) -> Iterator[ReaderItem]:
    """Yield one depes sample per non-NYU pair of the validation list; missing files as ``SampleError``."""
    root = Path(data_root).resolve()
    check_layout(root, split)
    if split != "eval" or "depes" not in tasks:
        return
    seen: dict[str, str] = {}
    for where, fields, line in read_list_lines(root / SPLIT_LIST):
        if len(fields) != 2 or fields[1] == "None":
            yield SampleError(where, f"expected '<rgb> <depth>', got {line.strip()!r}")
            continue
        rgb, depth = (x.lstrip("/") for x in fields)
        if is_nyu_entry(rgb):
            continue
        stem = stem_of(rgb)
        if stem in seen:
            if seen[stem] != rgb:
                yield SampleError(root / rgb, f"its sample name {stem} is taken by {seen[stem]}")
            continue
        missing = [p for p in (root / rgb, root / depth) if not p.is_file()]
        if missing:
            yield SampleError(missing[0], f"listed in {SPLIT_LIST} but missing on disk")
            continue
        seen[stem] = rgb
        yield Sample(
            stem=stem, task="depes", dataset=NAME, split="eval", image=root / rgb, source=rgb, gt=depth,
            gt_args={"format": "sunrgbd", "max_depth_m": MAX_DEPTH_M},
        )  # fmt: skip


def decode_depth(raw: np.ndarray) -> np.ndarray:
    """SUN RGB-D PNG values -> float32 metres: undo the 3-bit left rotation (16 bit), then mm / 1000."""
    v = raw.astype(np.uint16)
    mm = (v >> np.uint16(3)) | (v << np.uint16(13))
    return (mm.astype(np.float32) / np.float32(1000.0)).astype(np.float32)


def load_ground_truth(data_root: str | Path, record: Sample | dict[str, Any]) -> np.ndarray:
    """Depth of a sample or metadata row in metres, float32 (H, W), 0 = invalid, not capped."""
    root = Path(data_root)
    gt = record_value(record, "gt")
    if not gt:
        raise SampleError(record_value(record, "source", "?"), "sunrgbd record without a gt depth path")
    source = record_value(record, "source")
    raw = read_depth_png(root / gt, root / source if source else None)
    if raw.max(initial=0) > np.iinfo(np.uint16).max:
        raise SampleError(root / gt, "depth values exceed 16 bits")
    return decode_depth(raw)
