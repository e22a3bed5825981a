"""The interface every task offers the rest of the project, so that no caller branches on the task tag.

A task (``tasks/<task>.py`` defines one subclass and one instance, ``TASK``) knows how to

- build the target image and its metadata fields from a reader's record (``build_target``),
- say what a query is scored against (``truth_from_row`` / ``truth_from_raw`` / ``truth_from_target``,
  ``absent_truth``),
- read an answer image back into a prediction (``read_answer``, ``blank`` for a missing answer),
- show a prediction to people (``render``, ``describe``) and write it as files (``outputs``),
- and make the metric that accumulates predictions (``new_metric``; its ``add_prediction(record,
  prediction, truth)`` is what evaluation calls).

Records are pairs metadata rows (dicts) or ``Sample`` objects; nothing here reads or writes files.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Target:
    """What the writer stores for one sample: the target image and the task's metadata fields."""

    image: np.ndarray  # bool (H, W) -> 1-bit PNG; uint8 (H, W) grey; uint8 (H, W, 3) RGB
    fields: dict[str, Any] = field(default_factory=dict)  # index-row fields of the task (bbox, colors, ...)
    words: dict[str, str] = field(default_factory=dict)  # instruction placeholders besides the class


class Task(ABC):
    """Defaults shared by the four tasks; each subclass overrides what its task does differently."""

    tag: str = ""
    title: str = ""  # "Detection": how people call it, first word of ``describe``
    templates: Mapping[str, Sequence[str]] = {}
    uses_input: bool = False  # read_answer wants the input pixels (det: blue already in the photo)
    absent_tally: str | None = None  # key of the absent-class summary; None: no absent-class queries
    absent_unknown: str = "ignore regions not known"  # what an absent query lacks without raw data
    row_truth_only: str | None = None  # set: the truth is only in the row; the reason when it is not
    output_suffixes: tuple[str, ...] = ()  # files ``outputs`` gives, as suffixes of an output stem
    view_label: str = "Decoded"  # caption of ``render``'s picture

    # every subclass also has ``make_instruction(key, seed, style, class_name, positive, negative)``

    # ---- building pairs

    @abstractmethod
    def build_target(self, sample: Any, pixels: np.ndarray, load_truth: Callable[[], Any], seed: int = 0,
                     style: str = "rephrased") -> Target:
        """The target of ``sample`` for input ``pixels``; ``load_truth()`` reads the reader's raw truth."""

    # ---- ground truth of a query

    def truth_from_row(self, row: Mapping[str, Any]) -> Any | None:
        """The truth the metadata row itself holds; None: read the raw annotation. ValueError: unusable row."""
        return None

    def truth_from_raw(self, raw: Any, row: Mapping[str, Any]) -> Any:
        """The reader's ``load_ground_truth`` value as the metric takes it."""
        return raw

    def truth_from_target(self, target: Any, row: Mapping[str, Any]) -> Any:
        """The truth read back from the sample's target image (8-bit, no ignore regions); ValueError: cannot."""
        raise ValueError("its target image cannot stand for the truth")

    def absent_truth(self, input_size: Callable[[], tuple[int, int]]) -> Any:
        """The truth of an absent-class query when the raw annotation cannot be read: nothing to find."""
        raise ValueError("no absent-class queries for this task")

    def absent_fields(self) -> dict[str, Any]:
        """Metadata fields an absent-class query carries (det: no boxes)."""
        return {}

    def answer_size(self, truth: Any, image: np.ndarray | None) -> tuple[int, int]:
        """``(width, height)`` to read an answer at: the truth's own size."""
        return tuple(np.asarray(truth).shape[1::-1])  # type: ignore[return-value]

    # ---- reading answers

    @abstractmethod
    def read_answer(self, answer: Any, record: Mapping[str, Any], size: tuple[int, int],
                    image: np.ndarray | None = None) -> Any:
        """The prediction drawn in ``answer`` at input ``size``; ValueError when it cannot be read."""

    @abstractmethod
    def blank(self, record: Mapping[str, Any], size: tuple[int, int]) -> Any:
        """The prediction of a missing or unreadable answer."""

    def absent_amount(self, prediction: Any, truth: Any) -> float:
        """How much an absent-class query's answer found (boxes, mask area in %); 0 is right."""
        return 0.0

    @abstractmethod
    def new_metric(self, dataset: str, classes: Collection[str] | None = None) -> Any:
        """The metric accumulator with ``dataset``'s protocol; ``add_prediction(record, prediction, truth)``."""

    def trivial_answers(self, record: Mapping[str, Any], mean_target: float) -> dict[str, np.ndarray]:
        """Answers that ignore the input (label -> small image): what chance scores, printed beside the metrics.

        ``mean_target``: the mean grey level of the task's training targets of ``record``'s dataset.
        """
        return {}

    # ---- showing predictions

    def render(self, prediction: Any, image: np.ndarray) -> np.ndarray | None:
        """A picture of ``prediction`` for people, at the input's size (None: words say it all)."""
        return None

    @abstractmethod
    def describe(self, prediction: Any, record: Mapping[str, Any]) -> str:
        """One line saying what ``prediction`` means."""

    @abstractmethod
    def outputs(self, prediction: Any, image: np.ndarray, record: Mapping[str, Any],
                meta: dict[str, Any]) -> list[Any]:
        """What ``edit_cli.py --decode`` writes, one item per ``output_suffixes`` entry (dict: JSON, array: image)."""


def class_words(record: Mapping[str, Any]) -> str:
    """`` 'cat'`` for a record with a class, else an empty string (for one-line summaries)."""
    name = record.get("class")
    return f" '{name}'" if name else ""
