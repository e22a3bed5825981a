"""Reading answer images back into structured outputs (``edit_cli.py --decode``) and writing them.

The instruction parser of ``tasks/`` tells the task; that task reads the answer image into a
prediction (``Task.read_answer``) and says what to write next to the answer ``<stem>.png``
(``Task.outputs`` and ``Task.output_suffixes``):

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

import numpy as np
from PIL import Image

import tasks
from instructcv.io import save_image, write_json
from tasks import parse_instruction

log = logging.getLogger(__name__)


def decoded_paths(task: str, stem: Path) -> list[Path]:
    """The files ``write_decoded`` writes for ``task`` next to ``<stem>.png``."""
    return [stem.with_name(stem.name + suffix) for suffix in tasks.task(task).output_suffixes]


def parse(instruction: str) -> Any:
    """The ``tasks.ParsedInstruction`` of ``instruction`` (task, class, colours, reason, ok)."""
    return parse_instruction(instruction)


def parsed_record(parsed: Any, instruction: str) -> dict[str, Any]:
    """A query record (as evaluation has metadata rows) for an instruction a user typed."""
    colors = [parsed.positive, parsed.negative] if parsed.positive and parsed.negative else None
    return {"edit": instruction, "task": parsed.task, "class": parsed.class_name, "colors": colors}


def write_decoded(answer: Image.Image, image: Image.Image, parsed: Any, stem: Path, instruction: str) -> list[Path]:
    """Decode ``answer`` (at the input's size) as ``parsed.task`` and write the files; return their paths.

    ``image`` is the input picture (RGB, same size): detection uses it to ignore blue that was
    already in the photo, and draws its preview on it.
    """
    task = tasks.task(parsed.task)
    rgb = np.asarray(image)
    record = parsed_record(parsed, instruction)
    meta = {"instruction": instruction, "task": task.tag, "class": parsed.class_name, "image_size": list(image.size)}
    prediction = task.read_answer(answer, record, image.size, image=rgb)
    paths = decoded_paths(task.tag, stem)
    for path, content in zip(paths, task.outputs(prediction, rgb, record, meta), strict=True):
        if isinstance(content, dict):
            write_json(path, content, indent=1)
        else:
            save_image(path, content)
    return paths
