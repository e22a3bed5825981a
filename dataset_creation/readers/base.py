"""What every dataset reader yields and the errors it raises.

A reader turns a raw dataset in its native layout into ``Sample`` records, one per
instruction/image pair; it knows nothing about how pairs are written. The same reader's
``load_ground_truth`` is used by the pairs writer (to draw targets) and by the evaluator
(to score answers against the raw annotation), so each dataset's quirks live in one place.

Bad items: ``iter_samples`` *yields* a ``SampleError`` (it does not raise it) for a raw item it
cannot use (image missing on disk, unparsable annotation line), then goes on with the next item;
the writer reports and skips it. ``load_ground_truth`` raises ``SampleError`` for an unreadable or
inconsistent annotation file. A wrong ``data_root`` raises ``LayoutError`` from ``check_layout``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from instructcv.images import ImageReadError, load_array
from instructcv.pairs import class_slug, sample_name  # noqa: F401 (class_slug: readers import it from here)

SPLITS = ("train", "eval")


class LayoutError(ValueError):
    """``--data_root`` does not hold the expected dataset layout; the message lists what was expected."""


class SampleError(ValueError):
    """One raw item (image or annotation) is unusable; it is skipped and reported, the rest is built."""

    def __init__(self, path: str | Path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


@dataclass
class Sample:
    """One instruction/image pair to write: which raw image, which task and class, and its ground truth.

    ``gt_args`` is written to the sample's metadata row (the evaluator passes it back to ``load_ground_truth``),
    except keys starting with ``_``: build-time hints for the writer only (e.g. COCO's polygons, so
    that writer processes never load a whole annotation json). ``gt_args["image_size"] = [w, h]``,
    when a reader knows it from the annotation, lets the writer check the image against it.
    """

    stem: str
    task: str
    dataset: str
    split: str
    image: Path
    source: str
    class_name: str | None = None
    boxes: list[list[float]] | None = None
    positive: bool | None = None
    gt: str | None = None
    gt_args: dict[str, Any] = field(default_factory=dict)
    crowd: list[bool] | None = None  # det: per box, an ignore region (COCO iscrowd, VOC difficult); drawn too
    absent: bool = False  # det/seg: a class the image does not contain (empty answer; ``--absent_per_image``)

    @property
    def name(self) -> str:
        """Sample folder name (``instructcv.pairs.sample_name``)."""
        return sample_name(self.stem, self.task, self.class_name)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["image"] = str(self.image)
        return d


ReaderItem = Sample | SampleError
"""What ``iter_samples`` yields: a pair to write, or the error of one skipped raw item."""

# Sample attribute -> metadata row key, where they differ (DESIGN.md section 4).
_RECORD_KEYS = {"class_name": "class", "boxes": "bbox"}


def record_value(record: Sample | dict[str, Any], field_name: str, default: Any = None) -> Any:
    """A ``Sample`` attribute, or the same value from a metadata row (``class_name`` -> ``class``)."""
    if isinstance(record, Sample):
        return getattr(record, field_name, default)
    if field_name in record:
        return record[field_name]
    return record.get(_RECORD_KEYS.get(field_name, field_name), default)


def stable_rng(seed: int, *keys: str) -> np.random.Generator:
    """A numpy generator determined by ``seed`` and string ``keys`` (never Python's salted ``hash()``)."""
    digest = hashlib.sha256("\x1f".join(keys).encode("utf-8")).digest()
    return np.random.default_rng([int(seed), int.from_bytes(digest[:8], "little")])


def negative_options(options: dict[str, Any] | None) -> tuple[int | None, int]:
    """(``options["neg_per_image"]``, ``options["seed"]``) for ``negative_classes``: 1 and 0 unless given."""
    options = options or {}
    return options.get("neg_per_image", 1), int(options.get("seed", 0))


def absent_options(options: dict[str, Any] | None) -> int:
    """``options["absent_per_image"]``: absent classes asked per image for det/seg (0 unless given)."""
    return int((options or {}).get("absent_per_image") or 0)


def negative_classes(
    class_names: Sequence[str],
    exclude: Collection[str],
    n: int | None,
    key: str,
    seed: int = 0,
) -> list[str]:
    """``n`` classes of ``class_names`` not in ``exclude``, drawn without replacement, deterministic in
    (``key``, ``seed``); ``n`` None or negative, or larger than what is left: all of them, in list order."""
    candidates = [c for c in class_names if c not in exclude]
    if n is None or n < 0 or n >= len(candidates):
        return candidates
    picked = stable_rng(seed, "negatives", key).choice(len(candidates), size=n, replace=False)
    return [candidates[i] for i in sorted(picked)]


def read_list_lines(path: Path) -> Iterator[tuple[str, list[str], str]]:
    """(``<path>:<line number>``, fields, text) of each line of a whitespace-separated list file;
    blank lines and ``#`` comments are left out."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    for lineno, line in enumerate(lines, 1):
        fields = line.split()
        if fields and not fields[0].startswith("#"):
            yield f"{path}:{lineno}", fields, line


def read_annotation(path: Path) -> np.ndarray:
    """A raw annotation image as ``instructcv.images.load_array`` reads it; unreadable: ``SampleError``."""
    try:
        return load_array(path)
    except ImageReadError as e:
        raise SampleError(path, e.reason) from None


def class_ids_present(labels: np.ndarray, n_classes: int) -> list[int]:
    """The ids 1..``n_classes`` that occur in a uint8 label map (0 and ids above are no class)."""
    counts = np.bincount(labels.ravel(), minlength=256)
    return [int(k) for k in np.flatnonzero(counts[1 : n_classes + 1]) + 1]


def check_image_size(path: Path, annotation: np.ndarray, image: Path, what: str) -> None:
    """Raise ``SampleError`` unless ``annotation`` (read from ``path``, a ``what`` map) has the stored
    size of ``image``, whose header alone is read."""
    try:
        with Image.open(image) as im:
            size = im.size
    except OSError as e:
        raise SampleError(image, f"cannot read image header ({e})") from None
    if size != (annotation.shape[1], annotation.shape[0]):
        raise SampleError(
            path, f"{what} is {annotation.shape[1]}x{annotation.shape[0]}, image is {size[0]}x{size[1]}"
        )
