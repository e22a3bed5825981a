"""Detection: instructions, blue-box target images, the detection task.

Target (DESIGN.md section 5), the released model's dialect: the input image with every ground-truth
box of the queried class (crowd regions too) drawn as AlaaLab/InstructCV's builder drew it, PIL's
``rectangle(outline=(0, 0, 255), width=4)`` at native resolution (6 px for the Oxford-Pets head
boxes): corners truncated to whole pixels, the frame drawn inwards from the first to the last pixel
of the box, both included.

The decoder lives in ``tasks/box_decoder.py``, the COCO metric in ``tasks/detection_metric.py``;
this module holds the instructions, the target and the task's interface.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from tasks.base import Target, Task, class_words
from tasks.box_decoder import decode
from tasks.boxes import BLUE, LINE_WIDTH, line_width
from tasks.boxes import as_boxes as _as_boxes
from tasks.detection_metric import DetectionMetric
from tasks.imageutil import as_rgb
from tasks.render import draw_boxes, round_list
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


def encode(image: Any, boxes: np.ndarray | list, stroke: int = LINE_WIDTH) -> np.ndarray:
    """The target: a copy of ``image`` with each xyxy box drawn the original builder's way.

    PIL's ``rectangle(outline=(0, 0, 255), width=stroke)`` with the corners as given: PIL truncates
    them to whole pixels and draws the frame inwards from the first to the last pixel, both
    included, as AlaaLab/InstructCV's ``format_dataset_rp.py`` did for the released weights.
    """
    canvas = Image.fromarray(as_rgb(image).copy())
    draw = ImageDraw.Draw(canvas)
    for x0, y0, x1, y1 in _as_boxes(boxes):
        draw.rectangle([min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)], outline=BLUE, width=int(stroke))
    return np.asarray(canvas).copy()


def new_metric(dataset: str) -> DetectionMetric:
    """The detection metric; every dataset is scored the COCO way."""
    return DetectionMetric()


class DetectionTask(Task):
    """Detection as the rest of the project sees it (``tasks.base.Task``): boxes in, boxes out."""

    tag = TAG
    title = "Detection"
    templates = TEMPLATES
    uses_input = True
    absent_tally = "boxes_per_query"
    absent_unknown = "crowd/difficult boxes of the class not known"
    output_suffixes = (".json", "_boxes.png")
    view_label = "Boxes read from the answer, on the input"
    make_instruction = staticmethod(make_instruction)

    def build_target(self, sample: Any, pixels: np.ndarray, load_truth: Callable[[], Any], seed: int = 0,
                     style: str = "rephrased") -> Target:
        """The input with every box drawn, crowd regions too, as the released model was taught; every box
        (clipped) and its crowd flag go to the row. A reader may ask for another stroke (``gt_args["_line_width"]``:
        the Oxford-Pets head boxes were drawn 6 px wide)."""
        height, width = pixels.shape[:2]
        arr = np.asarray(sample.boxes or [], dtype=np.float64).reshape(-1, 4)
        arr[:, [0, 2]] = arr[:, [0, 2]].clip(0, width)
        arr[:, [1, 3]] = arr[:, [1, 3]].clip(0, height)
        boxes = [[round(float(v), 2) for v in box] for box in arr]
        crowd = [bool(c) for c in (sample.crowd or [False] * len(boxes))]
        if len(crowd) != len(boxes):
            raise ValueError(f"{len(boxes)} boxes but {len(crowd)} crowd flags")
        drawn = boxes  # crowd regions are drawn too, as the released model was taught
        stroke = (sample.gt_args or {}).get("_line_width", LINE_WIDTH)
        target = np.asarray(encode(pixels, np.asarray(drawn, dtype=np.float64).reshape(-1, 4), stroke), dtype=np.uint8)
        fields = {"bbox": boxes, "crowd": crowd, "_drawn": drawn}
        if stroke != LINE_WIDTH:  # the decoder reads the answer's lines at the stroke its target was drawn with
            fields["line_width"] = int(stroke)
        return Target(target, fields)

    def truth_from_row(self, row: Mapping[str, Any]) -> Any | None:
        """Boxes and crowd flags the reader wrote; None for an absent-class query (its class's ignore boxes are raw)."""
        if row.get("absent"):
            return None
        if row.get("bbox") is None:
            raise ValueError("det sample without boxes (no 'bbox' in its metadata row or box file)")
        boxes = np.asarray(row["bbox"], dtype=np.float64).reshape(-1, 4)
        flags = row.get("crowd")
        crowd = np.asarray(flags if flags is not None else [False] * len(boxes), dtype=bool).reshape(-1)
        if len(crowd) != len(boxes):
            raise ValueError(f"{len(boxes)} boxes but {len(crowd)} crowd flags")
        return {"boxes": boxes, "crowd": crowd}

    def truth_from_raw(self, raw: Any, row: Mapping[str, Any]) -> Any:
        """An absent class: nothing to find; its raw boxes (COCO crowd, VOC difficult) stay ignore regions."""
        boxes = np.asarray(raw.get("boxes"), dtype=np.float64).reshape(-1, 4)
        return {"boxes": boxes, "crowd": np.ones(len(boxes), bool)}

    def absent_truth(self, input_size: Callable[[], tuple[int, int]]) -> Any:
        return {"boxes": np.zeros((0, 4)), "crowd": np.zeros(0, bool)}

    def absent_fields(self) -> dict[str, Any]:
        return {"bbox": [], "crowd": []}

    def answer_size(self, truth: Any, image: np.ndarray | None) -> tuple[int, int]:
        """The input's size (``truth["size"]`` when given, else the input image's)."""
        if truth.get("size") is not None:
            return tuple(truth["size"])
        return as_rgb(image).shape[1::-1]

    def read_answer(self, answer: Any, record: Mapping[str, Any], size: tuple[int, int],
                    image: np.ndarray | None = None) -> np.ndarray:
        """(N, 5) boxes ``x0, y0, x1, y1, score`` in input pixels, best first, read at the record's
        ``line_width`` (the stroke its target was drawn with) or the released 4 px."""
        lw = record.get("line_width")
        return np.asarray(decode(answer, size, image=image, line_width=lw), dtype=np.float64).reshape(-1, 5)

    def blank(self, record: Mapping[str, Any], size: tuple[int, int]) -> np.ndarray:
        return np.zeros((0, 5))

    def absent_amount(self, prediction: Any, truth: Any) -> float:
        return float(len(prediction))

    def new_metric(self, dataset: str, classes: Collection[str] | None = None) -> DetectionMetric:
        return new_metric(dataset)

    def render(self, prediction: Any, image: np.ndarray) -> np.ndarray:
        height, width = image.shape[:2]
        return draw_boxes(image, prediction, line_width(width, height))

    def trivial_answers(self, record: Mapping[str, Any], mean_target: float) -> dict[str, np.ndarray]:
        return {"no boxes": np.zeros((8, 8, 3), np.uint8)}

    def describe(self, prediction: Any, record: Mapping[str, Any]) -> str:
        what = class_words(record)
        if len(prediction):
            n = len(prediction)
            return f"Detection{what}: {n} box{'es' if n != 1 else ''} (best score {prediction[0, 4]:.2f})."
        return f"Detection{what}: no box found in the answer."

    def outputs(self, prediction: Any, image: np.ndarray, record: Mapping[str, Any],
                meta: dict[str, Any]) -> list[Any]:
        """``<stem>.json`` (boxes in input pixels + scores) and ``<stem>_boxes.png`` (the boxes on the input)."""
        boxes = {**meta, "boxes": round_list(prediction[:, :4]), "scores": round_list(prediction[:, 4], 4)}
        return [boxes, self.render(prediction, image)]


TASK = DetectionTask()
