"""Pictures of predictions for people: boxes on the input, a mask over it, depth as a colour map.

``edit_cli.py --decode`` writes them and the web demo shows them (through each task's ``render`` and
``outputs``), so both show the same thing.
"""

from __future__ import annotations

import cv2
import numpy as np

PREVIEW_BOX_COLOR = (0, 255, 0)  # green: distinct from the blue boxes the model draws
PREVIEW_DEPTH_MAP = cv2.COLORMAP_INFERNO  # near = dark, far = bright, as in the answer image
MASK_COLOR = np.array([0, 255, 0], dtype=np.float32)  # the green of the box previews
MASK_ALPHA = 0.45  # tint inside the mask
MASK_DIM = 0.35  # brightness kept outside it: the mask reads on any photo, whatever its colours


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


def overlay_mask(image: np.ndarray, mask: np.ndarray, alpha: float = MASK_ALPHA, dim: float = MASK_DIM) -> np.ndarray:
    """``image`` with ``mask`` (bool, same height and width) tinted in ``MASK_COLOR`` and the rest dimmed."""
    out = image.astype(np.float32)
    inside = mask[..., None]
    out = np.where(inside, (1.0 - alpha) * out + alpha * MASK_COLOR, dim * out)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def depth_to_millimetres(metres: np.ndarray) -> np.ndarray:
    """Float metres -> uint16 millimetres (0 stays "no data"), the NYUv2 convention."""
    return np.clip(np.rint(metres * 1000.0), 0, np.iinfo(np.uint16).max).astype(np.uint16)


def colorize_depth(metres: np.ndarray, max_depth: float = 10.0) -> np.ndarray:
    """RGB preview of a depth map on a fixed 0..``max_depth`` scale; pixels without depth are black."""
    scaled = np.clip(metres / max_depth * 255.0, 0, 255).astype(np.uint8)
    rgb = cv2.cvtColor(cv2.applyColorMap(scaled, PREVIEW_DEPTH_MAP), cv2.COLOR_BGR2RGB)
    rgb[metres <= 0] = 0
    return rgb


def round_list(values: np.ndarray, digits: int = 1) -> list:
    """``values`` rounded to ``digits`` as nested lists (JSON output)."""
    return np.round(np.asarray(values, dtype=np.float64), digits).tolist()
