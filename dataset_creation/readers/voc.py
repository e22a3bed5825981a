"""PASCAL VOC reader (an external test set): seg and det evaluation pairs, VOC classes named as in COCO.

Download: http://host.robots.ox.ac.uk/pascal/VOC/voc2012/ -> ``VOCtrainval_11-May-2012.tar``. Unpack
it and pass the year folder, ``VOCdevkit`` or its parent as ``--data_root`` (e.g.
``data/VOCdevkit/VOC2012``); every ``VOC20xx`` year folder found is read (VOC2007 test works too)::

    <data_root>/VOCdevkit/VOC2012/
      JPEGImages/<id>.jpg
      Annotations/<id>.xml                  boxes: 1-based inclusive pixel indices, <difficult> flag
      SegmentationClass/<id>.png            palette PNG: indices 0 = background, 1..20 classes, 255 = void
      ImageSets/Segmentation/val.txt        seg evaluation list
      ImageSets/Main/val.txt                det evaluation list (VOC2007: Main/test.txt)

Split: evaluation only (``SPLITS = ("eval",)``): the model never trains on VOC. seg uses
``ImageSets/Segmentation/val.txt``; det uses ``ImageSets/Main/val.txt`` (``test.txt`` for VOC2007,
whose test annotations are public), falling back to the other list when only one exists.

Samples (stem ``<year folder>_<id>``, e.g. ``voc2012_2007_000032``):

- ``seg``: one per class present in the SegmentationClass map; mask = index == class, 255 (the
  object borders and void regions) is ``valid = False`` at evaluation.
- ``det``: one per class in the xml; ``boxes`` in 0-based continuous pixels
  (``[xmin - 1, ymin - 1, xmax, ymax]``: VOC's 1-based inclusive indices), ``crowd`` = the
  ``<difficult>`` flag, which the evaluator treats as ignore regions (VOC's rule); difficult boxes
  are not drawn in the target.

Class names: the 20 VOC classes are named as the corresponding COCO categories
(``VOC_TO_COCO``: aeroplane -> airplane, tvmonitor -> tv, motorbike -> motorcycle, sofa -> couch,
diningtable -> dining table, pottedplant -> potted plant, the other 14 unchanged) so that a model
trained on COCO is asked in the words it learned; ``COCO_CATEGORY_IDS`` gives their COCO ids for
the baselines (``voc2coco.py`` writes the same ids). A listed image missing on disk, a missing or
unparsable xml / label map is yielded as a ``SampleError``.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from dataset_creation.readers.base import (
    LayoutError,
    ReaderItem,
    Sample,
    SampleError,
    class_ids_present,
    read_annotation,
    record_value,
)

NAME = "voc"
TASKS = ("det", "seg")
SPLITS = ("eval",)
LAYOUT = "[VOCdevkit/]VOC20xx/{JPEGImages,Annotations,ImageSets/Main,ImageSets/Segmentation,SegmentationClass}"
IGNORE_LABEL = 255

# Palette index k (1..20) of SegmentationClass is VOC_CLASSES[k - 1].
VOC_CLASSES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow", "diningtable",
    "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)  # fmt: skip
VOC_TO_COCO = {
    **{c: c for c in VOC_CLASSES},
    "aeroplane": "airplane",
    "diningtable": "dining table",
    "motorbike": "motorcycle",
    "pottedplant": "potted plant",
    "sofa": "couch",
    "tvmonitor": "tv",
}
COCO_TO_VOC = {coco: voc for voc, coco in VOC_TO_COCO.items()}
# COCO 2017 category ids (and supercategories) of the 20 names in VOC_TO_COCO.
COCO_CATEGORY_IDS = {
    "airplane": 5, "bicycle": 2, "bird": 16, "boat": 9, "bottle": 44, "bus": 6, "car": 3, "cat": 17,
    "chair": 62, "cow": 21, "dining table": 67, "dog": 18, "horse": 19, "motorcycle": 4, "person": 1,
    "potted plant": 64, "sheep": 20, "couch": 63, "train": 7, "tv": 72,
}  # fmt: skip
COCO_SUPERCATEGORIES = {
    "airplane": "vehicle", "bicycle": "vehicle", "bird": "animal", "boat": "vehicle", "bottle": "kitchen",
    "bus": "vehicle", "car": "vehicle", "cat": "animal", "chair": "furniture", "cow": "animal",
    "dining table": "furniture", "dog": "animal", "horse": "animal", "motorcycle": "vehicle",
    "person": "person", "potted plant": "furniture", "sheep": "animal", "couch": "furniture",
    "train": "vehicle", "tv": "electronic",
}  # fmt: skip
CLASSES = tuple(VOC_TO_COCO[c] for c in VOC_CLASSES)  # the class names samples carry, in palette order

_YEAR = re.compile(r"^VOC\d{4}$")


def year_dirs(data_root: str | Path) -> list[Path]:
    """The VOC year folders under ``data_root``: itself, ``VOC20xx/`` or ``VOCdevkit/VOC20xx/``."""
    root = Path(data_root)
    if (root / "Annotations").is_dir() or (root / "JPEGImages").is_dir():
        return [root]
    for base in (root / "VOCdevkit", root):
        if base.is_dir():
            years = sorted(p for p in base.iterdir() if p.is_dir() and _YEAR.match(p.name))
            if years:
                return years
    return []


def looks_like(data_root: str | Path) -> bool:
    """True when ``data_root`` holds a VOC year folder (JPEGImages/ or Annotations/)."""
    return bool(year_dirs(data_root))


def check_layout(data_root: str | Path, split: str) -> None:
    """Raise ``LayoutError`` unless some year folder has images plus a det or a seg evaluation list."""
    if split not in SPLITS:
        raise LayoutError(
            f"voc is an evaluation-only dataset (an external test set): use --split eval, not {split!r}"
        )
    years = year_dirs(data_root)
    usable = [y for y in years if (y / "JPEGImages").is_dir() and (_det_list(y) or _seg_list(y))]
    if not usable:
        raise LayoutError(
            f"{data_root} is not a PASCAL VOC root: expected [VOCdevkit/]VOC2012/ with JPEGImages/<id>.jpg, "
            "Annotations/<id>.xml + ImageSets/Main/val.txt (det) and/or SegmentationClass/<id>.png + "
            "ImageSets/Segmentation/val.txt (seg); unpack VOCtrainval_11-May-2012.tar from "
            "http://host.robots.ox.ac.uk/pascal/VOC/voc2012/"
        )


def _det_list(year: Path) -> Path | None:
    order = ("test", "val") if year.name == "VOC2007" else ("val", "test")
    for name in order:
        p = year / "ImageSets" / "Main" / f"{name}.txt"
        if p.is_file() and (year / "Annotations").is_dir():
            return p
    return None


def _seg_list(year: Path) -> Path | None:
    p = year / "ImageSets" / "Segmentation" / "val.txt"
    return p if p.is_file() and (year / "SegmentationClass").is_dir() else None


def read_list(path: Path) -> list[str]:
    """Image ids of an ImageSets list (first field per line; blank lines skipped; no final newline is fine)."""
    return [line.split()[0] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def read_objects(xml_path: Path) -> tuple[list[tuple[str, list[float], bool]], list[int] | None]:
    """([(VOC class, 0-based xyxy box, difficult)], [width, height] or None) of an Annotations xml."""
    try:
        tree = ET.parse(xml_path)
    except (ET.ParseError, OSError) as e:
        raise SampleError(xml_path, f"cannot parse annotation xml ({e})") from None
    root = tree.getroot()
    size = None
    try:
        size = [int(float(root.findtext("size/width"))), int(float(root.findtext("size/height")))]  # type: ignore[arg-type]
    except (TypeError, ValueError):
        pass
    objects = []
    for obj in root.iter("object"):
        name = (obj.findtext("name") or "").strip().lower()
        if name not in VOC_TO_COCO:
            raise SampleError(xml_path, f"unknown VOC class {name!r}")
        try:
            x0, y0, x1, y1 = (float(obj.findtext(f"bndbox/{k}")) for k in ("xmin", "ymin", "xmax", "ymax"))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise SampleError(xml_path, f"{name}: object without a numeric bndbox") from None
        if x1 < x0 or y1 < y0:
            raise SampleError(xml_path, f"{name}: empty box {[x0, y0, x1, y1]}")
        difficult = (obj.findtext("difficult") or "0").strip() not in ("0", "")
        objects.append((name, [x0 - 1.0, y0 - 1.0, x1, y1], difficult))
    return objects, size


def read_labels(path: Path) -> np.ndarray:
    """SegmentationClass palette indices as uint8 (H, W); ``SampleError`` when unusable."""
    labels = read_annotation(path)
    if labels.ndim != 2 or labels.dtype != np.uint8:
        raise SampleError(path, f"expected a palette (8-bit index) PNG, got {labels.dtype} {labels.shape}")
    return labels


def _present(path: Path) -> list[int]:
    return class_ids_present(read_labels(path), len(VOC_CLASSES))


def iter_samples(
    data_root: str | Path, split: str, tasks: list[str] | tuple[str, ...], options: dict[str, Any] | None = None
) -> Iterator[ReaderItem]:
    """Yield the VOC evaluation samples (seg, then det, per year folder), errors included."""
    check_layout(data_root, split)
    root = Path(data_root).resolve()
    for year in year_dirs(root):
        prefix = year.name.lower()
        seg_list, det_list = _seg_list(year), _det_list(year)
        if "seg" in tasks and seg_list is not None:
            for image_id in read_list(seg_list):
                image, png = year / "JPEGImages" / f"{image_id}.jpg", year / "SegmentationClass" / f"{image_id}.png"
                missing = [p for p in (image, png) if not p.is_file()]
                if missing:
                    yield SampleError(missing[0], f"listed in {seg_list.relative_to(root)} but missing on disk")
                    continue
                try:
                    present = _present(png)
                except SampleError as e:
                    yield e
                    continue
                for k in present:
                    yield Sample(
                        stem=f"{prefix}_{image_id}", task="seg", dataset=NAME, split=split, image=image,
                        source=image.relative_to(root).as_posix(), class_name=CLASSES[k - 1],
                        gt=png.relative_to(root).as_posix(), gt_args={"label": k},
                    )  # fmt: skip
        if "det" in tasks and det_list is not None:
            for image_id in read_list(det_list):
                image, xml = year / "JPEGImages" / f"{image_id}.jpg", year / "Annotations" / f"{image_id}.xml"
                missing = [p for p in (image, xml) if not p.is_file()]
                if missing:
                    yield SampleError(missing[0], f"listed in {det_list.relative_to(root)} but missing on disk")
                    continue
                try:
                    objects, size = read_objects(xml)
                except SampleError as e:
                    yield e
                    continue
                for voc_name in VOC_CLASSES:
                    mine = [(box, diff) for name, box, diff in objects if name == voc_name]
                    if not mine or all(diff for _, diff in mine):  # nothing to draw
                        continue
                    yield Sample(
                        stem=f"{prefix}_{image_id}", task="det", dataset=NAME, split=split, image=image,
                        source=image.relative_to(root).as_posix(), class_name=VOC_TO_COCO[voc_name],
                        boxes=[b for b, _ in mine], crowd=[d for _, d in mine], gt=xml.relative_to(root).as_posix(),
                        gt_args={"image_size": size} if size else {},
                    )  # fmt: skip


def load_ground_truth(data_root: str | Path, record: Sample | dict[str, Any]) -> Any:
    """Ground truth of a VOC sample or metadata row.

    seg: ``{"mask": index == class, "valid": index != 255}``; det: ``{"boxes": (N, 4), "crowd": (N,)}``
    (crowd = difficult) read again from the xml when the record has no boxes.
    """
    root = Path(data_root)
    task = record_value(record, "task")
    name = record_value(record, "class_name")
    if task == "seg":
        label = (record_value(record, "gt_args") or {}).get("label")
        if label is None:
            label = CLASSES.index(name) + 1
        labels = read_labels(root / str(record_value(record, "gt")))
        return {"mask": labels == int(label), "valid": labels != IGNORE_LABEL}
    if task == "det":
        boxes, flags = record_value(record, "boxes"), record_value(record, "crowd")
        if boxes is None:
            objects, _ = read_objects(root / str(record_value(record, "gt")))
            picked = [(b, d) for n, b, d in objects if VOC_TO_COCO[n] == name]
            boxes, flags = [b for b, _ in picked], [d for _, d in picked]
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        crowd = np.asarray(flags if flags is not None else [False] * len(boxes), dtype=bool)
        return {"boxes": boxes, "crowd": crowd}
    raise ValueError(f"voc has no {task!r} task")
