"""ADE20K (SceneParsing / ADEChallengeData2016) reader: seg pairs, one per class present in an image.

Download: http://data.csail.mit.edu/places/ADEchallenge/ADEChallengeData2016.zip (the MIT Scene
Parsing benchmark, http://sceneparsing.csail.mit.edu/). Unpack it and pass either the
``ADEChallengeData2016`` folder or its parent as ``--data_root`` (e.g. ``data/ade20k``)::

    <data_root>/ADEChallengeData2016/
      images/training/ADE_train_<8 digits>.jpg        split train (20,210 images)
      images/validation/ADE_val_<8 digits>.jpg        split eval (2,000 images)
      annotations/training/ADE_train_<8 digits>.png   8-bit label map: 0 = other (ignored), 1..150 = classes
      annotations/validation/ADE_val_<8 digits>.png

Split: the official one, ``training`` -> ``train``, ``validation`` -> ``eval``.

Samples (stem = the file name, e.g. ``ADE_train_00000036``, which already names the dataset): one
``seg`` sample per class id 1..150 present in the label map, class name from ``ADE20K_CLASSES``
(the benchmark's 150 short names), ``gt`` = the label map, ``gt_args = {"label": id}``. Label 0 is
"other objects": never a class, ``valid = False`` at evaluation. With ``options["absent_per_image"] = k``
> 0 (training pairs), also ``k`` classes absent from the label map (from the 150, or with ``neg_from =
"listed"`` from those the split's label maps show), seeded by the stem, marked ``absent``: their masks are
empty. An image without its label map, or
an unreadable label map, is yielded as a ``SampleError``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from dataset_creation.readers.base import (
    LayoutError,
    ReaderItem,
    Sample,
    SampleError,
    absent_options,
    class_ids_present,
    negative_classes,
    negative_options,
    read_annotation,
    record_value,
)

NAME = "ade20k"
TASKS = ("seg",)
SPLITS = ("train", "eval")
SPLIT_DIRS = {"train": "training", "eval": "validation"}
FOLDER = "ADEChallengeData2016"
LAYOUT = "[ADEChallengeData2016/]images|annotations/{training,validation}/ADE_*.{jpg,png}"
IGNORE_LABEL = 0

# Class id k (1..150) is ADE20K_CLASSES[k - 1]; the SceneParsing objectInfo150 order.
ADE20K_CLASSES = (
    "wall", "building", "sky", "floor", "tree", "ceiling", "road", "bed", "windowpane", "grass", "cabinet",
    "sidewalk", "person", "earth", "door", "table", "mountain", "plant", "curtain", "chair", "car", "water",
    "painting", "sofa", "shelf", "house", "sea", "mirror", "rug", "field", "armchair", "seat", "fence", "desk",
    "rock", "wardrobe", "lamp", "bathtub", "railing", "cushion", "base", "box", "column", "signboard",
    "chest of drawers", "counter", "sand", "sink", "skyscraper", "fireplace", "refrigerator", "grandstand",
    "path", "stairs", "runway", "case", "pool table", "pillow", "screen door", "stairway", "river", "bridge",
    "bookcase", "blind", "coffee table", "toilet", "flower", "book", "hill", "bench", "countertop", "stove",
    "palm", "kitchen island", "computer", "swivel chair", "boat", "bar", "arcade machine", "hovel", "bus",
    "towel", "light", "truck", "tower", "chandelier", "awning", "streetlight", "booth", "television receiver",
    "airplane", "dirt track", "apparel", "pole", "land", "bannister", "escalator", "ottoman", "bottle", "buffet",
    "poster", "stage", "van", "ship", "fountain", "conveyer belt", "canopy", "washer", "plaything",
    "swimming pool", "stool", "barrel", "basket", "waterfall", "tent", "bag", "minibike", "cradle", "oven",
    "ball", "food", "step", "tank", "trade name", "microwave", "pot", "animal", "bicycle", "lake", "dishwasher",
    "screen", "blanket", "sculpture", "hood", "sconce", "vase", "traffic light", "tray", "ashcan", "fan", "pier",
    "crt screen", "plate", "monitor", "bulletin board", "shower", "radiator", "glass", "clock", "flag",
)  # fmt: skip


def dataset_dir(data_root: str | Path) -> Path:
    """The ``ADEChallengeData2016`` folder: ``data_root`` itself or its child of that name."""
    root = Path(data_root)
    return root / FOLDER if (root / FOLDER).is_dir() else root


def looks_like(data_root: str | Path) -> bool:
    """True when ``data_root`` (or its ``ADEChallengeData2016``) has images/ and annotations/ split folders."""
    d = dataset_dir(data_root)
    return any((d / "images" / s).is_dir() and (d / "annotations" / s).is_dir() for s in SPLIT_DIRS.values())


def check_layout(data_root: str | Path, split: str) -> None:
    """Raise ``LayoutError`` naming the image and annotation folders ``split`` needs."""
    if split not in SPLITS:
        raise LayoutError(f"ade20k: unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    d = dataset_dir(data_root)
    expected = [d / "images" / SPLIT_DIRS[split], d / "annotations" / SPLIT_DIRS[split]]
    missing = [p for p in expected if not p.is_dir()]
    if missing:
        raise LayoutError(
            f"{data_root} has no ADE20K {split} split: missing {', '.join(str(p) for p in missing)}. "
            f"Expected [{FOLDER}/]images/{SPLIT_DIRS[split]}/ADE_*.jpg and "
            f"annotations/{SPLIT_DIRS[split]}/ADE_*.png (unzip ADEChallengeData2016.zip from "
            "http://sceneparsing.csail.mit.edu/)"
        )


def read_labels(path: Path) -> np.ndarray:
    """The label map as uint8 (H, W); ``SampleError`` when unreadable or not single-channel 8-bit."""
    labels = read_annotation(path)
    if labels.ndim != 2 or labels.dtype != np.uint8:
        raise SampleError(path, f"expected an 8-bit single-channel label map, got {labels.dtype} {labels.shape}")
    return labels


def present_labels(path: Path) -> list[int]:
    """Class ids 1..150 present in a label map (a fast header+decode with OpenCV, PIL as the judge)."""
    labels = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if labels is None or labels.ndim != 2 or labels.dtype != np.uint8:
        labels = read_labels(path)  # raises the precise SampleError
    return class_ids_present(labels, len(ADE20K_CLASSES))


def iter_samples(
    data_root: str | Path, split: str, tasks: list[str] | tuple[str, ...], options: dict[str, Any] | None = None
) -> Iterator[ReaderItem]:
    """Yield one seg sample per (image, present class) of ``split``, errors included."""
    check_layout(data_root, split)
    if "seg" not in tasks:
        return
    root = Path(data_root).resolve()
    d = dataset_dir(root)
    images_dir = d / "images" / SPLIT_DIRS[split]
    ann_dir = d / "annotations" / SPLIT_DIRS[split]
    read: list[tuple[Path, Path, list[int]]] = []
    for image in sorted(p for p in images_dir.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png")):
        ann = ann_dir / f"{image.stem}.png"
        if not ann.is_file():
            yield SampleError(ann, f"label map of {image.name} missing; image skipped")
            continue
        try:
            read.append((image, ann, present_labels(ann)))
        except SampleError as e:
            yield e
    absent_k, (_, seed) = absent_options(options), negative_options(options)
    # absent classes come from the 150, or (neg_from listed) from the classes this split's label maps show
    pool = (sorted({k for _, _, labels in read for k in labels}) if (options or {}).get("neg_from") == "listed"
            else list(range(1, len(ADE20K_CLASSES) + 1)))
    for image, ann, labels in read:
        stem = "_".join(image.stem.split())
        source = image.relative_to(root).as_posix()
        gt = ann.relative_to(root).as_posix()
        absent = negative_classes(pool, labels, absent_k, key=f"{stem}/absent", seed=seed) if absent_k else []
        for k in [*labels, *absent]:
            yield Sample(
                stem=stem, task="seg", dataset=NAME, split=split, image=image, source=source,
                class_name=ADE20K_CLASSES[k - 1], gt=gt, gt_args={"label": k}, absent=k in absent,
            )  # fmt: skip


def load_ground_truth(data_root: str | Path, record: Sample | dict[str, Any]) -> dict[str, np.ndarray]:
    """``{"mask": labels == k, "valid": labels != 0}`` of an ADE20K seg sample or metadata row."""
    if record_value(record, "task") != "seg":
        raise ValueError(f"ade20k has no {record_value(record, 'task')!r} task")
    path = Path(data_root) / str(record_value(record, "gt"))
    label = (record_value(record, "gt_args") or {}).get("label")
    if label is None:
        label = ADE20K_CLASSES.index(record_value(record, "class_name")) + 1
    labels = read_labels(path)
    return {"mask": labels == int(label), "valid": labels != IGNORE_LABEL}
