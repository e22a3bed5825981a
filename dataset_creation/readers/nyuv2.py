"""NYU Depth v2 reader (BTS / Monocular-Depth-Estimation-Toolbox layout): depes pairs, depth in metres.

Data: the BTS training subset ``sync.zip`` (https://github.com/cleinc/bts, ``utils/download_from_gdrive.py
1AysroWpfISmm-yRFGBgFTrLy6FjQwvwP sync.zip``) plus the official 654-image test set from
https://cs.nyu.edu/~silberman/datasets/nyu_depth_v2.html (``nyu_depth_v2_labeled.mat``, exported to
``<category>/rgb_N.jpg`` + ``sync_depth_N.png`` by BTS's ``utils/extract_official_train_test_set_from_mat.py``).
As the toolbox's ``docs/dataset_prepare.md`` says: unzip ``sync.zip`` into the data_root, move the exported
test folders there too, and copy ``splits/nyu_train.txt`` and ``splits/nyu_test.txt`` of
https://github.com/zhyever/Monocular-Depth-Estimation-Toolbox next to them (the toolbox's ``data/nyu``)::

    <data_root>/
      nyu_train.txt                       "/kitchen_0028b/rgb_00045.jpg /kitchen_0028b/sync_depth_00045.png 518.8579"
      nyu_test.txt                        "bathroom/rgb_00045.jpg bathroom/sync_depth_00045.png 518.8579"
      <scene>/rgb_<N>.jpg                 train scenes are "kitchen_0028b", test folders "bathroom", ...
      <scene>/sync_depth_<N>.png          16-bit PNG, depth in millimetres, 0 = no measurement

Each list line is ``<rgb path> <depth path> <focal length>`` relative to the data_root (a leading ``/``
is ignored, as the toolbox does); a depth path ``None`` has no ground truth and is reported.
Split: ``nyu_train.txt`` -> ``train`` (24,231 pairs), ``nyu_test.txt`` -> ``eval`` (654); a pair listed
in both is used for eval only.

Samples: one ``depes`` sample per pair, stem ``nyuv2_<scene>_<N>`` (e.g. ``nyuv2_kitchen_0028b_00045``),
``gt`` = the depth PNG (train and eval alike: the writer draws the target from it, the evaluator
scores against it). ``load_ground_truth`` returns float32 metres = millimetres / 1000 (0 = invalid),
so targets span the 0-10 m range instead of the nearly black images an 8-bit read gives.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from dataset_creation.readers.base import (
    LayoutError,
    ReaderItem,
    Sample,
    SampleError,
    check_image_size,
    read_annotation,
    read_list_lines,
    record_value,
)

NAME = "nyuv2"
TASKS = ("depes",)
SPLITS = ("train", "eval")
SPLIT_LISTS = {"train": "nyu_train.txt", "eval": "nyu_test.txt"}
DEPTH_SCALE = 1000.0  # PNG units per metre (millimetres)

_RGB_NAME = re.compile(r"^rgb_(\w+)$")


def looks_like(data_root: str | Path) -> bool:
    """True when ``data_root`` holds the toolbox's NYU split lists."""
    root = Path(data_root)
    return any((root / name).is_file() for name in SPLIT_LISTS.values())


def check_layout(data_root: str | Path, split: str) -> None:
    """Raise ``LayoutError`` when the split list of ``split`` is missing."""
    root = Path(data_root)
    if split not in SPLITS:
        raise LayoutError(f"nyuv2: unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    if not (root / SPLIT_LISTS[split]).is_file():
        raise LayoutError(
            f"{root} is not an NYUv2 root (Monocular-Depth-Estimation-Toolbox data/nyu layout): missing "
            f"{root / SPLIT_LISTS[split]}. Expected nyu_train.txt, nyu_test.txt (from the toolbox's splits/) and "
            "<scene>/rgb_<N>.jpg with <scene>/sync_depth_<N>.png (16-bit millimetres) as the lists name them"
        )


def _relative(path: str) -> str:
    return path.lstrip("/\\")


def stem_of(rgb: str) -> str:
    """``kitchen_0028b/rgb_00045.jpg`` -> ``nyuv2_kitchen_0028b_00045`` (no spaces)."""
    parts = Path(_relative(rgb)).parts
    name = Path(parts[-1]).stem
    m = _RGB_NAME.match(name)
    stem = "_".join([*parts[:-1], m.group(1) if m else name])
    return "nyuv2_" + "_".join(stem.split())


def read_split_list(path: Path) -> Iterator[tuple[str, str] | SampleError]:
    """(rgb, depth) paths relative to the data_root per line; bad lines as ``SampleError``."""
    for where, fields, line in read_list_lines(path):
        if len(fields) not in (2, 3):
            yield SampleError(where, f"expected '<rgb> <depth> [focal]', got {line.strip()!r}")
        elif fields[1] == "None":
            yield SampleError(where, f"{fields[0]} has no depth map (listed as None)")
        else:
            yield _relative(fields[0]), _relative(fields[1])


def iter_samples(
    data_root: str | Path,
    split: str,
    tasks: list[str] | tuple[str, ...],
    options: dict[str, Any] | None = None,
) -> Iterator[ReaderItem]:
    """Yield one depes sample per listed pair of ``split``; missing files as ``SampleError``."""
    root = Path(data_root).resolve()
    check_layout(root, split)
    if "depes" not in tasks:
        return
    exclude: set[str] = set()
    if split == "train" and (root / SPLIT_LISTS["eval"]).is_file():
        exclude = {e[0] for e in read_split_list(root / SPLIT_LISTS["eval"]) if isinstance(e, tuple)}
    seen: dict[str, str] = {}
    for entry in read_split_list(root / SPLIT_LISTS[split]):
        if isinstance(entry, SampleError):
            yield entry
            continue
        rgb, depth = entry
        if rgb in exclude:
            continue
        stem = stem_of(rgb)
        if stem in seen:
            if seen[stem] != rgb:
                yield SampleError(root / rgb, f"its sample name {stem} is taken by {seen[stem]}")
            continue
        missing = [p for p in (root / rgb, root / depth) if not p.is_file()]
        if missing:
            yield SampleError(missing[0], f"listed in {SPLIT_LISTS[split]} but missing on disk")
            continue
        seen[stem] = rgb
        yield Sample(
            stem=stem, task="depes", dataset=NAME, split=split, image=root / rgb, source=rgb,
            gt=depth, gt_args={"format": "nyuv2", "depth_scale": DEPTH_SCALE},
        )  # fmt: skip


def read_depth_png(path: Path, image: Path | None = None) -> np.ndarray:
    """A 16-bit depth PNG as its raw integer array; ``SampleError`` if unreadable, 8-bit or the wrong size."""
    raw = read_annotation(path)
    if raw.ndim != 2 or raw.dtype.kind not in "ui" or raw.dtype.itemsize < 2:
        raise SampleError(path, f"expected a single-channel 16-bit depth PNG, got {raw.dtype} {raw.shape}")
    if image is not None:
        check_image_size(path, raw, image, "depth")
    return raw


def load_ground_truth(data_root: str | Path, record: Sample | dict[str, Any]) -> np.ndarray:
    """Depth of a sample or metadata row in metres, float32 (H, W), 0 = invalid."""
    root = Path(data_root)
    gt = record_value(record, "gt")
    if not gt:
        raise SampleError(record_value(record, "source", "?"), "nyuv2 record without a gt depth path")
    source = record_value(record, "source")
    raw = read_depth_png(root / gt, root / source if source else None)
    return (raw.astype(np.float32) / np.float32(DEPTH_SCALE)).astype(np.float32)
