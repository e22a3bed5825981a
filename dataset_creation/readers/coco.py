"""MS-COCO 2017 reader: det, seg and cls pairs from the official instances annotations.

Download: https://cocodataset.org/#download -> ``train2017.zip``, ``val2017.zip`` and
``annotations_trainval2017.zip``. Unpack them into one folder and pass it as ``--data_root``
(e.g. ``data/coco``)::

    <data_root>/
      annotations/instances_train2017.json    split train
      annotations/instances_val2017.json      split eval
      train2017/<12-digit id>.jpg
      val2017/<12-digit id>.jpg

Split: the official one, ``train2017`` -> ``train``, ``val2017`` -> ``eval`` (disjoint). Each split needs
only its own json and image folder.

Samples (stem ``coco_<file name without extension>``, e.g. ``coco_000000128372``), for every image
listed in the json, in image-id order:

- ``det``: one sample per category with at least one non-crowd instance; ``boxes`` are all the
  category's instances in the image as xyxy input pixels (COCO ``[x, y, w, h]`` -> ``[x, y, x+w, y+h]``)
  and ``crowd`` flags ``iscrowd=1`` boxes: the target draws them all (crowd too, as the original builder did), the evaluator
  treats crowd boxes as ignore regions (COCOeval's rule).
- ``seg``: one sample per category with at least one non-crowd instance; mask = union of the
  non-crowd instances (polygons or RLE, decoded by pycocotools) minus the category's crowd regions,
  which are ``valid = False`` (ignored) at evaluation.
- ``det`` / ``seg`` with ``options["absent_per_image"] = k`` > 0 (training pairs): also ``k`` categories the
  image does not contain at all (crowd regions included), seeded by ``options["seed"]`` and the stem, each
  an empty answer (no boxes; an empty mask) marked ``absent``: the model learns to answer the absent-class
  queries the evaluator asks (``evaluate.py --absent-per-image``).
- ``cls``: one positive per category present (crowd included), plus ``options["neg_per_image"]``
  absent categories (default 1; ``None``/negative: all absent ones), drawn with
  ``base.negative_classes`` seeded by ``options["seed"]`` and the stem.

An image without annotations (e.g. realdata's 000000000089) gives no det/seg sample, only cls
negatives. A listed image missing on disk or an unusable annotation is yielded as a ``SampleError``.
``gt_args`` carries ``image_id``, ``category_id`` and ``image_size`` (the json's width, height); for
seg it also carries the instances' segmentations under ``_anns`` (a build-time hint, not written to
metadata) so that writer processes never load the whole json.
"""

from __future__ import annotations

import functools
import json
import math
import os
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from dataset_creation.readers.base import (
    LayoutError,
    ReaderItem,
    Sample,
    SampleError,
    absent_options,
    negative_classes,
    negative_options,
    record_value,
)

NAME = "coco"
TASKS = ("det", "seg", "cls")
SPLITS = ("train", "eval")
SPLIT_DIRS = {"train": "train2017", "eval": "val2017"}
LAYOUT = "annotations/instances_{train,val}2017.json + {train,val}2017/<id>.jpg"


def annotation_file(split: str) -> str:
    """The json of ``split``, relative to the data root."""
    return f"annotations/instances_{SPLIT_DIRS[split]}.json"


def looks_like(data_root: str | Path) -> bool:
    """True when ``data_root`` has a COCO 2017 instances json or image folder."""
    root = Path(data_root)
    return any((root / annotation_file(s)).is_file() or (root / d).is_dir() for s, d in SPLIT_DIRS.items())


def check_layout(data_root: str | Path, split: str) -> None:
    """Raise ``LayoutError`` naming the json and image folder ``split`` needs."""
    root = Path(data_root)
    if split not in SPLITS:
        raise LayoutError(f"coco: unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    expected = [root / annotation_file(split), root / SPLIT_DIRS[split]]
    missing = [p for p in expected if not p.exists()]
    if missing:
        other = "eval" if split == "train" else "train"
        hint = ""
        if all((root / p).exists() for p in (annotation_file(other), SPLIT_DIRS[other])):
            hint = f" (the {other} split is there: use --split {other})"
        raise LayoutError(
            f"{root} has no COCO 2017 {split} split: missing {', '.join(str(p) for p in missing)}{hint}. "
            f"Expected {annotation_file(split)} and {SPLIT_DIRS[split]}/<id>.jpg "
            "(unpack the images and annotations_trainval2017.zip from https://cocodataset.org/#download)"
        )


def _xyxy(bbox: Any) -> list[float] | None:
    """COCO ``[x, y, w, h]`` -> ``[x0, y0, x1, y1]``; None when not four finite numbers with w, h >= 0."""
    try:
        x, y, w, h = (float(v) for v in bbox)
    except (TypeError, ValueError):
        return None
    if not all(math.isfinite(v) for v in (x, y, w, h)) or w < 0 or h < 0:
        return None
    return [x, y, x + w, y + h]


def _load_json(path: Path) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SampleError(path, f"cannot read the annotation json ({e})") from None
    if not isinstance(data, dict) or not all(isinstance(data.get(k), list) for k in ("images", "categories")):
        raise SampleError(path, "not a COCO instances json (needs 'images' and 'categories' lists)")
    data.setdefault("annotations", [])
    return data


def iter_samples(
    data_root: str | Path, split: str, tasks: list[str] | tuple[str, ...], options: dict[str, Any] | None = None
) -> Iterator[ReaderItem]:
    """Yield the COCO samples of ``split`` for ``tasks`` (see the module docstring), errors included."""
    root = Path(data_root).resolve()
    check_layout(root, split)
    neg, seed = negative_options(options)
    absent_k = absent_options(options)
    stroke = int((options or {}).get("det_line_width") or 0)  # 0: the released model's stroke
    json_rel = annotation_file(split)
    try:
        data = _load_json(root / json_rel)
    except SampleError as e:
        yield e
        return
    categories = {}
    for c in data["categories"]:
        if isinstance(c, dict) and "id" in c and "name" in c:
            categories[c["id"]] = " ".join(str(c["name"]).split())
    names = [categories[k] for k in sorted(categories)]
    cat_ids = {name: k for k, name in categories.items()}
    by_image: dict[Any, list[dict]] = defaultdict(list)
    for ann in data["annotations"]:
        if not isinstance(ann, dict) or "image_id" not in ann:
            yield SampleError(root / json_rel, f"annotation without image_id: {str(ann)[:80]}")
            continue
        by_image[ann["image_id"]].append(ann)

    images = [im for im in data["images"] if isinstance(im, dict) and "id" in im and "file_name" in im]
    for im in sorted(images, key=lambda im: (str(type(im["id"])), im["id"])):
        source = f"{SPLIT_DIRS[split]}/{im['file_name']}"
        image = root / source
        if not image.is_file():
            yield SampleError(image, f"listed in {json_rel} but missing on disk")
            continue
        stem = "coco_" + "_".join(Path(im["file_name"]).stem.split())
        size = [im.get("width"), im.get("height")]
        base = dict(stem=stem, dataset=NAME, split=split, image=image, source=source)

        per_cat: dict[str, list[dict]] = defaultdict(list)  # category name -> its usable annotations
        for ann in by_image.get(im["id"], []):
            name = categories.get(ann.get("category_id"))
            box = _xyxy(ann.get("bbox"))
            if name is None or box is None:
                yield SampleError(
                    root / json_rel,
                    f"annotation {ann.get('id')} of image {im['id']}: unknown category "
                    f"{ann.get('category_id')!r} or bad bbox {ann.get('bbox')!r}; annotation skipped",
                )
                continue
            per_cat[name].append({**ann, "_xyxy": box})

        for name in sorted(per_cat, key=names.index):
            anns = per_cat[name]
            crowd = [bool(a.get("iscrowd", 0)) for a in anns]
            if all(crowd):  # only crowd regions: nothing to draw, nothing to segment
                continue
            args = {"image_id": im["id"], "category_id": anns[0]["category_id"], "image_size": size}
            if "det" in tasks:
                yield Sample(
                    task="det", class_name=name, boxes=[a["_xyxy"] for a in anns], crowd=crowd,
                    gt=json_rel, gt_args={**args, "_line_width": stroke} if stroke else dict(args), **base,
                )  # fmt: skip
            if "seg" in tasks:
                hint = [{"segmentation": a.get("segmentation"), "iscrowd": int(bool(a.get("iscrowd", 0))),
                         "id": a.get("id")} for a in anns]  # fmt: skip
                yield Sample(task="seg", class_name=name, gt=json_rel, gt_args={**args, "_anns": hint}, **base)
        absent_tasks = [t for t in ("det", "seg") if t in tasks]
        for name in negative_classes(names, set(per_cat), absent_k, key=f"{stem}/absent", seed=seed) if absent_k else []:
            args = {"image_id": im["id"], "category_id": cat_ids[name], "image_size": size}
            for task in absent_tasks:  # det: no boxes (drawn at the asked stroke); seg: no instances to mask
                extra = {"_anns": []} if task == "seg" else {"_line_width": stroke} if stroke else {}
                yield Sample(task=task, class_name=name, boxes=[] if task == "det" else None,
                             crowd=[] if task == "det" else None, gt=json_rel, gt_args={**args, **extra},
                             absent=True, **base)  # fmt: skip
        if "cls" in tasks:
            present = set(per_cat)
            for name in names:
                if name in present:
                    yield Sample(task="cls", class_name=name, positive=True, **base)
            for name in negative_classes(names, present, neg, key=stem, seed=seed):
                yield Sample(task="cls", class_name=name, positive=False, **base)


@functools.lru_cache(maxsize=2)
def _index(path: str, mtime_ns: int) -> tuple[dict, dict, dict]:
    """(image id -> annotations, category name -> id, image id -> (h, w)) of one json, cached per process."""
    data = _load_json(Path(path))
    anns: dict[Any, list[dict]] = defaultdict(list)
    for a in data["annotations"]:
        anns[a.get("image_id")].append(a)
    cats = {" ".join(str(c["name"]).split()): c["id"] for c in data["categories"]}
    sizes = {im["id"]: (im.get("height"), im.get("width")) for im in data["images"]}
    return dict(anns), cats, sizes


def _record_ids(root: Path, record: Sample | dict[str, Any]) -> tuple[Any, Any, list[dict] | None, Any]:
    """(image id, category id, annotation hint or None, image size [w, h] or None) of a record."""
    args = record_value(record, "gt_args") or {}
    image_id, cat_id, size = args.get("image_id"), args.get("category_id"), args.get("image_size")
    hint = args.get("_anns")
    if image_id is None or cat_id is None or hint is None:
        gt = root / (record_value(record, "gt") or annotation_file(record_value(record, "split", "eval")))
        try:
            anns, cats, sizes = _index(str(gt), os.stat(gt).st_mtime_ns)
        except FileNotFoundError:
            raise SampleError(gt, "annotation json not found") from None
        if image_id is None:  # older rows: the id is the file name (stem coco_<12 digits>)
            image_id = int(str(record_value(record, "stem")).rsplit("_", 1)[-1])
        if cat_id is None:
            cat_id = cats.get(record_value(record, "class_name"))
        if size is None and image_id in sizes:
            h, w = sizes[image_id]
            size = [w, h]
        if hint is None:
            hint = [a for a in anns.get(image_id, []) if a.get("category_id") == cat_id]
    return image_id, cat_id, hint, size


def instances_mask(anns: list[dict], height: int, width: int, where: str | Path = "coco") -> tuple[np.ndarray, np.ndarray]:
    """(union of non-crowd instance masks, union of crowd masks) as bool (H, W), via pycocotools."""
    from pycocotools import mask as mask_utils  # imported here: only seg needs it

    objects = np.zeros((height, width), dtype=bool)
    crowd = np.zeros((height, width), dtype=bool)
    for a in anns:
        seg = a.get("segmentation")
        try:
            if isinstance(seg, list):
                polys = [p for p in seg if isinstance(p, list) and len(p) >= 6 and len(p) % 2 == 0]
                if not polys:
                    continue
                rle = mask_utils.merge(mask_utils.frPyObjects(polys, height, width))
            elif isinstance(seg, dict) and "counts" in seg:
                rle = mask_utils.frPyObjects(seg, height, width) if isinstance(seg["counts"], list) else seg
                if list(rle.get("size", [height, width])) != [height, width]:
                    raise ValueError(f"RLE size {rle.get('size')} is not the image size {[height, width]}")
            else:
                continue  # no segmentation: box-only annotation
            m = mask_utils.decode(rle).astype(bool)
        except (TypeError, ValueError, KeyError, IndexError) as e:
            raise SampleError(where, f"annotation {a.get('id')}: unusable segmentation ({e})") from None
        if m.ndim == 3:
            m = m.any(axis=2)
        (crowd if a.get("iscrowd") else objects)[...] |= m
    return objects, crowd


def load_ground_truth(data_root: str | Path, record: Sample | dict[str, Any]) -> Any:
    """Ground truth of a COCO sample or metadata row.

    seg: ``{"mask": bool (H, W), "valid": bool (H, W)}`` (crowd regions of the class invalid);
    det: ``{"boxes": (N, 4) xyxy, "crowd": (N,) bool}`` from the record, or read from the json (the class's
    annotations in the image, e.g. the crowd regions of an absent-class query) when it has none;
    cls: bool (class present). The evaluator reads COCO ground truth only through here.
    """
    root = Path(data_root)
    task = record_value(record, "task")
    if task == "cls":
        return bool(record_value(record, "positive"))
    if task == "det":
        boxes, flags = record_value(record, "boxes"), record_value(record, "crowd")
        if boxes is None:  # e.g. an absent-class query: the class's annotations (crowd regions) in the json
            _, _, anns, _ = _record_ids(root, record)
            picked = [(box, bool(a.get("iscrowd", 0))) for a in anns or [] if (box := _xyxy(a.get("bbox")))]
            boxes, flags = [b for b, _ in picked], [c for _, c in picked]
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        crowd = np.asarray(flags if flags is not None else [False] * len(boxes), dtype=bool)
        return {"boxes": boxes, "crowd": crowd}
    if task != "seg":
        raise ValueError(f"coco has no {task!r} task")
    _, _, anns, size = _record_ids(root, record)
    if not size or None in size:
        raise SampleError(root / str(record_value(record, "gt")), "image size unknown for the seg mask")
    objects, crowd = instances_mask(anns or [], int(size[1]), int(size[0]), root / str(record_value(record, "gt")))
    return {"mask": objects & ~crowd, "valid": ~crowd}
