"""Detection: instructions, blue-box target images, the detection task.

Target (DESIGN.md section 5): the input image with every ground-truth box of the queried class drawn
as an unfilled pure blue (0, 0, 255) rectangle. Lines are drawn *inside* the box, ``line_width``
pixels thick, so the outer edge of the blue frame is the box edge, also for boxes that touch the
image border.

The decoder lives in ``tasks/box_decoder.py``, the COCO metric in ``tasks/detection_metric.py``;
this module holds the instructions, the target and the task's interface.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tasks.box_decoder import decode
from tasks.boxes import BLUE, line_width
from tasks.boxes import as_boxes as _as_boxes
from tasks.detection_metric import DetectionMetric
from tasks.imageutil import as_rgb
from tasks.templates import make_instruction as _make_instruction

TAG = "det"

TEMPLATES: dict[str, list[str]] = {
    "fixed": ["Detect the %."],
    "rephrased": [
        "Detect the %.",
        "Detect the % in this image.",
        "Detect any % in the picture.",
        "Please detect the %.",
        "Can you detect the % in this photo?",
        "Find the % in this image.",
        "Find any % in the photo and draw a box around it.",
        "Find and box the %.",
        "Locate the % in the picture.",
        "Locate any % in this image.",
        "Localize the % with bounding boxes.",
        "Draw a box around the %.",
        "Draw a bounding box around the %.",
        "Draw a blue rectangle around the %.",
        "Draw bounding boxes around any % you can see.",
        "Put a blue box around the %.",
        "Put bounding boxes on the % in this picture.",
        "Mark the % with a bounding box.",
        "Mark any % in the image with a blue rectangle.",
        "Mark the location of the % with a box.",
        "Highlight the % with a bounding box.",
        "Enclose the % in a blue box.",
        "Surround the % with a rectangle.",
        "Frame the % with a blue box.",
        "Box the % in this image.",
        "Show where the % can be found by drawing a box.",
        "Indicate the position of the % with a rectangle.",
        "Give the bounding box of the %.",
        "Detect every instance of the % category.",
        "Run object detection for the % class.",
        "Identify the % and draw a box around each one.",
        "Outline the % with a blue bounding box.",
    ],
}


def make_instruction(key: str, seed: int = 0, style: str = "rephrased", class_name: str | None = None,
                     positive: str | None = None, negative: str | None = None) -> str:
    """The detection instruction for sample ``key``, deterministic in (key, seed, style)."""
    return _make_instruction(TEMPLATES, TAG, key, seed, style, class_name=class_name)


def encode(image: Any, boxes: np.ndarray | list) -> np.ndarray:
    """The target: a copy of ``image`` with each xyxy box drawn as a blue frame inside its edges."""
    out = as_rgb(image).copy()
    height, width = out.shape[:2]
    lw = line_width(width, height)
    for x0, y0, x1, y1 in np.rint(_as_boxes(boxes)).astype(np.int64):
        x0, x1 = sorted((int(np.clip(x0, 0, width)), int(np.clip(x1, 0, width))))
        y0, y1 = sorted((int(np.clip(y0, 0, height)), int(np.clip(y1, 0, height))))
        if x1 <= x0 or y1 <= y0:
            x1, y1 = min(max(x1, x0 + 1), width), min(max(y1, y0 + 1), height)
            x0, y0 = x1 - 1, y1 - 1
        out[y0:min(y0 + lw, y1), x0:x1] = BLUE
        out[max(y1 - lw, y0):y1, x0:x1] = BLUE
        out[y0:y1, x0:min(x0 + lw, x1)] = BLUE
        out[y0:y1, max(x1 - lw, x0):x1] = BLUE
    return out


def new_metric(dataset: str) -> DetectionMetric:
    """The detection metric; every dataset is scored the COCO way."""
    return DetectionMetric()
