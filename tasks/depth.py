"""Depth: instructions, grey depth-map targets, reading metres back, the standard depth metrics.

Target (DESIGN.md section 5), the released model's code: grey value = floor(depth_m x 25.5) clipped
to 0..255, so 0-10 m, near dark and far bright, as AlaaLab/InstructCV's builder wrote
``uint8(depth * 25.5)``. Targets are dense: a pixel without a measurement (0 in the raw map) takes
the depth of the nearest measured pixel, so a model is never taught to draw sensor dropouts (the
metrics still score measured pixels only). ``decode`` reads the mean of the channels at the centre
of the truncated bin, (value + 0.5) / 25.5, which is unbiased; pure black (0) reads as no data.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any

import cv2
import numpy as np
from PIL import Image

from tasks.base import Target, Task
from tasks.imageutil import as_gray, check_size, resize_to
from tasks.render import colorize_depth, depth_to_millimetres
from tasks.templates import make_instruction as _make_instruction

TAG = "depes"
SCALE = 25.5
MAX_DEPTH = 10.0
MIN_DEPTH = 1e-3  # predictions are clipped up to this, so a predicted 0 does not divide by zero

# Eigen et al.'s crop for NYUv2 at 640x480: rows 45:471, columns 41:601
EIGEN_CROP = (45, 471, 41, 601)

TEMPLATES: dict[str, list[str]] = {
    "fixed": ["Estimate the depth of this image."],
    "rephrased": [
        "Estimate the depth of this image.",
        "Estimate the depth map of this picture.",
        "Please estimate the depth.",
        "Predict the depth of this image.",
        "Predict a depth map for this photo.",
        "Generate the depth map of this scene.",
        "Produce a depth map.",
        "Give me the depth map of this picture.",
        "Make a depth image of this photo.",
        "Convert this image into a depth map.",
        "Show the depth of this image.",
        "Map the depth of this scene.",
        "Compute the depth of every pixel.",
        "Perform monocular depth estimation on this image.",
        "What is the depth of each point in this image?",
        "Estimate how far each pixel is from the camera.",
        "Show how far away everything in this picture is.",
        "How far away is each part of this scene? Show it as a depth map.",
        "Draw the distance of every pixel from the camera.",
        "Visualise the distance to the camera for this scene.",
        "Turn this photo into a map of distances from the camera.",
        "Create a depth map where near is dark and far is bright.",
        "Show near things dark and far things bright.",
        "Render the depth of the scene as a grey image.",
    ],
}


def make_instruction(key: str, seed: int = 0, style: str = "rephrased", class_name: str | None = None,
                     positive: str | None = None, negative: str | None = None) -> str:
    """The depth instruction for sample ``key``, deterministic in (key, seed, style)."""
    return _make_instruction(TEMPLATES, TAG, key, seed, style)


def encode(depth_m: np.ndarray) -> np.ndarray:
    """The target: float metres (H, W), 0 (or NaN, inf, negative) = no data -> dense uint8 (H, W).

    All-invalid maps stay 0 (nothing to fill from).
    """
    d = np.asarray(depth_m, dtype=np.float64)
    if d.ndim != 2:
        raise ValueError(f"depth must be (H, W), got shape {d.shape}")
    valid = np.isfinite(d) & (d > 0)
    grey = np.where(valid, np.clip(np.floor(np.where(valid, d, 0.0) * SCALE), 1, 255), 0).astype(np.uint8)
    return fill_nearest(grey, valid)


def fill_nearest(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """``values`` with every pixel outside ``valid`` replaced by the value of the nearest valid pixel.

    One OpenCV distance transform with pixel labels (each valid pixel its own label, numbered in
    row-major order), so it is vectorised whatever the number of holes.
    """
    if valid.all() or not valid.any():
        return values
    invalid = (~valid).astype(np.uint8)
    _, labels = cv2.distanceTransformWithLabels(invalid, cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL)
    return values[valid][labels - 1]


def decode(answer: Any, size: tuple[int, int]) -> np.ndarray:
    """Depth in metres (float32 (H, W)) at ``size = (width, height)`` from a grey answer.

    A grey value v reads as the centre of its bin, (v + 0.5) / 25.5 m, so an exact target is off by
    at most half a step (0.02 m) and unbiased; pure black (v = 0) reads as 0, no data.
    """
    width, height = check_size(size)
    grey = resize_to(as_gray(answer), (width, height))
    return np.where(grey > 0, (grey + 0.5) / SCALE, 0.0).astype(np.float32)


def eigen_crop_mask(height: int, width: int) -> np.ndarray:
    """The Eigen crop as a boolean mask, scaled from 640x480 to ``height`` x ``width``."""
    r0, r1, c0, c1 = EIGEN_CROP

    def half_up(v: float) -> int:  # Python's round() would send 22.5 to 22
        return int(np.floor(v + 0.5))

    mask = np.zeros((height, width), bool)
    mask[half_up(r0 * height / 480):half_up(r1 * height / 480), half_up(c0 * width / 640):half_up(c1 * width / 640)] = True
    return mask


class DepthMetric:
    """rmse (m), abs_rel, log10 and delta1-3 (fractions), computed per image and averaged.

    Only pixels with valid ground truth count: ``min_depth < gt < max_depth`` (the usual NYUv2
    protocol; ``gt == 0`` is no data), inside the Eigen crop when ``eigen_crop`` (scaled to the
    image size) or inside ``fixed_crop`` (absolute rows/columns, as the toolbox crops SUN RGB-D).
    ``cap`` clips ground truth and prediction to that depth before scoring (SUN RGB-D: 8 m).
    Predictions are clipped to ``[min_depth, max_depth]``. ``n`` counts the images added.
    """

    KEYS = ("rmse", "abs_rel", "log10", "delta1", "delta2", "delta3")

    def __init__(self, eigen_crop: bool = False, max_depth: float = MAX_DEPTH, min_depth: float = MIN_DEPTH,
                 cap: float | None = None, fixed_crop: tuple[int, int, int, int] | None = None):
        self.eigen_crop = eigen_crop
        self.max_depth = float(max_depth)
        self.min_depth = float(min_depth)
        self.cap = None if cap is None else float(cap)
        self.fixed_crop = fixed_crop
        self.per_image: list[dict[str, float]] = []
        self.n = 0

    def add(self, pred_m: np.ndarray, gt_m: np.ndarray) -> None:
        gt = np.asarray(gt_m, dtype=np.float64)
        pred = np.asarray(pred_m, dtype=np.float64)
        if pred.shape != gt.shape:
            pred = cv2.resize(pred, gt.shape[::-1], interpolation=cv2.INTER_LINEAR)
        if self.cap is not None:
            gt, pred = np.minimum(gt, self.cap), np.minimum(pred, self.cap)
        self.n += 1
        valid = self.scored_pixels(gt)
        if not valid.any():
            return
        g = gt[valid]
        p = np.clip(np.nan_to_num(pred[valid], nan=self.min_depth), self.min_depth, self.max_depth)
        ratio = np.maximum(g / p, p / g)
        self.per_image.append({
            "rmse": float(np.sqrt(np.mean((g - p) ** 2))),
            "abs_rel": float(np.mean(np.abs(g - p) / g)),
            "log10": float(np.mean(np.abs(np.log10(g) - np.log10(p)))),
            "delta1": float(np.mean(ratio < 1.25)),
            "delta2": float(np.mean(ratio < 1.25 ** 2)),
            "delta3": float(np.mean(ratio < 1.25 ** 3)),
        })

    def scored_pixels(self, gt_m: np.ndarray) -> np.ndarray:
        """The pixels this metric scores for ground truth ``gt_m``: valid depth range and the crop."""
        gt = np.asarray(gt_m, dtype=np.float64)
        if self.cap is not None:
            gt = np.minimum(gt, self.cap)
        valid = np.isfinite(gt) & (gt > self.min_depth) & (gt < self.max_depth)
        if self.eigen_crop:
            valid &= eigen_crop_mask(*gt.shape)
        if self.fixed_crop is not None:
            r0, r1, c0, c1 = self.fixed_crop
            inside = np.zeros(gt.shape, bool)
            inside[r0:r1, c0:c1] = True
            valid &= inside
        return valid

    def add_prediction(self, record: dict, pred: np.ndarray, truth: np.ndarray) -> None:
        """Add decoded metres ``pred`` against ``truth`` (metres, 0 = invalid)."""
        self.add(pred, truth)

    def add_answer(self, record: dict, answer: Any, truth: np.ndarray) -> None:
        """Decode ``answer`` at the ground truth's size and add it (``truth``: metres, 0 = invalid)."""
        gt = np.asarray(truth, dtype=np.float32)
        self.add(decode(answer, gt.shape[::-1]), gt)

    def compute(self) -> dict:
        if not self.per_image:
            return {**{k: None for k in self.KEYS}, "n": self.n}
        return {**{k: float(np.mean([m[k] for m in self.per_image])) for k in self.KEYS}, "n": self.n}


# Monocular-Depth-Estimation-Toolbox scores SUN RGB-D (SUNRGBDDataset.pre_eval) with both depths
# capped at 8 m and a crop at these absolute rows/columns, whatever the frame size.
SUNRGBD_CAP = 8.0
SUNRGBD_CROP = (45, 471, 41, 601)


def new_metric(dataset: str) -> DepthMetric:
    """The depth metric with the dataset's protocol: Eigen crop for NYUv2, the toolbox's for SUN RGB-D."""
    name = str(dataset).lower()
    if name == "sunrgbd":
        return DepthMetric(cap=SUNRGBD_CAP, fixed_crop=SUNRGBD_CROP)
    return DepthMetric(eigen_crop=name in ("nyuv2", "nyu", "nyu_v2"))


class DepthTask(Task):
    """Depth estimation as the rest of the project sees it (``tasks.base.Task``): metres in, metres out."""

    tag = TAG
    title = "Depth"
    templates = TEMPLATES
    output_suffixes = ("_depth.png", "_depth_color.png")
    view_label = "Depth read from the answer (near = dark)"
    make_instruction = staticmethod(make_instruction)

    def build_target(self, sample: Any, pixels: np.ndarray, load_truth: Callable[[], Any], seed: int = 0,
                     style: str = "rephrased") -> Target:
        """The raw depth in metres, as grey levels."""
        return Target(np.asarray(encode(np.asarray(load_truth(), dtype=np.float32)), dtype=np.uint8))

    def truth_from_raw(self, raw: Any, row: Mapping[str, Any]) -> Any:
        return np.asarray(raw, dtype=np.float32)

    def truth_from_target(self, target: Any, row: Mapping[str, Any]) -> Any:
        return decode(target, target.size)

    def read_answer(self, answer: Any, record: Mapping[str, Any], size: tuple[int, int],
                    image: np.ndarray | None = None) -> np.ndarray:
        return np.asarray(decode(answer, size), dtype=np.float32)

    def blank(self, record: Mapping[str, Any], size: tuple[int, int]) -> np.ndarray:
        return np.zeros((size[1], size[0]), np.float32)

    def new_metric(self, dataset: str, classes: Collection[str] | None = None) -> DepthMetric:
        return new_metric(dataset)

    def render(self, prediction: Any, image: np.ndarray) -> np.ndarray:
        return colorize_depth(prediction, MAX_DEPTH)

    def trivial_answers(self, record: Mapping[str, Any], mean_target: float) -> dict[str, np.ndarray]:
        """The mean training depth everywhere (the targets' grey level is the depth code)."""
        return {"mean training depth": np.full((8, 8, 3), int(round(mean_target)), np.uint8)}

    def describe(self, prediction: Any, record: Mapping[str, Any]) -> str:
        valid = prediction > 0
        if not valid.any():
            return "Depth: no pixel has a depth (the answer is black)."
        lo, med, hi = np.percentile(prediction[valid], [0, 50, 100])
        return (f"Depth: {lo:.2f} to {hi:.2f} m, median {med:.2f} m (colour scale 0-{MAX_DEPTH:g} m, "
                "black = no depth).")

    def outputs(self, prediction: Any, image: np.ndarray, record: Mapping[str, Any],
                meta: dict[str, Any]) -> list[Any]:
        """``<stem>_depth.png`` (16-bit millimetres, 0 = no data) and ``<stem>_depth_color.png`` (colour map)."""
        return [Image.fromarray(depth_to_millimetres(prediction)), self.render(prediction, image)]


TASK = DepthTask()
