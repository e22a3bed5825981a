"""Segmentation: instructions, white-on-black mask targets, reading masks back, split-level mIoU.

Target (DESIGN.md section 5): the binary mask of the queried class, white (255) on black (0).
``decode`` brings an answer of any size back to the input size and thresholds it with Otsu's
method, the threshold kept between 64 and 192 so that an all-black or all-white answer (nothing or
everything) is read as such instead of splitting its noise in two.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any

import cv2
import numpy as np
from PIL import Image

from tasks.base import Target, Task, class_words
from tasks.imageutil import as_gray, check_size, resize_to
from tasks.render import overlay_mask
from tasks.templates import make_instruction as _make_instruction

TAG = "seg"

TEMPLATES: dict[str, list[str]] = {
    "fixed": ["Segment the %."],
    "rephrased": [
        "Segment the %.",
        "Segment the % in this image.",
        "Please segment the %.",
        "Can you segment the % in this picture?",
        "Perform semantic segmentation of the %.",
        "Produce a segmentation mask of the %.",
        "Create a binary mask for the %.",
        "Give me a mask of the %.",
        "Generate the mask of the % in this photo.",
        "Draw a mask over the %.",
        "Mask out the %.",
        "Show the % in white and everything else in black.",
        "Paint the % white and the rest black.",
        "Colour the % white and everything else black.",
        "Turn the % white and the background black.",
        "Make the pixels of the % white and all other pixels black.",
        "Highlight the % region in white on a black background.",
        "Fill the area of the % with white.",
        "Separate the % from the background.",
        "Isolate the % with a black and white mask.",
        "Cut out the % as a white mask.",
        "Extract the region of the %.",
        "Mark every pixel that belongs to the %.",
        "Label the pixels of the %.",
        "Which pixels belong to the %? Show them in white.",
        "Find the region covered by the % and show it in white.",
        "Segment every part of the image that shows the %.",
        "Delineate the % with a white mask.",
    ],
}


def make_instruction(key: str, seed: int = 0, style: str = "rephrased", class_name: str | None = None,
                     positive: str | None = None, negative: str | None = None) -> str:
    """The segmentation instruction for sample ``key``, deterministic in (key, seed, style)."""
    return _make_instruction(TEMPLATES, TAG, key, seed, style, class_name=class_name)


def encode(mask: np.ndarray) -> np.ndarray:
    """The target: boolean (H, W) mask -> uint8 (H, W), 255 where the class is, 0 elsewhere."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"mask must be (H, W), got shape {mask.shape}")
    return np.where(mask.astype(bool), 255, 0).astype(np.uint8)


def decode(answer: Any, size: tuple[int, int]) -> np.ndarray:
    """The boolean (H, W) mask drawn in ``answer``, at ``size = (width, height)``."""
    width, height = check_size(size)
    grey = resize_to(as_gray(answer), (width, height))
    grey8 = np.clip(grey + 0.5, 0, 255).astype(np.uint8)
    otsu, _ = cv2.threshold(grey8, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return grey > float(np.clip(otsu, 64, 192))


class SegmentationMetric:
    """Binary-query mIoU: per class, intersections and unions summed over the split, then the mean.

    Also ``pixel_acc``: correct valid pixels over all valid pixels. Values in percent; a class
    whose union stays empty over the whole split (never predicted, never present) is left out
    of the mean. ``valid`` marks pixels to score (e.g. not VOC's 255 border).
    """

    def __init__(self) -> None:
        self.inter: dict[str, int] = {}
        self.union: dict[str, int] = {}
        self.correct = 0
        self.total = 0
        self.n = 0

    def add(self, class_name: str, pred: np.ndarray, gt: np.ndarray, valid: np.ndarray | None = None) -> None:
        gt = np.asarray(gt).astype(bool)
        pred = np.asarray(pred)
        if pred.shape != gt.shape:
            pred = cv2.resize(pred.astype(np.uint8), gt.shape[::-1], interpolation=cv2.INTER_NEAREST)
        pred = pred.astype(bool)
        keep = np.ones_like(gt) if valid is None else np.asarray(valid).astype(bool)
        if keep.shape != gt.shape:
            raise ValueError(f"valid mask shape {keep.shape} differs from the ground truth's {gt.shape}")
        p, g = pred & keep, gt & keep
        name = str(class_name)
        self.inter[name] = self.inter.get(name, 0) + int(np.count_nonzero(p & g))
        self.union[name] = self.union.get(name, 0) + int(np.count_nonzero(p | g))
        self.correct += int(np.count_nonzero((pred == gt) & keep))
        self.total += int(np.count_nonzero(keep))
        self.n += 1

    def add_prediction(self, record: dict, pred: np.ndarray, truth: dict) -> None:
        """Add the decoded mask ``pred`` of query ``record`` against ``truth = {"mask", "valid"}``."""
        self.add(record.get("class"), pred, truth["mask"], truth.get("valid"))

    def add_answer(self, record: dict, answer: Any, truth: dict) -> None:
        """Decode ``answer`` at the ground truth's size and add it (``truth = {"mask", "valid"}``)."""
        gt = np.asarray(truth["mask"])
        self.add(record.get("class"), decode(answer, gt.shape[::-1]), gt, truth.get("valid"))

    def per_class_iou(self) -> dict[str, float]:
        """IoU in percent of every class with a non-empty union."""
        return {c: 100.0 * self.inter[c] / self.union[c] for c in self.inter if self.union[c] > 0}

    def compute(self) -> dict:
        ious = list(self.per_class_iou().values())
        miou = float(np.mean(ious)) if ious else None
        acc = 100.0 * self.correct / self.total if self.total else None
        return {"mIoU": miou, "pixel_acc": acc, "n": self.n}


def new_metric(dataset: str) -> SegmentationMetric:
    """The segmentation metric; the same protocol for every dataset (ignore regions via ``valid``)."""
    return SegmentationMetric()


class SegmentationTask(Task):
    """Segmentation as the rest of the project sees it (``tasks.base.Task``): masks in, masks out."""

    tag = TAG
    title = "Segmentation"
    templates = TEMPLATES
    absent_tally = "mask_area_pct"
    output_suffixes = ("_mask.png",)
    view_label = "Mask read from the answer (green), on the input"
    make_instruction = staticmethod(make_instruction)

    def build_target(self, sample: Any, pixels: np.ndarray, load_truth: Callable[[], Any], seed: int = 0,
                     style: str = "rephrased") -> Target:
        """The class's mask from the raw annotation, as a bool image (written as a 1-bit PNG)."""
        mask = np.asarray(load_truth()["mask"], dtype=bool)
        return Target(np.asarray(encode(mask)) > 127)

    def truth_from_raw(self, raw: Any, row: Mapping[str, Any]) -> Any:
        """The reader's mask and ignore mask; an absent class has nothing to find (its ignore regions kept)."""
        mask = np.asarray(raw["mask"], dtype=bool)
        valid = raw.get("valid")
        if row.get("absent"):
            # the class is not in the image: nothing to find, whatever class the reader's mask is of (Pets: the pet)
            mask = np.zeros_like(mask)
        return {"mask": mask, "valid": None if valid is None else np.asarray(valid, dtype=bool)}

    def truth_from_target(self, target: Any, row: Mapping[str, Any]) -> Any:
        return {"mask": decode(target, target.size), "valid": None}

    def absent_truth(self, input_size: Callable[[], tuple[int, int]]) -> Any:
        w, h = input_size()
        return {"mask": np.zeros((h, w), bool), "valid": None}

    def answer_size(self, truth: Any, image: np.ndarray | None) -> tuple[int, int]:
        return tuple(np.asarray(truth["mask"]).shape[1::-1])  # type: ignore[return-value]

    def read_answer(self, answer: Any, record: Mapping[str, Any], size: tuple[int, int],
                    image: np.ndarray | None = None) -> np.ndarray:
        return np.asarray(decode(answer, size), dtype=bool)

    def blank(self, record: Mapping[str, Any], size: tuple[int, int]) -> np.ndarray:
        return np.zeros((size[1], size[0]), bool)

    def absent_amount(self, prediction: Any, truth: Any) -> float:
        """Predicted area in % of the valid pixels."""
        valid = truth.get("valid")
        keep = np.ones(prediction.shape, bool) if valid is None else np.asarray(valid, dtype=bool)
        return 100.0 * np.count_nonzero(prediction & keep) / max(np.count_nonzero(keep), 1)

    def new_metric(self, dataset: str, classes: Collection[str] | None = None) -> SegmentationMetric:
        return new_metric(dataset)

    def render(self, prediction: Any, image: np.ndarray) -> np.ndarray:
        return overlay_mask(image, prediction)

    def trivial_answers(self, record: Mapping[str, Any], mean_target: float) -> dict[str, np.ndarray]:
        return {"empty mask": np.zeros((8, 8, 3), np.uint8), "full mask": np.full((8, 8, 3), 255, np.uint8)}

    def describe(self, prediction: Any, record: Mapping[str, Any]) -> str:
        return f"Segmentation{class_words(record)}: the mask covers {prediction.mean():.1%} of the image."

    def outputs(self, prediction: Any, image: np.ndarray, record: Mapping[str, Any],
                meta: dict[str, Any]) -> list[Any]:
        """``<stem>_mask.png``: white on black at the input's size."""
        return [Image.fromarray(prediction.astype(np.uint8) * 255, "L")]


TASK = SegmentationTask()
