"""Oxford-IIIT Pets reader: cls (species and breed), seg (from trimaps) and det (head boxes) pairs.

Download: https://www.robots.ox.ac.uk/~vgg/data/pets/ -> ``images.tar.gz`` and ``annotations.tar.gz``.
Unpack both into one folder and pass it as ``--data_root`` (e.g. ``data/oxford-iiit-pet``)::

    <data_root>/
      images/<Breed>_<N>.jpg           3,680 trainval + 3,669 test; a few are really PNG, GIF or RGBA
      annotations/trainval.txt         "<image> <CLASS-ID 1-37> <SPECIES 1=cat 2=dog> <BREED-ID>" per line
      annotations/test.txt             same format ("#" lines and blank lines are ignored)
      annotations/trimaps/<image>.png  8-bit: 1 = pet, 2 = background, 3 = border / not classified
      annotations/xmls/<image>.xml     head box in PASCAL VOC format (trainval images only)

Split (the official one of the paper): ``trainval.txt`` -> ``train``, ``test.txt`` -> ``eval``; an image
listed in both goes to eval only. Images in neither list (e.g. ``Abyssinian_34``) are not used.
A listed image missing on disk, or a malformed list line, is yielded as a ``SampleError``.

Samples (stem ``pets_<image>``, e.g. ``pets_Abyssinian_1``):

- ``cls``, species: every image is asked about both ``cat`` and ``dog`` (one positive, one negative).
- ``cls``, breed: the image's breed (positive) and ``options["neg_per_image"]`` other breeds (negative;
  default 1; ``None`` or a negative number: all 36), drawn by ``base.negative_classes`` seeded with
  ``options["seed"]`` and the stem. Breed names are the file-name prefix with ``_`` read as a space,
  as the dataset spells them: ``Abyssinian``, ``British Shorthair``, ``american bulldog``.
  ``options["pets_cls"]``: ``"species"``, ``"breed"`` or ``"both"``; default ``both`` for train (the
  cat/dog queries agree with COCO's classes) and ``breed`` for eval, so that the eval pairs are the
  37-way benchmark; build eval with ``neg_per_image`` -1 (all 36 negatives) for top-1 accuracy.
  ``options["neg_from"] == "listed"`` draws negatives only from breeds the split's images have.
- ``seg``: class ``cat`` or ``dog`` (the species), ``gt`` = the trimap. Target mask = trimap == 1, so the
  border (3) is *not pet* in training targets; at evaluation the border is ignored (``valid`` = trimap != 3).
- ``det``: class ``cat head`` or ``dog head`` (the boxes are head boxes, not whole-animal boxes as in
  COCO, so the instruction says so), boxes (xmin, ymin, xmax, ymax) exactly as written in the xml.
  Only images with an xml: in the official release these are trainval images, so det is train only.

Annotations are in the stored pixel frame (no EXIF rotation): ``load_ground_truth`` checks that the
trimap has the stored image's size.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dataset_creation.readers.base import (
    LayoutError,
    ReaderItem,
    Sample,
    SampleError,
    check_image_size,
    negative_classes,
    negative_options,
    read_annotation,
    read_list_lines,
    record_value,
)

NAME = "pets"
TASKS = ("cls", "seg", "det")
SPLITS = ("train", "eval")
PETS_LINE_WIDTH = 6  # the original builder drew the head boxes 6 px wide (other datasets: 4)
SPLIT_LISTS = {"train": "trainval.txt", "eval": "test.txt"}

# The 37 breeds in CLASS-ID order (1-based in the list files): capitalised names are cats.
BREED_FILE_NAMES = (
    "Abyssinian", "american_bulldog", "american_pit_bull_terrier", "basset_hound", "beagle", "Bengal",
    "Birman", "Bombay", "boxer", "British_Shorthair", "chihuahua", "Egyptian_Mau", "english_cocker_spaniel",
    "english_setter", "german_shorthaired", "great_pyrenees", "havanese", "japanese_chin", "keeshond",
    "leonberger", "Maine_Coon", "miniature_pinscher", "newfoundland", "Persian", "pomeranian", "pug",
    "Ragdoll", "Russian_Blue", "saint_bernard", "samoyed", "scottish_terrier", "shiba_inu", "Siamese",
    "Sphynx", "staffordshire_bull_terrier", "wheaten_terrier", "yorkshire_terrier",
)  # fmt: skip
BREEDS = tuple(name.replace("_", " ") for name in BREED_FILE_NAMES)
SPECIES = ("cat", "dog")  # SPECIES column 1, 2

TRIMAP_PET, TRIMAP_BACKGROUND, TRIMAP_BORDER = 1, 2, 3


@dataclass(frozen=True)
class PetEntry:
    """One line of trainval.txt / test.txt."""

    image: str  # file name without extension, e.g. "Abyssinian_100"
    breed_index: int  # 0-based index into BREEDS
    species: str  # "cat" | "dog"

    @property
    def breed(self) -> str:
        return BREEDS[self.breed_index]


def _annotations(data_root: Path) -> Path:
    return data_root / "annotations"


def looks_like(data_root: str | Path) -> bool:
    """True when ``data_root`` holds ``images/`` and ``annotations/trimaps/`` plus a Pets split list."""
    root = Path(data_root)
    ann = _annotations(root)
    return (
        (root / "images").is_dir()
        and (ann / "trimaps").is_dir()
        and any((ann / name).is_file() for name in SPLIT_LISTS.values())
    )


def check_layout(data_root: str | Path, split: str) -> None:
    """Raise ``LayoutError`` naming what is missing for ``split``."""
    root = Path(data_root)
    if split not in SPLITS:
        raise LayoutError(f"pets: unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    expected = [root / "images", _annotations(root) / SPLIT_LISTS[split], _annotations(root) / "trimaps"]
    missing = [p for p in expected if not p.exists()]
    if missing:
        raise LayoutError(
            f"{root} is not an Oxford-IIIT Pets root: missing {', '.join(str(p) for p in missing)}. "
            "Expected images/<name>.jpg, annotations/trainval.txt, annotations/test.txt, "
            "annotations/trimaps/<name>.png and annotations/xmls/<name>.xml "
            "(unpack images.tar.gz and annotations.tar.gz from https://www.robots.ox.ac.uk/~vgg/data/pets/)"
        )


def read_split_list(path: Path) -> Iterator[PetEntry | SampleError]:
    """Parse a Pets list file; a malformed or inconsistent line is yielded as a ``SampleError``."""
    for where, fields, line in read_list_lines(path):
        if len(fields) != 4 or not all(x.isdigit() for x in fields[1:]):
            yield SampleError(
                where, f"expected '<image> <class-id> <species> <breed-id>', got {line.strip()!r}"
            )
            continue
        image, class_id, species_id = fields[0], int(fields[1]), int(fields[2])
        if not 1 <= class_id <= len(BREEDS) or species_id not in (1, 2):
            yield SampleError(where, f"class id {class_id} or species {species_id} out of range")
            continue
        file_breed = BREED_FILE_NAMES[class_id - 1]
        if image.rsplit("_", 1)[0] != file_breed:
            yield SampleError(where, f"class id {class_id} is {file_breed}, but the image is {image}")
            continue
        if (file_breed[0].isupper()) != (species_id == 1):
            yield SampleError(where, f"species {species_id} contradicts breed {file_breed}")
            continue
        yield PetEntry(image, class_id - 1, SPECIES[species_id - 1])


def split_entries(data_root: str | Path, split: str) -> Iterator[PetEntry | SampleError]:
    """The entries of ``split``; trainval entries also listed in test.txt are left to eval."""
    ann = _annotations(Path(data_root))
    exclude: set[str] = set()
    test_list = ann / SPLIT_LISTS["eval"]
    if split == "train" and test_list.is_file():
        exclude = {e.image for e in read_split_list(test_list) if isinstance(e, PetEntry)}
    seen: set[str] = set()
    for entry in read_split_list(ann / SPLIT_LISTS[split]):
        if isinstance(entry, PetEntry):
            if entry.image in exclude or entry.image in seen:
                continue
            seen.add(entry.image)
        yield entry


def _image_path(root: Path, image: str) -> Path:
    return root / "images" / f"{image}.jpg"


def read_head_boxes(xml_path: Path) -> list[list[float]]:
    """Head boxes (xmin, ymin, xmax, ymax) of a Pets xml; raise ``SampleError`` when unusable."""
    try:
        tree = ET.parse(xml_path)
    except (ET.ParseError, OSError) as e:
        raise SampleError(xml_path, f"cannot parse annotation xml ({e})") from None
    boxes = []
    for obj in tree.getroot().iter("object"):
        bb = obj.find("bndbox")
        try:
            box = [float(bb.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax")]  # type: ignore[union-attr]
        except (AttributeError, TypeError, ValueError):
            raise SampleError(xml_path, "object without a numeric bndbox") from None
        if not (box[2] > box[0] and box[3] > box[1]):
            raise SampleError(xml_path, f"empty head box {box}")
        boxes.append(box)
    if not boxes:
        raise SampleError(xml_path, "no head box in the xml")
    return boxes


def iter_samples(
    data_root: str | Path,
    split: str,
    tasks: list[str] | tuple[str, ...],
    options: dict[str, Any] | None = None,
) -> Iterator[ReaderItem]:
    """Yield the pets samples of ``split`` for ``tasks`` (see the module docstring), errors included."""
    root = Path(data_root).resolve()
    check_layout(root, split)
    options = options or {}
    neg, seed = negative_options(options)
    cls_kind = options.get("pets_cls") or ("both" if split == "train" else "breed")
    if cls_kind not in ("species", "breed", "both"):
        raise ValueError(f"pets_cls must be species, breed or both, not {cls_kind!r}")
    ann = _annotations(root)
    entries = list(split_entries(root, split))
    # neg_from "listed": negatives only among the breeds the split's images have (a synthetic subset of the
    # breeds), since a query naming a breed never seen could be answered from its name alone
    seen = {e.breed for e in entries if not isinstance(e, SampleError)}
    breeds = tuple(b for b in BREEDS if b in seen) if options.get("neg_from") == "listed" else BREEDS
    for entry in entries:
        if isinstance(entry, SampleError):
            yield entry
            continue
        image = _image_path(root, entry.image)
        if not image.is_file():
            yield SampleError(image, f"listed in {SPLIT_LISTS[split]} but missing on disk")
            continue
        stem = f"pets_{entry.image}"
        base = dict(
            stem=stem, dataset=NAME, split=split, image=image, source=image.relative_to(root).as_posix()
        )
        if "cls" in tasks:
            if cls_kind in ("species", "both"):
                for species in SPECIES:
                    yield Sample(task="cls", class_name=species, positive=species == entry.species, **base)
            if cls_kind in ("breed", "both"):
                yield Sample(task="cls", class_name=entry.breed, positive=True, **base)
                for breed in negative_classes(breeds, {entry.breed}, neg, key=stem, seed=seed):
                    yield Sample(task="cls", class_name=breed, positive=False, **base)
        if "seg" in tasks:
            trimap = ann / "trimaps" / f"{entry.image}.png"
            if trimap.is_file():
                yield Sample(
                    task="seg", class_name=entry.species, gt=trimap.relative_to(root).as_posix(),
                    gt_args={"format": "pets_trimap"}, **base,
                )  # fmt: skip
            else:
                yield SampleError(trimap, "trimap missing; no seg sample for this image")
        if "det" in tasks:
            xml = ann / "xmls" / f"{entry.image}.xml"
            if xml.is_file():  # only trainval images have head boxes
                try:
                    boxes = read_head_boxes(xml)
                except SampleError as e:
                    yield e
                else:
                    yield Sample(
                        task="det", class_name=f"{entry.species} head", boxes=boxes,
                        gt=xml.relative_to(root).as_posix(), gt_args={"_line_width": PETS_LINE_WIDTH}, **base,
                    )  # fmt: skip


def load_trimap(path: Path, image: Path | None = None) -> np.ndarray:
    """The trimap as uint8 (H, W); ``SampleError`` if unreadable, not {1, 2, 3} or not the image's size."""
    trimap = read_annotation(path)
    if trimap.ndim != 2:
        raise SampleError(path, f"expected a single-channel trimap, got shape {trimap.shape}")
    bad = np.setdiff1d(np.unique(trimap), [TRIMAP_PET, TRIMAP_BACKGROUND, TRIMAP_BORDER])
    if bad.size:
        raise SampleError(
            path, f"trimap values must be 1 (pet), 2 (background), 3 (border); found {bad.tolist()}"
        )
    if image is not None:
        check_image_size(path, trimap, image, "trimap")
    return trimap


def load_ground_truth(data_root: str | Path, record: Sample | dict[str, Any]) -> Any:
    """Ground truth of a pets sample or metadata row, read from the raw files.

    seg: ``{"mask": bool (H, W) pet, "valid": bool (H, W) not border}``; det: ``{"boxes": (N, 4), "crowd": None}``;
    cls: bool (the queried class is present).
    """
    root = Path(data_root)
    task = record_value(record, "task")
    if task == "cls":
        return bool(record_value(record, "positive"))
    gt = record_value(record, "gt")
    if not gt:
        raise SampleError(record_value(record, "source", "?"), f"pets {task} record without a gt path")
    if task == "seg":
        trimap = load_trimap(root / gt, root / record_value(record, "source"))
        return {"mask": trimap == TRIMAP_PET, "valid": trimap != TRIMAP_BORDER}
    if task == "det":
        return {
            "boxes": np.asarray(read_head_boxes(root / gt), dtype=np.float64).reshape(-1, 4),
            "crowd": None,
        }
    raise ValueError(f"pets has no {task!r} task")


def list_split(
    data_root: str | Path, split: str, labels: str = "breed"
) -> tuple[list[tuple[Path, int]], list[str]]:
    """(image path, label index) of every listed image present on disk, and the class names.

    ``labels="breed"``: 37 classes (``BREEDS``, index = CLASS-ID - 1); ``"species"``: cat = 0, dog = 1.
    The same split as ``iter_samples``, for the classification baselines.
    """
    root = Path(data_root).resolve()
    check_layout(root, split)
    names = list(BREEDS if labels == "breed" else SPECIES)
    items = []
    for entry in split_entries(root, split):
        if isinstance(entry, PetEntry) and _image_path(root, entry.image).is_file():
            label = entry.breed_index if labels == "breed" else SPECIES.index(entry.species)
            items.append((_image_path(root, entry.image), label))
    return items, names
