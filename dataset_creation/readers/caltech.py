"""Caltech-101 reader: cls pairs over the 101 object classes with a fixed, seeded per-class split.

Download: https://data.caltech.edu/records/mzrjq-6wc02 (``caltech-101.zip``; inside it unpack
``101_ObjectCategories.tar.gz``). Pass the folder that holds ``101_ObjectCategories/`` (or that folder
itself) as ``--data_root``::

    <data_root>/101_ObjectCategories/<class>/image_<NNNN>.jpg     102 folders, 31-800 images each
    <data_root>/101_ObjectCategories/BACKGROUND_Google/            clutter, not a class: left out

Classes: the 101 other folders, sorted by name as ``sorted()`` orders them (``Faces``, ``Faces_easy``,
``Leopards``, ``Motorbikes``, ``accordion``, ...); a class's label index is its position.
Split (there is no official one; this is the common protocol): per class, the file names sorted, then
shuffled by ``base.stable_rng(SPLIT_SEED, "caltech101", <class folder>)``; the first ``TRAIN_PER_CLASS`` (30)
are ``train``, all the others ``eval`` (every class keeps at least one eval image). It depends on nothing
else (not on ``--seed``), so ``list_split`` gives the baselines exactly the same split.

Class names: the folder name with ``_`` read as a space, except ``READABLE_NAMES`` (``Faces`` -> ``face``,
``Faces_easy`` -> ``close-up face``, ``Motorbikes`` -> ``motorbike``, ``car_side`` -> ``car``, ...).

Samples (stem ``caltech_<class folder>_<file stem>``, e.g. ``caltech_accordion_image_0001``): ``cls`` with
the image's class (positive) and ``options["neg_per_image"]`` (default 1; -1 or None: all) other classes
(negative), drawn by ``base.negative_classes`` seeded with ``options["seed"]`` and the stem. Classes
whose pictures show each other (``CONFUSABLE``: the two face sets, cougar body / face, crocodile /
crocodile head, flamingo / flamingo head, chair / windsor chair) are never drawn as each other's negatives.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dataset_creation.readers.base import (
    LayoutError,
    ReaderItem,
    Sample,
    negative_classes,
    negative_options,
    record_value,
    stable_rng,
)
from instructcv.images import IMAGE_EXTENSIONS

NAME = "caltech"
TASKS = ("cls",)
SPLITS = ("train", "eval")
CATEGORIES = "101_ObjectCategories"
BACKGROUND = "BACKGROUND_Google"
TRAIN_PER_CLASS = 30
SPLIT_SEED = 0

READABLE_NAMES = {
    "Faces": "face",
    "Faces_easy": "close-up face",
    "Leopards": "leopard",
    "Motorbikes": "motorbike",
    "airplanes": "airplane",
    "car_side": "car",
    "water_lilly": "water lily",
}
CONFUSABLE = (
    {"Faces", "Faces_easy"},
    {"cougar_body", "cougar_face"},
    {"crocodile", "crocodile_head"},
    {"flamingo", "flamingo_head"},
    {"chair", "windsor_chair"},
)


def categories_dir(data_root: str | Path) -> Path:
    """``<data_root>/101_ObjectCategories``, or ``data_root`` itself when it is that folder."""
    root = Path(data_root)
    return root if root.name == CATEGORIES else root / CATEGORIES


def readable_name(folder: str) -> str:
    return READABLE_NAMES.get(folder, folder.replace("_", " "))


def class_folders(data_root: str | Path) -> list[str]:
    """The class folders (``BACKGROUND_Google`` and hidden entries excluded), sorted: label order."""
    cats = categories_dir(data_root)
    return sorted(
        e.name for e in os.scandir(cats) if e.is_dir() and e.name != BACKGROUND and not e.name.startswith(".")
    )


def looks_like(data_root: str | Path) -> bool:
    """True when ``data_root`` is or holds ``101_ObjectCategories/`` with class folders."""
    cats = categories_dir(data_root)
    return (
        cats.is_dir()
        and cats.name == CATEGORIES
        and ((cats / BACKGROUND).is_dir() or (cats / "accordion").is_dir())
    )


def check_layout(data_root: str | Path, split: str) -> None:
    """Raise ``LayoutError`` when ``101_ObjectCategories/<class>/`` folders are missing."""
    if split not in SPLITS:
        raise LayoutError(f"caltech: unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    cats = categories_dir(data_root)
    if not cats.is_dir() or not class_folders(data_root):
        raise LayoutError(
            f"{data_root} is not a Caltech-101 root: missing {cats}/<class>/image_NNNN.jpg. Expected "
            f"{CATEGORIES}/ with one folder per class (accordion/, airplanes/, ...; {BACKGROUND}/ is ignored), "
            "unpacked from 101_ObjectCategories.tar.gz of https://data.caltech.edu/records/mzrjq-6wc02"
        )


def _image_files(folder: Path) -> list[Path]:
    return sorted(
        Path(e.path) for e in os.scandir(folder)
        if e.is_file() and not e.name.startswith(".") and os.path.splitext(e.name)[1].lower() in IMAGE_EXTENSIONS
    )  # fmt: skip


def split_class(
    files: list[Path], folder: str, train_per_class: int = TRAIN_PER_CLASS
) -> dict[str, list[Path]]:
    """The fixed split of one class's sorted files: shuffled by the class name, the first ones to train."""
    order = stable_rng(SPLIT_SEED, "caltech101", folder).permutation(len(files))
    n_train = min(train_per_class, max(len(files) - 1, 0))
    shuffled = [files[i] for i in order]
    return {"train": sorted(shuffled[:n_train]), "eval": sorted(shuffled[n_train:])}


def list_split(
    data_root: str | Path, split: str, train_per_class: int = TRAIN_PER_CLASS
) -> tuple[list[tuple[Path, int]], list[str]]:
    """(image path, label index) of every image of ``split``, and the readable class names."""
    check_layout(data_root, split)
    cats = categories_dir(Path(data_root).resolve())
    folders = class_folders(cats)
    items = []
    for label, folder in enumerate(folders):
        items += [
            (p, label) for p in split_class(_image_files(cats / folder), folder, train_per_class)[split]
        ]
    return items, [readable_name(f) for f in folders]


def iter_samples(
    data_root: str | Path,
    split: str,
    tasks: list[str] | tuple[str, ...],
    options: dict[str, Any] | None = None,
) -> Iterator[ReaderItem]:
    """Yield the cls samples of ``split``: each image's class and seeded negatives."""
    root = Path(data_root).resolve()
    check_layout(root, split)
    if "cls" not in tasks:
        return
    neg, seed = negative_options(options)
    folders = class_folders(categories_dir(root))
    items, names = list_split(root, split)
    group = {f: set().union(*(g for g in CONFUSABLE if f in g)) | {f} for f in folders}
    for image, label in items:
        folder = folders[label]
        stem = f"caltech_{folder}_{'_'.join(image.stem.split())}"
        base = dict(
            stem=stem,
            task="cls",
            dataset=NAME,
            split=split,
            image=image,
            source=image.relative_to(root).as_posix(),
        )
        yield Sample(class_name=names[label], positive=True, **base)
        exclude = {readable_name(f) for f in group[folder]}
        for name in negative_classes(names, exclude, neg, key=stem, seed=seed):
            yield Sample(class_name=name, positive=False, **base)


def load_ground_truth(data_root: str | Path, record: Sample | dict[str, Any]) -> bool:
    """cls truth: is the queried class the image's class (the record's ``positive``)."""
    return bool(record_value(record, "positive"))
