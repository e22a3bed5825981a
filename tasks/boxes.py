"""Box geometry shared by the detection target, its decoder and its metric: the blue, the line width, (N, 4) arrays."""

from __future__ import annotations

from typing import Any

import numpy as np

BLUE = (0, 0, 255)
LINE_WIDTH = 4  # the released model's stroke (AlaaLab/InstructCV format_dataset_rp.py)


def line_width(width: int, height: int) -> int:
    """Box line width for an image of ``width`` x ``height``: the released model's 4 px at any size.

    The original builder drew every box 4 px wide at the input's native resolution (6 px for the
    Oxford-Pets head boxes, set by its reader); the decoder looks for lines of this width.
    """
    return LINE_WIDTH


def as_boxes(boxes: Any) -> np.ndarray:
    """``boxes`` as a float (N, 4) x0, y0, x1, y1 array (extra columns such as scores dropped)."""
    arr = np.asarray(boxes if boxes is not None else [], dtype=np.float64)
    if arr.size == 0:
        return np.zeros((0, 4), dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] < 4:
        raise ValueError(f"boxes must be (N, 4) x0, y0, x1, y1; got shape {arr.shape}")
    return arr[:, :4]

