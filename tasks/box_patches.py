"""Candidate boxes for the detection decoder from small drawn boxes: their holes and their solid patches.

A 4 px stroke leaves a box under about three strokes wide a blue patch with a slit of a hole (or no
hole at all). Touching small boxes (bottles on a shelf) merge into one patch, and a patch touching
a large box's line joins its component, so neither the corner junctions nor the components'
outlines give them. Two kinds of evidence still do, and both use the known stroke width:

* a hole (background enclosed by the line mask) is the inside of one box: the box's outer edges
  lie where the line runs leaving the hole in the four directions end;
* a solid patch survives an opening with a square wider than a line, which removes single lines
  (and the large box the patch touches): its outline is the box.

The decoder scores such a box by its ring of one stroke (``ring_mean``) and its hole (``inside_mean``).
"""

from __future__ import annotations

import cv2
import numpy as np


def rect_sums(ii: np.ndarray, x0, y0, x1, y1) -> tuple[np.ndarray, np.ndarray]:
    """Sums over [x0, x1) x [y0, y1) of the image whose integral is ``ii``, and the areas (outside: empty)."""
    h, w = ii.shape[0] - 1, ii.shape[1] - 1
    x0, x1 = np.minimum(np.maximum(x0, 0), w), np.minimum(np.maximum(x1, 0), w)
    y0, y1 = np.minimum(np.maximum(y0, 0), h), np.minimum(np.maximum(y1, 0), h)
    return ii[y1, x1] - ii[y0, x1] - ii[y1, x0] + ii[y0, x0], (x1 - x0) * (y1 - y0)


def inside_mean(ii: np.ndarray, c: np.ndarray, lw: int) -> np.ndarray:
    """Share of line pixels inside each box's ring of one stroke (its hole; 1 where it has none)."""
    s, n = rect_sums(ii, c[:, 0] + lw, c[:, 1] + lw, c[:, 2] - lw, c[:, 3] - lw)
    inside = (c[:, 2] - c[:, 0] > 2 * lw) & (c[:, 3] - c[:, 1] > 2 * lw) & (n > 0)
    return np.where(inside, s / np.maximum(n, 1), 1.0)


def ring_mean(ii: np.ndarray, c: np.ndarray, lw: int) -> np.ndarray:
    """Share of line pixels in each box's ring of one stroke along its frame (a small box's whole drawing)."""
    s, n = rect_sums(ii, c[:, 0], c[:, 1], c[:, 2], c[:, 3])
    si, ni = rect_sums(ii, c[:, 0] + lw, c[:, 1] + lw, c[:, 2] - lw, c[:, 3] - lw)
    inside = (c[:, 2] - c[:, 0] > 2 * lw) & (c[:, 3] - c[:, 1] > 2 * lw)
    si, ni = np.where(inside, si, 0), np.where(inside, ni, 0)
    return (s - si) / np.maximum(n - ni, 1)


def _runs(mask: np.ndarray, x: np.ndarray, y: np.ndarray, dx: int, dy: int, reach: int) -> np.ndarray:
    """How many consecutive mask pixels start at (x, y) + (dx, dy) and go on in that direction (<= reach)."""
    h, w = mask.shape
    steps = np.arange(1, reach + 1)[None, :]
    xs, ys = x[:, None] + dx * steps, y[:, None] + dy * steps
    inside = (xs >= 0) & (xs < w) & (ys >= 0) & (ys < h)
    on = inside & (mask[np.clip(ys, 0, h - 1), np.clip(xs, 0, w - 1)] > 0)
    return np.cumprod(on, axis=1).sum(1)


def hole_boxes(mask: np.ndarray, lw: int, max_side: int) -> np.ndarray:
    """(K, 4) xyxy boxes around the holes of ``mask`` whose shorter side is at most ``max_side`` px.

    Each side of a box is the end of the line run leaving its hole at the hole's middle row or
    column, and (a second candidate) a run thicker than a stroke counts as one stroke (merged with a
    touching neighbour's line or patch).
    """
    contours, hierarchy = cv2.findContours(mask, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    if hierarchy is None:
        return np.zeros((0, 4), np.int64)
    holes = [cv2.boundingRect(c) for c, hier in zip(contours, hierarchy[0], strict=True) if hier[3] >= 0]
    if not holes:
        return np.zeros((0, 4), np.int64)
    # a hole's contour runs on the line pixels around it: the hole itself is one pixel inside
    r = np.array(holes, dtype=np.int64).reshape(-1, 4) + np.array([1, 1, -2, -2])
    # JPEG leaves pinholes in a solid patch: a box's hole is at least a stroke long
    r = r[(np.minimum(r[:, 2], r[:, 3]) <= max_side) & (np.minimum(r[:, 2], r[:, 3]) > 0)
          & (np.maximum(r[:, 2], r[:, 3]) >= lw)]
    if len(r) == 0:
        return np.zeros((0, 4), np.int64)
    x0, y0, x1, y1 = r[:, 0], r[:, 1], r[:, 0] + r[:, 2], r[:, 1] + r[:, 3]
    xc, yc = (x0 + x1 - 1) // 2, (y0 + y1 - 1) // 2
    reach = 4 * lw
    options = []
    for edge, start, dx, dy in ((x0, (x0, yc), -1, 0), (y0, (xc, y0), 0, -1),
                                (x1, (x1 - 1, yc), 1, 0), (y1, (xc, y1 - 1), 0, 1)):
        run = _runs(mask, start[0], start[1], dx, dy, reach)
        # a run much thicker than a stroke may be this box's line and a touching neighbour's:
        # each side is tried both ways
        options.append((edge + (dx + dy) * np.where(run >= reach, lw, run),
                        edge + (dx + dy) * np.where(run > lw + 2, lw, run)))
    pick = np.array(np.meshgrid(*[[0, 1]] * 4, indexing="ij")).reshape(4, -1).T  # (16, 4) choices
    out = np.concatenate([np.stack([options[k][p[k]] for k in range(4)], 1) for p in pick])
    hole = np.tile(np.stack([x0, y0, x1, y1], 1), (len(pick), 1))
    out = out[(out[:, :2] < hole[:, :2]).all(1) & (out[:, 2:] > hole[:, 2:]).all(1)]
    return np.unique(out, axis=0)


def patch_boxes(mask: np.ndarray, lw: int) -> np.ndarray:
    """(K, 4) xyxy outlines of the solid blue patches of ``mask`` (what a square wider than a line keeps)."""
    k = lw + 3
    closed = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8))  # JPEG's pinholes
    solid = cv2.morphologyEx(closed, cv2.MORPH_OPEN, np.ones((k, k), np.uint8))
    contours, _ = cv2.findContours(solid, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return np.zeros((0, 4), np.int64)
    r = np.array([cv2.boundingRect(c) for c in contours], dtype=np.int64).reshape(-1, 4)
    return np.stack([r[:, 0], r[:, 1], r[:, 0] + r[:, 2], r[:, 1] + r[:, 3]], 1)
