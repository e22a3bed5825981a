"""ImageNet (subset) reader: cls pairs, one positive and seeded negative classes per image.

Download: https://image-net.org/download-images.php (ILSVRC2012 train/val, registration) or the same data on
Kaggle, https://www.kaggle.com/c/imagenet-object-localization-challenge (``LOC_synset_mapping.txt``,
``LOC_val_solution.csv``, ``ILSVRC/Data/CLS-LOC/{train,val}``). Any subset of the classes may be kept.
The data_root holds a synset -> name map, ``LOC_synset_mapping.txt`` (or Caffe's ``synset_words.txt``,
same format: ``n01440764 tench, Tinca tinca``), and the images in one of these layouts::

    <data_root>/train/<synset>/*.JPEG  and  val/<synset>/*.JPEG     train -> train, val -> eval
    <data_root>/train/<synset>/*.JPEG  and  val/*.JPEG + LOC_val_solution.csv   (Kaggle; val labels from the csv)
    <data_root>/ILSVRC/Data/CLS-LOC/...                               (the Kaggle tree as unpacked, same two rules)
    <data_root>/<synset>/*.JPEG                                       no split folders: a fixed seeded split,
                                                                      EVAL_FRACTION (20 %) of each class to eval

Classes are the synset folders present (of ``train/`` and ``val/``, or of the root), sorted by synset id;
a class's label index is its position (with all 1,000 classes, the usual ILSVRC indices). Kaggle val images
of synsets not among them are left out. The seeded split: per class, the file names sorted, shuffled by
``base.stable_rng(SPLIT_SEED, "imagenet", synset)``, the first ``round(EVAL_FRACTION * n)`` (at least 1 when
n >= 2) to eval; it depends on nothing else, so the baselines get the same split from ``list_split``.
A file name present in both train/ and val/ of a class is used for eval only.

Class names: the first synonym of the map (``tench``, ``great white shark``). Where two classes share it,
ignoring case, each takes its first synonym the other lacks (``Cardigan`` -> ``Cardigan Welsh corgi``,
``maillot`` -> ``tank suit``); if none is left, the synset id is appended (``crane (n02012849)``,
``crane (n03126707)``). Names are unique as sample-name slugs, so one image never has two samples
of the same name.

Samples (stem ``imagenet_<file stem>``, or ``imagenet_<synset>_<file stem>`` when the file name does not
start with the synset or ``ILSVRC``): ``cls`` with the image's class (positive) and
``options["neg_per_image"]`` (default 1; -1 or None: all) other classes (negative), drawn by
``base.negative_classes`` seeded with ``options["seed"]`` and the stem.
"""

from __future__ import annotations

import csv
import os
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dataset_creation.readers.base import (
    LayoutError,
    ReaderItem,
    Sample,
    SampleError,
    class_slug,
    negative_classes,
    negative_options,
    record_value,
    stable_rng,
)
from instructcv.images import IMAGE_EXTENSIONS

NAME = "imagenet"
TASKS = ("cls",)
SPLITS = ("train", "eval")
MAPPING_FILES = ("LOC_synset_mapping.txt", "synset_words.txt")
VAL_SOLUTION = "LOC_val_solution.csv"
KAGGLE_IMAGES = Path("ILSVRC") / "Data" / "CLS-LOC"
EVAL_FRACTION = 0.2
SPLIT_SEED = 0

_SYNSET = re.compile(r"^n\d{8}$")


@dataclass
class ImageNetIndex:
    """Every usable image of a data_root, per split, with the class list."""

    synsets: list[str]
    names: list[str]
    items: dict[str, list[tuple[Path, int]]] = field(default_factory=dict)  # split -> (image, label)
    errors: list[SampleError] = field(default_factory=list)


def _mapping_file(root: Path) -> Path | None:
    return next((root / n for n in MAPPING_FILES if (root / n).is_file()), None)


def _images_root(root: Path) -> Path:
    return root / KAGGLE_IMAGES if (root / KAGGLE_IMAGES).is_dir() else root


def _synset_dirs(folder: Path) -> list[str]:
    if not folder.is_dir():
        return []
    return sorted(e.name for e in os.scandir(folder) if e.is_dir() and _SYNSET.match(e.name))


def _image_files(folder: Path) -> list[Path]:
    return sorted(
        Path(e.path) for e in os.scandir(folder)
        if e.is_file() and not e.name.startswith(".") and os.path.splitext(e.name)[1].lower() in IMAGE_EXTENSIONS
    )  # fmt: skip


def looks_like(data_root: str | Path) -> bool:
    """True when ``data_root`` has a synset map and synset folders (directly, under train/ or val/)."""
    root = Path(data_root)
    if _mapping_file(root) is None:
        return False
    images = _images_root(root)
    return any(_synset_dirs(d) for d in (images / "train", images / "val", images))


def check_layout(data_root: str | Path, split: str) -> None:
    """Raise ``LayoutError`` naming the map file and image folders when they are missing."""
    root = Path(data_root)
    if split not in SPLITS:
        raise LayoutError(f"imagenet: unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    expected = (
        "Expected LOC_synset_mapping.txt (or synset_words.txt) with lines 'n01440764 tench, Tinca tinca', and "
        "train/<synset>/*.JPEG with val/<synset>/*.JPEG (or flat val/*.JPEG plus LOC_val_solution.csv), "
        "or <synset>/*.JPEG folders directly (seeded 80/20 split)"
    )
    if _mapping_file(root) is None:
        raise LayoutError(f"{root} is not an ImageNet root: missing {root / MAPPING_FILES[0]}. {expected}")
    images = _images_root(root)
    if not any(_synset_dirs(d) for d in (images / "train", images / "val", images)):
        raise LayoutError(
            f"{root} is not an ImageNet root: no synset folders (n01440764, ...) found. {expected}"
        )
    if split == "eval" and _synset_dirs(images / "train") and not _has_val(root, images):
        raise LayoutError(
            f"{root}: train/ has no matching val/: missing {images / 'val'}/<synset>/ or "
            f"{images / 'val'}/*.JPEG with {root / VAL_SOLUTION}. {expected}"
        )


def _has_val(root: Path, images: Path) -> bool:
    return bool(_synset_dirs(images / "val")) or (
        (images / "val").is_dir() and (root / VAL_SOLUTION).is_file()
    )


def read_synset_mapping(path: Path) -> dict[str, list[str]]:
    """synset -> its synonyms, from ``n01440764 tench, Tinca tinca`` lines; ``LayoutError`` if malformed."""
    mapping = {}
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        synset, _, names = line.strip().partition(" ")
        synonyms = [n.strip() for n in names.split(",") if n.strip()]
        if not _SYNSET.match(synset) or not synonyms:
            raise LayoutError(f"{path}:{lineno}: expected '<synset> <name>, <name>...', got {line.strip()!r}")
        mapping[synset] = synonyms
    return mapping


def readable_names(synsets: list[str], mapping: dict[str, list[str]]) -> list[str]:
    """One readable class name per synset, unique even as a lower-case slug (see the module docstring)."""
    first = [mapping[s][0] for s in synsets]
    count = Counter(class_slug(n) for n in first)
    names = []
    for s, name in zip(synsets, first, strict=True):
        if count[class_slug(name)] > 1:
            taken = {
                class_slug(x) for o, n in zip(synsets, first, strict=True)
                if o != s and class_slug(n) == class_slug(name) for x in mapping[o]
            }  # fmt: skip
            name = next((x for x in mapping[s][1:] if class_slug(x) not in taken), name)
        names.append(name)
    count = Counter(class_slug(n) for n in names)
    return [f"{n} ({s})" if count[class_slug(n)] > 1 else n for s, n in zip(synsets, names, strict=True)]


def stem_of(image: Path, synset: str) -> str:
    name = "_".join(image.stem.split())
    if name.startswith(synset) or name.startswith("ILSVRC"):
        return f"imagenet_{name}"
    return f"imagenet_{synset}_{name}"


def build_index(data_root: str | Path, splits: tuple[str, ...] = SPLITS) -> ImageNetIndex:
    """Classes and the (image, label) lists of ``splits``, by the rules of the module docstring."""
    root = Path(data_root).resolve()
    check_layout(root, "train")
    mapping_path = _mapping_file(root)
    mapping = read_synset_mapping(mapping_path)  # type: ignore[arg-type]
    images = _images_root(root)
    split_folders = bool(_synset_dirs(images / "train"))
    if split_folders:
        synsets = sorted(set(_synset_dirs(images / "train")) | set(_synset_dirs(images / "val")))
    else:
        synsets = _synset_dirs(images)
    unknown = [s for s in synsets if s not in mapping]
    if unknown:
        raise LayoutError(
            f"{mapping_path} has no name for {len(unknown)} synset folder(s): {', '.join(unknown[:5])}"
        )
    index = ImageNetIndex(synsets, readable_names(synsets, mapping), {"train": [], "eval": []})
    label = {s: i for i, s in enumerate(synsets)}
    if not split_folders:
        for s in synsets:
            files = _image_files(images / s)
            order = stable_rng(SPLIT_SEED, "imagenet", s).permutation(len(files))
            n_eval = max(1, round(EVAL_FRACTION * len(files))) if len(files) >= 2 else 0
            for rank, i in enumerate(order):
                index.items["eval" if rank < n_eval else "train"].append((files[i], label[s]))
    else:
        val_names: set[tuple[str, str]] = set()
        if _synset_dirs(images / "val"):
            for s in _synset_dirs(images / "val"):
                for f in _image_files(images / "val" / s):
                    index.items["eval"].append((f, label[s]))
                    val_names.add((s, f.name))
        elif (images / "val").is_dir() and (root / VAL_SOLUTION).is_file():
            index.items["eval"] = _kaggle_val(root / VAL_SOLUTION, images / "val", label, index.errors)
        for s in _synset_dirs(images / "train") if "train" in splits else []:  # eval alone: skip the big scan
            index.items["train"] += [
                (f, label[s]) for f in _image_files(images / "train" / s) if (s, f.name) not in val_names
            ]
    for split in index.items:
        index.items[split].sort(key=lambda item: (item[1], item[0].name))
    return index


def _kaggle_val(
    solution: Path, val_dir: Path, label: dict[str, int], errors: list[SampleError]
) -> list[tuple[Path, int]]:
    """Flat Kaggle val images labelled by the first synset of each LOC_val_solution.csv row."""
    on_disk = {f.stem: f for f in _image_files(val_dir)}
    items = []
    with open(solution, newline="", encoding="utf-8") as f:
        for lineno, row in enumerate(csv.reader(f), 1):
            if lineno == 1 and row and row[0] == "ImageId":
                continue
            if len(row) != 2 or not row[1].split():
                errors.append(
                    SampleError(f"{solution}:{lineno}", f"expected 'ImageId,PredictionString', got {row}")
                )
                continue
            synset = row[1].split()[0]
            if synset not in label:
                continue  # a class outside this subset
            if row[0] not in on_disk:
                errors.append(
                    SampleError(val_dir / f"{row[0]}.JPEG", f"listed in {VAL_SOLUTION} but missing on disk")
                )
                continue
            items.append((on_disk[row[0]], label[synset]))
    return items


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
    index = build_index(root, (split,))
    if split == "eval":
        yield from index.errors  # unusable LOC_val_solution.csv rows
    seen: dict[str, Path] = {}
    for image, lab in index.items[split]:
        stem = stem_of(image, index.synsets[lab])
        if stem in seen:
            yield SampleError(image, f"its sample name {stem} is taken by {seen[stem]}")
            continue
        seen[stem] = image
        base = dict(
            stem=stem,
            task="cls",
            dataset=NAME,
            split=split,
            image=image,
            source=image.relative_to(root).as_posix(),
        )
        positive = index.names[lab]
        yield Sample(class_name=positive, positive=True, **base)
        for name in negative_classes(index.names, {positive}, neg, key=stem, seed=seed):
            yield Sample(class_name=name, positive=False, **base)


def load_ground_truth(data_root: str | Path, record: Sample | dict[str, Any]) -> bool:
    """cls truth: is the queried class the image's class (the record's ``positive``)."""
    return bool(record_value(record, "positive"))


def list_split(data_root: str | Path, split: str) -> tuple[list[tuple[Path, int]], list[str]]:
    """(image path, label index) of every image of ``split``, and the class names: the reader's split."""
    check_layout(data_root, split)
    index = build_index(data_root, (split,))
    return list(index.items[split]), list(index.names)
