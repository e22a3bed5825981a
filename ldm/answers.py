"""Reading answer images back into structured outputs (``edit_cli.py --decode``) and writing them.

The instruction parser of ``tasks/`` tells the task; that task's ``decode`` turns the answer image
into a prediction, written next to the answer ``<stem>.png``:

    det    <stem>.json (boxes in input pixels + scores) and <stem>_boxes.png (the input with the boxes)
    seg    <stem>_mask.png (white on black, input size)
    cls    <stem>.json (present / absent and P(present))
    depes  <stem>_depth.png (16-bit, millimetres, 0 = no data) and <stem>_depth_color.png (colour map)

Every file is written atomically through ``instructcv.io``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

from instructcv.io import save_image, write_json

log = logging.getLogger(__name__)

# What each task writes, as suffixes of the output stem.
OUTPUT_SUFFIXES: dict[str, tuple[str, ...]] = {
    "det": (".json", "_boxes.png"),
    "seg": ("_mask.png",),
    "cls": (".json",),
    "depes": ("_depth.png", "_depth_color.png"),
}
PREVIEW_BOX_COLOR = (0, 255, 0)  # green: distinct from the blue boxes the model draws
PREVIEW_DEPTH_MAP = cv2.COLORMAP_INFERNO  # near = dark, far = bright, as in the answer image


def decoded_paths(task: str, stem: Path) -> list[Path]:
    """The files ``write_decoded`` writes for ``task`` next to ``<stem>.png``."""
    return [stem.with_name(stem.name + suffix) for suffix in OUTPUT_SUFFIXES.get(task, ())]


def parse(instruction: str) -> Any:
    """The ``tasks.ParsedInstruction`` of ``instruction`` (task, class, colours, reason, ok)."""
    from tasks import parse_instruction

    return parse_instruction(instruction)


def write_decoded(answer: Image.Image, image: Image.Image, parsed: Any, stem: Path, instruction: str) -> list[Path]:
    """Decode ``answer`` (at the input's size) as ``parsed.task`` and write the files; return their paths.

    ``image`` is the input picture (RGB, same size): detection uses it to ignore blue that was
    already in the photo, and draws its preview on it.
    """
    from tasks import get_task

    task = parsed.task
    module = get_task(task)
    size = image.size
    meta = {"instruction": instruction, "task": task, "class": parsed.class_name, "image_size": list(size)}
    paths = decoded_paths(task, stem)
    if task == "det":
        boxes = np.asarray(module.decode(answer, size, image=np.asarray(image)), dtype=np.float64).reshape(-1, 5)
        write_json(paths[0], {**meta, "boxes": _round(boxes[:, :4]), "scores": _round(boxes[:, 4], 4)}, indent=1)
        save_image(paths[1], draw_boxes(np.asarray(image), boxes, module.line_width(*size)))
    elif task == "seg":
        mask = np.asarray(module.decode(answer, size), dtype=bool)
        save_image(paths[0], Image.fromarray(mask.astype(np.uint8) * 255, "L"))
    elif task == "cls":
        if not parsed.positive or not parsed.negative:
            raise ValueError("the instruction names no answer colours (e.g. 'show red if ..., otherwise green')")
        present, score = module.decode(answer, parsed.positive, parsed.negative)
        write_json(
            paths[0],
            {**meta, "present": bool(present), "score": round(float(score), 4),
             "positive": parsed.positive, "negative": parsed.negative},
            indent=1,
        )
    elif task == "depes":
        metres = np.asarray(module.decode(answer, size), dtype=np.float32)
        save_image(paths[0], Image.fromarray(depth_to_millimetres(metres)))
        save_image(paths[1], colorize_depth(metres, getattr(module, "MAX_DEPTH", 10.0)))
    else:  # a task tasks/ knows but this writer does not: say so rather than guess a format
        raise ValueError(f"no structured output defined for task {task!r}")
    return paths


def depth_to_millimetres(metres: np.ndarray) -> np.ndarray:
    """Float metres -> uint16 millimetres (0 stays "no data"), the NYUv2 convention."""
    return np.clip(np.rint(metres * 1000.0), 0, np.iinfo(np.uint16).max).astype(np.uint16)


def colorize_depth(metres: np.ndarray, max_depth: float = 10.0) -> np.ndarray:
    """RGB preview of a depth map on a fixed 0..``max_depth`` scale; pixels without depth are black."""
    scaled = np.clip(metres / max_depth * 255.0, 0, 255).astype(np.uint8)
    rgb = cv2.cvtColor(cv2.applyColorMap(scaled, PREVIEW_DEPTH_MAP), cv2.COLOR_BGR2RGB)
    rgb[metres <= 0] = 0
    return rgb


def draw_boxes(image: np.ndarray, boxes: np.ndarray, width: int = 2) -> np.ndarray:
    """A copy of ``image`` with each ``x0, y0, x1, y1, score`` box outlined and its score written."""
    out = np.ascontiguousarray(image.copy())
    font_scale = max(0.4, width / 5)
    for x0, y0, x1, y1, score in np.asarray(boxes, dtype=np.float64).reshape(-1, 5):
        p0, p1 = (int(round(x0)), int(round(y0))), (int(round(x1)) - 1, int(round(y1)) - 1)
        cv2.rectangle(out, p0, p1, PREVIEW_BOX_COLOR, max(1, width // 2))
        cv2.putText(out, f"{score:.2f}", (p0[0] + 2, max(p0[1] - 4, 12)), cv2.FONT_HERSHEY_SIMPLEX,
                    font_scale, PREVIEW_BOX_COLOR, 1, cv2.LINE_AA)
    return out


def _round(values: np.ndarray, digits: int = 1) -> list:
    return np.round(values.astype(np.float64), digits).tolist()
