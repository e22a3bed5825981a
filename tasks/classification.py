"""Classification: colour-conditioned instructions, solid-colour targets, reading them, accuracy.

Target (DESIGN.md section 5): the whole image filled with the positive colour named in the
instruction when the class is present, else with the negative colour. ``decode`` compares every
pixel of the answer (shrunk to at most 64 px, which averages JPEG noise) with the two colours
named: the score is the mean, over pixels, of how much closer a pixel is to the positive colour
than to the negative one, so it is P(present) in [0, 1]. An answer near neither colour (blank,
grey, another colour) is "unreadable" (``read``), which the metric counts as wrong.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Collection, Mapping
from typing import Any

import cv2
import numpy as np

from tasks.base import Target, Task, class_words
from tasks.colors import COLORS, FIXED_COLORS, NAMED_COLORS, choose_colors, color_rgb
from tasks.imageutil import as_rgb, check_size
from tasks.parser import parse_instruction
from tasks.templates import make_instruction as _make_instruction

__all__ = ["COLORS", "FIXED_COLORS", "NAMED_COLORS", "TAG", "TEMPLATES", "ClassificationMetric", "choose_colors",
           "decode", "encode", "make_instruction", "new_metric", "read", "record_colors", "TASK"]

TAG = "cls"

TEMPLATES: dict[str, list[str]] = {
    "fixed": ["Show * if there is a % in the picture, otherwise show #."],
    "rephrased": [
        "Show * if there is a % in the picture, otherwise show #.",
        "Show * if the picture contains any %, otherwise show #.",
        "Show * if you can find any % here, otherwise show #.",
        "If the image contains any %, show *; otherwise show #.",
        "If you see any % in the picture, respond with *; if not, respond with #.",
        "Fill the image with * if you can see any %, and with # if you cannot.",
        "Fill the picture with * if it contains any %; otherwise fill it with #.",
        "Paint everything * if the photo shows any %, or # if it does not.",
        "Paint the image * if it has any %, otherwise paint it #.",
        "Turn the image * if it contains any %, else turn it #.",
        "Make the whole image * if it shows any %, otherwise make it #.",
        "Is there any % in this picture? Show * for yes and # for no.",
        "Does this image contain any %? Answer * for yes and # for no.",
        "Does the photo show any %? Fill it with * if so, otherwise with #.",
        "Output * when the image contains any %, and # when it does not.",
        "Answer * if the picture contains any %, and # otherwise.",
        "Display * if the image includes any %, otherwise display #.",
        "Classify this image: * if it shows any %, # if not.",
        "Check the picture for any %: * means present, # means absent.",
        "Search the picture for any %: show * if found, # if not.",
        "Show * for images that contain any %, and # for the others.",
        "Use * to say the picture contains any % and # to say it does not.",
    ],
}

_THUMB = 64  # decoding works on a thumbnail: enough to vote, and averages JPEG noise away


def make_instruction(key: str, seed: int = 0, style: str = "rephrased", class_name: str | None = None,
                     positive: str | None = None, negative: str | None = None) -> str:
    """The classification instruction for sample ``key``, deterministic in (key, seed, style).

    Colours not given are chosen with :func:`tasks.colors.choose_colors` from the same key.
    """
    if positive is None or negative is None:
        chosen = choose_colors(key, seed, style)
        positive = positive or chosen[0]
        negative = negative or chosen[1]
    if color_rgb(positive) == color_rgb(negative):
        raise ValueError(f"positive and negative colours must differ, got {positive!r} and {negative!r}")
    return _make_instruction(TEMPLATES, TAG, key, seed, style, class_name=class_name,
                             positive=positive, negative=negative)


def encode(size: tuple[int, int], present: bool, positive: str, negative: str) -> np.ndarray:
    """The target: an (H, W, 3) image of ``size = (width, height)`` in the answer's colour."""
    width, height = check_size(size)
    out = np.empty((height, width, 3), np.uint8)
    out[:] = color_rgb(positive if present else negative)
    return out


def _distances(answer: Any, positive: str, negative: str) -> tuple[np.ndarray, np.ndarray, float]:
    rgb = as_rgb(answer)
    h, w = rgb.shape[:2]
    if max(h, w) > _THUMB:
        s = _THUMB / max(h, w)
        rgb = cv2.resize(rgb, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    pix = rgb.reshape(-1, 3).astype(np.float32)
    p = np.asarray(color_rgb(positive), np.float32)
    q = np.asarray(color_rgb(negative), np.float32)
    if np.array_equal(p, q):
        raise ValueError(f"positive and negative colours must differ, got {positive!r} and {negative!r}")
    return np.linalg.norm(pix - p, axis=1), np.linalg.norm(pix - q, axis=1), float(np.linalg.norm(p - q))


def _chroma(name: str) -> float:
    """Distance of a colour from the grey axis (0 for white, grey and black)."""
    rgb = np.asarray(color_rgb(name), np.float64)
    return float(np.linalg.norm(rgb - rgb.mean()))


def decode(answer: Any, positive: str, negative: str) -> tuple[bool, float]:
    """(present?, score): score = P(present) in [0, 1] from the two colours named in the instruction."""
    dp, dn, _ = _distances(answer, positive, negative)
    score = float(np.mean(dn / np.maximum(dp + dn, 1e-6)))
    return score > 0.5, score


def read(answer: Any, positive: str, negative: str) -> tuple[bool | None, float]:
    """Like :func:`decode`, but ``None`` instead of a guess when the answer is neither colour.

    At least half of the pixels must lie within half the distance between the two colours (and
    within 150) of one of them, and nearer to it than it is to the grey axis: the palette has
    greyish colours (RosyBrown, Beige), which a grey, washed-out answer must not pass for.
    """
    dp, dn, sep = _distances(answer, positive, negative)
    score = float(np.mean(dn / np.maximum(dp + dn, 1e-6)))
    base = min(0.5 * sep, 150.0)
    tol_p, tol_n = (min(base, max(20.0, 0.9 * _chroma(c))) for c in (positive, negative))
    if np.mean((dp <= tol_p) | (dn <= tol_n)) < 0.5:
        return None, score
    return score > 0.5, score


def record_colors(record: Mapping[str, Any]) -> tuple[str, str]:
    """The (positive, negative) answer colours of a record: its ``colors``, else parsed from its ``edit``."""
    colors = record.get("colors")
    if colors and colors[0] and colors[1]:
        return colors[0], colors[1]
    parsed = parse_instruction(record.get("edit") or "")
    if parsed.positive is None or parsed.negative is None:
        raise ValueError("the instruction names no answer colours (e.g. 'show red if ..., otherwise green')")
    return parsed.positive, parsed.negative


class ClassificationMetric:
    """Accuracy in percent, as top-1 or as verification accuracy (DESIGN.md section 6).

    When every image was asked about every class of the split's class list (at least two), an
    image counts as right when the class with the highest score is one that is present: ``accuracy``.
    Otherwise each query counts on its own (answered present or absent correctly):
    ``verification_accuracy``. A query whose answer was unreadable (``predicted=None``) is wrong
    and scores 0.5. ``n`` is the number of queries.

    ``classes``: the dataset's whole class list. Given, top-1 applies only when every image was asked
    about all of them (a subset whose images share a few classes is not top-1 over the dataset);
    without it, the classes seen in the queries stand for the list.
    """

    def __init__(self, classes: Collection[str] | None = None) -> None:
        self.queries: list[tuple[str, str, bool, bool | None, float]] = []
        self.classes = set(classes) if classes else None

    @property
    def n(self) -> int:
        return len(self.queries)

    def add(self, image_id: str, class_name: str, present: bool, predicted: bool | None, score: float) -> None:
        self.queries.append((str(image_id), str(class_name), bool(present),
                             None if predicted is None else bool(predicted), float(score)))

    def add_prediction(self, record: dict, pred: tuple[bool | None, float], truth: bool) -> None:
        """Add ``pred = (predicted or None, score)`` of query ``record``; ``truth``: is the class present?"""
        predicted, score = pred
        self.add(record.get("stem", record.get("sample")), record.get("class"), bool(truth), predicted, score)

    def add_answer(self, record: dict, answer: Any, truth: bool) -> None:
        """Read ``answer`` with the colours of ``record`` (``colors``, else parsed from ``edit``)."""
        self.add_prediction(record, read(answer, *record_colors(record)), truth)

    def top1_applies(self) -> bool:
        """Was every image asked about every class (of two or more)?"""
        classes = self.classes if self.classes is not None else {q[1] for q in self.queries}
        if len(classes) < 2:
            return False
        asked: dict[str, set[str]] = {}
        for image, cls, *_ in self.queries:
            asked.setdefault(image, set()).add(cls)
        return all(s >= classes for s in asked.values())

    def compute(self) -> dict:
        if not self.queries:
            return {"verification_accuracy": None, "n": 0}
        if self.top1_applies():
            best: OrderedDict[str, tuple[float, bool]] = OrderedDict()
            for image, _cls, present, _pred, score in self.queries:
                # the first class with the highest score wins; ties do not favour the truth
                if image not in best or score > best[image][0]:
                    best[image] = (score, present)
            right = [present for _score, present in best.values()]
            return {"accuracy": 100.0 * float(np.mean(right)), "n": self.n}
        right = [pred is not None and pred == present for _i, _c, present, pred, _s in self.queries]
        return {"verification_accuracy": 100.0 * float(np.mean(right)), "n": self.n}


def new_metric(dataset: str, classes: Collection[str] | None = None) -> ClassificationMetric:
    """The classification metric; which accuracy applies follows from the queries made (and ``classes``)."""
    return ClassificationMetric(classes)


class ClassificationTask(Task):
    """Classification as the rest of the project sees it (``tasks.base.Task``): a colour says yes or no."""

    tag = TAG
    title = "Classification"
    templates = TEMPLATES
    row_truth_only = "no 'positive' flag in metadata"
    output_suffixes = (".json",)
    make_instruction = staticmethod(make_instruction)

    def build_target(self, sample: Any, pixels: np.ndarray, load_truth: Callable[[], Any], seed: int = 0,
                     style: str = "rephrased") -> Target:
        """The image filled with the colour of the answer; the colours are drawn from the sample's name."""
        if sample.positive is None:
            raise ValueError(f"cls sample {sample.name} without a positive flag")
        height, width = pixels.shape[:2]
        positive, negative = choose_colors(sample.name, seed, style)
        target = np.asarray(encode((width, height), bool(sample.positive), positive, negative), dtype=np.uint8)
        return Target(target, {"positive": bool(sample.positive), "colors": [positive, negative]},
                      {"positive": positive, "negative": negative})

    def truth_from_row(self, row: Mapping[str, Any]) -> Any | None:
        return None if row.get("positive") is None else bool(row["positive"])

    def truth_from_target(self, target: Any, row: Mapping[str, Any]) -> Any:
        try:
            positive, negative = record_colors(row)
        except ValueError:
            raise ValueError("no answer colours to read the target with") from None
        return bool(decode(target, positive, negative)[0])

    def answer_size(self, truth: Any, image: np.ndarray | None) -> tuple[int, int]:
        return (8, 8)  # the answer is read whole, at any size

    def read_answer(self, answer: Any, record: Mapping[str, Any], size: tuple[int, int],
                    image: np.ndarray | None = None) -> tuple[bool | None, float]:
        """(present? or None when the answer is neither colour, P(present))."""
        return read(answer, *record_colors(record))

    def blank(self, record: Mapping[str, Any], size: tuple[int, int]) -> tuple[bool | None, float]:
        return self.read_answer(np.zeros((8, 8, 3), np.uint8), record, size)

    def new_metric(self, dataset: str, classes: Collection[str] | None = None) -> ClassificationMetric:
        return new_metric(dataset, classes)

    def trivial_answers(self, record: Mapping[str, Any], mean_target: float) -> dict[str, np.ndarray]:
        positive, negative = record_colors(record)
        return {"always present": encode((8, 8), True, positive, negative),
                "always absent": encode((8, 8), False, positive, negative)}

    def describe(self, prediction: Any, record: Mapping[str, Any]) -> str:
        present, score = prediction
        if present is None:
            positive, negative = record_colors(record)
            verdict = f"unreadable: the answer is neither {positive} nor {negative}"
        else:
            verdict = "present" if present else "absent"
        return f"Classification{class_words(record)}: {verdict} (P(present) = {score:.2f})."

    def outputs(self, prediction: Any, image: np.ndarray, record: Mapping[str, Any],
                meta: dict[str, Any]) -> list[Any]:
        """``<stem>.json``: present / absent (the closer colour, as ``decode`` says) and P(present)."""
        positive, negative = record_colors(record)
        score = float(prediction[1])
        return [{**meta, "present": score > 0.5, "score": round(score, 4), "positive": positive,
                 "negative": negative}]


TASK = ClassificationTask()
