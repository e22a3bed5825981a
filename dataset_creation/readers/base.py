"""What every dataset reader yields and the errors it raises.

A reader turns a raw dataset in its native layout into ``Sample`` records, one per
instruction/image pair; it knows nothing about how pairs are written. The same reader's
``load_ground_truth`` is used by the pairs writer (to draw targets) and by the evaluator
(to score answers against the raw annotation), so each dataset's quirks live in one place.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

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
    """One instruction/image pair to write: which raw image, which task and class, and its ground truth."""

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

    @property
    def name(self) -> str:
        """Sample folder name: ``<stem>_<task>`` or ``<stem>_<task>_<class_slug>``."""
        if self.class_name is None:
            return f"{self.stem}_{self.task}"
        return f"{self.stem}_{self.task}_{class_slug(self.class_name)}"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["image"] = str(self.image)
        return d


def class_slug(name: str) -> str:
    """Class names in folder names: lower case, spaces (and slashes) turned into ``_``."""
    return "_".join(name.strip().lower().replace("/", " ").split())
