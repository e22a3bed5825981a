"""The detection decoder: the blue boxes drawn in an answer image, read back as (N, 5) boxes with scores.

Reading an answer back (``decode``) must survive what a diffusion model and JPEG do to thin lines
(blur, colour shifts, chroma bleeding) and must not turn blue things of the photo (sky, shirts,
graffiti) into boxes. It works on the answer at the input's size, vectorised with OpenCV; the only
Python loops run over candidate boxes, never over pixels:

1. line strength (``line_maps``): a top-hat of the blueness B - max(R, G) with a square wider than
   a line, so broad blue regions vanish and thin lines stay, also across red, yellow or sky; with
   the input ``image``, the blue *added* to it instead (the projection of answer - input on
   blue - input), and where the input was already pure blue a line could not show ("unknown");
   hysteresis and a half-of-local-peak cut give a line mask of about the drawn width;
2. straight runs at least three line widths long give horizontal and vertical line masks; where
   they meet are junctions, each classified by the directions its lines leave it (the image border
   counts as a line, for boxes cut by it), which gives corner points;
3. candidate boxes pair top-left with bottom-right and top-right with bottom-left corners, plus the
   outline of every blue component and the boxes around small holes and solid patches (small
   boxes merged with touching ones, ``tasks/box_patches.py``); each edge is snapped onto the
   outer side of its line and scored (``_score``) by how completely its edges are drawn, whether
   its corners are filled, whether lines run on past its corners (as they do for the overlap of
   two boxes), whether an edge sits inside a line rather than on its outer side, and whether its
   lines are thicker than drawn or fill its inside; a box too small to have a hole ranks lower,
   and without the input must be the saturated blue we draw;
4. a greedy explanation (``_select``): best first, a box is kept only if part of its frame is not
   already drawn by the boxes kept before it (no duplicates, no unions or overlaps of two boxes);
5. the outer edges of each kept box are refined to sub-pixel precision from the line profile, and
   moved half a pixel inwards to the box's own corners (PIL's truncation and inclusive last pixel).

Steps 1-4 run at the drawn width; where that leaves straight lines unexplained they run again at
two pixels wider (blur and a 256 px round trip spread a 4 px stroke) and step 4 picks from both.

The score (0..1) says how complete and box-like the frame is; ``min_score`` drops the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from tasks.box_patches import hole_boxes, inside_mean, patch_boxes, rect_sums, ring_mean
from tasks.boxes import line_width
from tasks.imageutil import as_rgb, check_size, resize_to

DEFAULT_MIN_SCORE = 0.3

# Blue mask thresholds, on B - max(R, G) (pure blue: 255; a light sky: ~30-80; JPEG-blurred 2-px
# lines scaled back up: ~100-170 at their centre) and on B itself (navy and black are not "blue").
_WEAK, _STRONG = 30, 80  # how much bluer than its surroundings (top-hat) a line pixel must be
_BLUE_MIN = 10  # B - max(R, G) of the pixel itself
_SMALL_BLUE_MIN = 200  # ... somewhere in a box too small to have a hole, when the input is not given
_KNOWN_MIN = 30  # with the input: how far from pure blue an input pixel must be for a line on it to show
_B_MIN = 60
_SNAP_OUT = 0.8  # an edge moves outward only onto a line that runs along this share of it
_CORNER_SHIFT = (0.5, -0.5)  # decoded outer edges -> PIL corners (see decode)
_WIDENINGS = (0, 2)  # line widths looked for: as drawn, and two pixels wider
_UNEXPLAINED = 3  # the wider pass runs when over this many stroke squares of straight line are unexplained


def _blueness(rgb: np.ndarray) -> np.ndarray:
    """B - max(R, G) as int16: how much bluer than anything else a pixel is."""
    r, g, b = cv2.split(rgb)
    return cv2.subtract(b, cv2.max(r, g), dtype=cv2.CV_16S)


def _blue_added(answer: np.ndarray, image: np.ndarray, where: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(how far each pixel moved from the input towards pure blue, 0..255 int16; unknown mask).

    The projection of (answer - input) on (blue - input): a line drawn over a blue shirt still
    counts fully, blue that was in the photo counts for nothing. Where the input already is
    (almost) pure blue a drawn line is invisible: those pixels are "unknown" (uint8 mask). Only
    the pixels in ``where`` (the blue-ish ones) can count.
    """
    f32 = cv2.CV_32F
    ar, ag, ab = cv2.split(answer)
    ir, ig, ib = cv2.split(image)
    inv_b = cv2.subtract(255, ib)  # blue - input, per channel: (-ir, -ig, 255 - ib)
    # (answer - input) . (blue - input) = (ir - ar) ir + (ig - ag) ig + (ab - ib)(255 - ib)
    dv = cv2.multiply(cv2.subtract(ir, ar, dtype=f32), ir, dtype=f32)
    dv = cv2.add(dv, cv2.multiply(cv2.subtract(ig, ag, dtype=f32), ig, dtype=f32))
    dv = cv2.add(dv, cv2.multiply(cv2.subtract(ab, ib, dtype=f32), inv_b, dtype=f32))
    vv = cv2.add(cv2.add(cv2.multiply(ir, ir, dtype=f32), cv2.multiply(ig, ig, dtype=f32)),
                 cv2.multiply(inv_b, inv_b, dtype=f32))
    known = vv >= _KNOWN_MIN ** 2
    level = cv2.divide(dv, cv2.max(vv, 1.0), scale=255.0)
    level = np.where(where & known, np.clip(level, 0, 255), 0).astype(np.int16)
    unknown = (where & ~known).view(np.uint8)
    return level, unknown


def _clamp(v, hi: int) -> np.ndarray:
    # np.clip has a large fixed cost on small arrays; this is called a few hundred times per image
    return np.minimum(np.maximum(v, 0), hi)


def _boxes_of_components(mask: np.ndarray) -> np.ndarray:
    """(K, 4) x, y, w, h of the 8-connected components of ``mask`` (outer contours' bounding boxes).

    Much faster than ``connectedComponentsWithStats`` when only the boxes are needed.
    """
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return np.zeros((0, 4), np.int64)
    return np.array([cv2.boundingRect(c) for c in contours], dtype=np.int64).reshape(-1, 4)


class _Maps:
    """Integral images of the line mask for O(1) edge, corner and band measurements per candidate.

    ``row_mean(row, a, b)`` is the fraction of columns in [a, b) with a line pixel within ``band``
    rows below ``row`` (``col_mean`` likewise to the right of a column); ``raw=True`` looks at the
    single row or column only. Parts outside the image count as empty.
    """

    def __init__(self, mask: np.ndarray, hlines: np.ndarray, vlines: np.ndarray, band: int,
                 unknown: np.ndarray | None = None):
        self.h, self.w = mask.shape
        # edges are measured on straight runs only (a wiggly blue stroke is not a box edge); where
        # a line could not show (the input was pure blue there) an edge counts as drawn
        if unknown is not None and unknown.any():
            hlines, vlines = hlines | unknown, vlines | unknown
        self.band_v = cv2.integral(cv2.dilate(hlines, np.ones((band, 1), np.uint8), anchor=(0, 0)))
        self.band_h = cv2.integral(cv2.dilate(vlines, np.ones((1, band), np.uint8), anchor=(0, 0)))
        self.raw = cv2.integral(mask)

    def _sum(self, ii: np.ndarray, x0, y0, x1, y1) -> tuple[np.ndarray, np.ndarray]:
        x0, x1 = _clamp(x0, self.w), _clamp(x1, self.w)
        y0, y1 = _clamp(y0, self.h), _clamp(y1, self.h)
        return ii[y1, x1] - ii[y0, x1] - ii[y1, x0] + ii[y0, x0], np.maximum(x1 - x0, 0) * np.maximum(y1 - y0, 0)

    def row_mean(self, row, a, b, raw: bool = False) -> np.ndarray:
        s, _ = self._sum(self.raw if raw else self.band_v, a, row, b, row + 1)
        return s / np.maximum(np.asarray(b) - np.asarray(a), 1)

    def col_mean(self, col, a, b, raw: bool = False) -> np.ndarray:
        s, _ = self._sum(self.raw if raw else self.band_h, col, a, col + 1, b)
        return s / np.maximum(np.asarray(b) - np.asarray(a), 1)

    def rect_mean(self, x0, y0, x1, y1) -> np.ndarray:
        s, n = self._sum(self.raw, x0, y0, x1, y1)
        return np.where(n > 0, s / np.maximum(n, 1), 0.0)


def _corners(hl: np.ndarray, vl: np.ndarray, lw: int) -> dict[str, np.ndarray]:
    """Corner points (x, y) of each kind from the junctions of horizontal and vertical lines.

    The image border acts as a line here, so a box cut by the border still has its corners.
    """
    h, w = hl.shape
    hf, vf = hl.copy(), vl.copy()
    hf[0, :] = hf[-1, :] = 1
    vf[:, 0] = vf[:, -1] = 1
    stats = _boxes_of_components(hf & vf)
    out = {k: np.zeros((0, 2), np.int64) for k in ("tl", "tr", "bl", "br")}
    if len(stats) == 0:
        return out
    x, y, bw, bh = stats[:, 0], stats[:, 1], stats[:, 2], stats[:, 3]
    d = lw + 2
    ih, iv = cv2.integral(hf), cv2.integral(vf)

    def goes(ii, ax0, ay0, ax1, ay1):
        s, n_ = rect_sums(ii, ax0, ay0, ax1, ay1)
        return (n_ > 0) & (s >= 0.4 * np.maximum(n_, 1))

    left = goes(ih, x - d, y, x, y + bh)
    right = goes(ih, x + bw, y, x + bw + d, y + bh)
    up = goes(iv, x, y - d, x + bw, y)
    down = goes(iv, x, y + bh, x + bw, y + bh + d)
    # a junction twice as wide as a line may be two touching boxes' lines merged: the inner edge
    # of each line is then a corner too
    wide = bw >= 1.6 * lw
    tall = bh >= 1.6 * lw

    def points(sel, px, py, alt_x, alt_y):
        pts = [np.stack([px[sel], py[sel]], 1)]
        s2 = sel & wide
        pts.append(np.stack([alt_x[s2], py[s2]], 1))
        s3 = sel & tall
        pts.append(np.stack([px[s3], alt_y[s3]], 1))
        return np.concatenate(pts, 0)

    out["tl"] = points(right & down, x, y, x + bw - lw, y + bh - lw)
    out["tr"] = points(left & down, x + bw, y, x + lw, y + bh - lw)
    out["bl"] = points(right & up, x, y + bh, x + bw - lw, y + lw)
    out["br"] = points(left & up, x + bw, y + bh, x + lw, y + lw)
    return out


def _pair(a: np.ndarray, b: np.ndarray, min_side: int, limit: int = 40000) -> np.ndarray:
    """Boxes from every (top-left-ish a, bottom-right-ish b) pair with b right of and below a."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((0, 4), np.int64)
    if len(a) * len(b) > limit:  # pathological clutter: keep the pairs closest together
        a = a[: max(1, limit // max(len(b), 1))]
    x0 = np.repeat(a[:, 0], len(b))
    y0 = np.repeat(a[:, 1], len(b))
    x1 = np.tile(b[:, 0], len(a))
    y1 = np.tile(b[:, 1], len(a))
    keep = (x1 - x0 >= min_side) & (y1 - y0 >= min_side)
    return np.stack([x0[keep], y0[keep], x1[keep], y1[keep]], 1)


def _is_small(c: np.ndarray, lw: int) -> np.ndarray:
    return np.minimum(c[:, 2] - c[:, 0], c[:, 3] - c[:, 1]) <= 3 * lw


def _snap(c: np.ndarray, maps: _Maps, reach: int) -> np.ndarray:
    """Move each candidate edge onto the outer side of the line it lies on (at most ``reach`` px).

    Corner points come from where line masks cross and can sit a pixel or two inside the drawn
    line; an edge whose line runs on outward further than ``reach`` (two touching boxes' lines
    merged) is left where it is.
    """
    c = c.copy()
    x0, y0, x1, y1 = c[:, 0], c[:, 1], c[:, 2], c[:, 3]
    # trim a little of each end so that crossing lines do not count
    mx0, mx1 = x0 + (x1 - x0) // 8, x1 - (x1 - x0) // 8
    my0, my1 = y0 + (y1 - y0) // 8, y1 - (y1 - y0) // 8
    offs = np.arange(-reach, reach + 1)[None, :]
    for k, line, outward, frac in ((1, y0[:, None], -1, "row"), (3, y1[:, None] - 1, 1, "row"),
                                   (0, x0[:, None], -1, "col"), (2, x1[:, None] - 1, 1, "col")):
        pos = line + outward * offs  # index reach is the edge's own line; beyond it = outward
        if frac == "row":
            cover = maps.row_mean(pos, mx0[:, None], mx1[:, None], raw=True)
        else:
            cover = maps.col_mean(pos, my0[:, None], my1[:, None], raw=True)
        on = cover >= 0.5
        # outward only where the line runs on along (nearly) the whole edge: a neighbour's line
        # touching part of it makes the line look thicker there, not the box bigger
        out_run = np.cumprod(cover[:, reach + 1:] >= _SNAP_OUT, axis=1).sum(1)  # on-run outward of the edge line
        in_first = np.argmax(on[:, reach:], axis=1)  # first on line at or inward of the edge
        in_any = on[:, reach:].any(1)
        shift = np.where(on[:, reach], np.where(out_run < reach, out_run, 0),
                         np.where(in_any, -in_first, 0))
        # shift > 0 moves outward
        c[:, k] = c[:, k] + outward * shift
    return c


def _score(c: np.ndarray, maps: _Maps, lw: int, band: int, debug: bool = False) -> np.ndarray | dict:
    """How box-like each candidate (K, 4) is, in [0, 1]; 0 when an edge is less than half drawn."""
    h, w = maps.h, maps.w
    x0, y0, x1, y1 = c[:, 0], c[:, 1], c[:, 2], c[:, 3]
    xb, yb = np.maximum(x1 - band, x0), np.maximum(y1 - band, y0)
    # edges in the order top, bottom, left, right; a small box's sides are too short for the
    # straight-run masks, its frame is (nearly) filled: use how filled it is
    cov = np.stack([maps.row_mean(y0, x0, x1), maps.row_mean(yb, x0, x1),
                    maps.col_mean(x0, y0, y1), maps.col_mean(xb, y0, y1)], 1)
    small = _is_small(c, lw)
    cov = np.where(small[:, None], ring_mean(maps.raw, c, lw)[:, None], cov)

    # a box cut by the image border has no line there: credit a border edge when the box's
    # other edges run right up to that border
    border = np.stack([y0 <= 1, y1 >= h - 1, x0 <= 1, x1 >= w - 1], 1)
    reach = 3 * lw
    ends = np.stack([  # how well the left/right (or top/bottom) edges are drawn near each border edge
        np.minimum(np.where(border[:, 2], 1, maps.col_mean(x0, y0, y0 + reach)),
                   np.where(border[:, 3], 1, maps.col_mean(xb, y0, y0 + reach))),
        np.minimum(np.where(border[:, 2], 1, maps.col_mean(x0, y1 - reach, y1)),
                   np.where(border[:, 3], 1, maps.col_mean(xb, y1 - reach, y1))),
        np.minimum(np.where(border[:, 0], 1, maps.row_mean(y0, x0, x0 + reach)),
                   np.where(border[:, 1], 1, maps.row_mean(yb, x0, x0 + reach))),
        np.minimum(np.where(border[:, 0], 1, maps.row_mean(y0, x1 - reach, x1)),
                   np.where(border[:, 1], 1, maps.row_mean(yb, x1 - reach, x1))),
    ], 1)
    has_real_neighbour = np.stack([~(border[:, 2] & border[:, 3])] * 2 + [~(border[:, 0] & border[:, 1])] * 2, 1)
    credit = border & has_real_neighbour & (ends >= 0.7)
    cov = np.where(credit, np.maximum(cov, 0.8), cov)
    cov_term = 0.5 * cov.mean(1) + 0.5 * cov.min(1)

    # corners filled (a round blue blob has empty corners)
    corner = np.stack([maps.rect_mean(x0, y0, x0 + band, y0 + band), maps.rect_mean(xb, y0, x1, y0 + band),
                       maps.rect_mean(x0, yb, x0 + band, y1), maps.rect_mean(xb, yb, x1, y1)], 1)
    corner_border = np.stack([credit[:, 0] | credit[:, 2], credit[:, 0] | credit[:, 3],
                              credit[:, 1] | credit[:, 2], credit[:, 1] | credit[:, 3]], 1)
    corner = np.where(corner_border, 1.0, corner)

    # lines running on past a corner: true box corners are ends of lines; the corners of the
    # overlap of two boxes, or of a box made of two neighbours' lines, are crossings
    ext, g = 2 * lw, 2
    run_on = (np.stack([
        maps.row_mean(y0, x0 - g - ext, x0 - g), maps.col_mean(x0, y0 - g - ext, y0 - g),  # top-left
        maps.row_mean(y0, x1 + g, x1 + g + ext), maps.col_mean(xb, y0 - g - ext, y0 - g),  # top-right
        maps.row_mean(yb, x0 - g - ext, x0 - g), maps.col_mean(x0, y1 + g, y1 + g + ext),  # bottom-left
        maps.row_mean(yb, x1 + g, x1 + g + ext), maps.col_mean(xb, y1 + g, y1 + g + ext),  # bottom-right
    ], 1) >= 0.6).astype(np.int64)
    # ... but a small box with a slit of a hole is one box, whatever touches its long sides
    # (bottles on a shelf); only its own long sides running on past it still count
    slit = (small & (inside_mean(maps.raw, c, lw) < 0.5))[:, None]
    tall = (y1 - y0 >= x1 - x0)[:, None]
    run_on[:, 0::2] *= ~(slit & tall)
    run_on[:, 1::2] *= ~(slit & ~tall)
    # per corner: no line runs on = a corner, one = a T (touching another box), two = a crossing
    per_corner = run_on[:, 0::2] + run_on[:, 1::2]
    corner_factor = np.array([1.0, 0.85, 0.6])[per_corner].prod(1)

    # an outer edge has no blue just outside it, unless a neighbour's full line lies there; an
    # edge with only a sliver of blue outside it sits inside a line, not on its outer side
    near = np.stack([maps.row_mean(y0 - band - 1, x0, x1), maps.row_mean(y1 + 1, x0, x1),
                     maps.col_mean(x0 - band - 1, y0, y1), maps.col_mean(x1 + 1, y0, y1)], 1) >= 0.5
    far = np.stack([maps.row_mean(y0 - lw, x0, x1), maps.row_mean(y1 + lw - band, x0, x1),
                    maps.col_mean(x0 - lw, y0, y1), maps.col_mean(x1 + lw - band, y0, y1)], 1) >= 0.5
    near &= ~border
    placement = np.where(near & ~far, 0.6, np.where(near, 0.97, 1.0)).prod(1)

    # lines much thicker than drawn: the inner side of this frame is another box's line
    inset = lw + 2
    inner_ok = (x1 - x0 > 2 * inset + band) & (y1 - y0 > 2 * inset + band)
    inner = np.stack([
        maps.row_mean(y0 + inset, x0 + inset, x1 - inset), maps.row_mean(y1 - inset - band, x0 + inset, x1 - inset),
        maps.col_mean(x0 + inset, y0 + inset, y1 - inset), maps.col_mean(x1 - inset - band, y0 + inset, y1 - inset),
    ], 1)
    inner = np.where(inner_ok[:, None], inner >= 0.8, False).mean(1)

    # the inside of a frame is background: one that is mostly line is two touching boxes' lines
    filled = maps.rect_mean(x0 + lw + 1, y0 + lw + 1, x1 - lw - 1, y1 - lw - 1)
    score = (cov_term * (0.7 + 0.3 * corner.mean(1)) * corner_factor * placement * (1.0 - 0.3 * inner)
             * (1.0 - 0.5 * filled))
    score = np.where(cov.min(1) >= 0.5, score, 0.0)
    if debug:
        return dict(cov=cov, credit=credit, corner=corner, per_corner=per_corner, near=near, far=far,
                    inner=inner, score=score)
    return score


def _select(cand: np.ndarray, base: np.ndarray, lw: int, shape: tuple[int, int], min_score: float,
            min_novel: float = 0.2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Greedy explanation of the drawn lines: best candidates first, each must add new lines.

    A candidate whose frame is mostly made of lines of boxes already accepted (a near duplicate,
    the overlap of two boxes, the union of two neighbours) is not a box of its own. Returns the
    indices kept, their final scores (base score lowered when part of the frame was shared) and
    the uint8 mask of the frames kept.
    """
    h, w = shape
    explained = np.zeros((h, w), np.uint8)
    keep: list[int] = []
    final: list[float] = []
    c, tol = lw // 2, 2
    for i in np.argsort(-base, kind="stable"):  # a loop over candidates, not pixels
        if base[i] < min_score:
            break
        x0, y0, x1, y1 = (int(v) for v in cand[i])
        yt, yb = min(y0 + c, y1 - 1), max(y1 - 1 - c, y0)
        xl, xr = min(x0 + c, x1 - 1), max(x1 - 1 - c, x0)
        yt, yb, xl, xr = min(yt, h - 1), min(yb, h - 1), min(xl, w - 1), min(xr, w - 1)
        seen = (int(explained[yt, x0:x1].sum()) + int(explained[yb, x0:x1].sum())
                + int(explained[y0:y1, xl].sum()) + int(explained[y0:y1, xr].sum()))
        novel = 1.0 - seen / max(2 * (x1 - x0) + 2 * (y1 - y0), 1)
        if keep and novel < min_novel:
            continue
        score = float(base[i]) * (0.6 + 0.4 * novel)
        if score < min_score:
            continue
        keep.append(int(i))
        final.append(score)
        _draw_frame(explained, cand[i], lw, tol)
    order = np.argsort(-np.asarray(final), kind="stable")
    return np.asarray(keep, dtype=np.int64)[order], np.asarray(final, dtype=np.float64)[order], explained


def _draw_frame(mask: np.ndarray, box: np.ndarray, lw: int, tol: int) -> None:
    h, w = mask.shape
    x0, y0, x1, y1 = (int(v) for v in box)
    ox0, oy0, ox1, oy1 = max(x0 - tol, 0), max(y0 - tol, 0), min(x1 + tol, w), min(y1 + tol, h)
    t = lw + 2 * tol
    mask[oy0:min(oy0 + t, oy1), ox0:ox1] = 1
    mask[max(oy1 - t, oy0):oy1, ox0:ox1] = 1
    mask[oy0:oy1, ox0:min(ox0 + t, ox1)] = 1
    mask[oy0:oy1, max(ox1 - t, ox0):ox1] = 1


def _refine(boxes: np.ndarray, strength: np.ndarray, lw: int) -> np.ndarray:
    """Move each outer edge to where the blue profile across it crosses half its peak (sub-pixel).

    The profile is the median across the middle half of the edge, so crossing lines of other boxes
    do not disturb it. An edge without a clean crossing near its integer position (e.g. merged
    with a touching box's line) keeps that position.
    """
    out = boxes.astype(np.float64).copy()
    if len(boxes) == 0:
        return out
    h, w = strength.shape
    s = strength  # uint8; only the sampled profiles are converted
    r = lw + 3
    steps = np.arange(2 * r + 1)
    for i, (x0, y0, x1, y1) in enumerate(boxes):
        mx0, mx1 = x0 + (x1 - x0) // 4, x1 - (x1 - x0) // 4
        my0, my1 = y0 + (y1 - y0) // 4, y1 - (y1 - y0) // 4
        if mx1 - mx0 < 2 or my1 - my0 < 2:
            continue
        # (column of the edge in `out`, outermost sample pixel, inward direction, along rows?)
        for k, outer, inward, horizontal in ((0, x0 - r, 1, False), (1, y0 - r, 1, True),
                                             (2, x1 - 1 + r, -1, False), (3, y1 - 1 + r, -1, True)):
            px = outer + inward * steps  # sample r is the first frame pixel
            lim = h if horizontal else w
            valid = (px >= 0) & (px < lim)
            pc = np.clip(px, 0, lim - 1)
            along = np.linspace(mx0, mx1 - 1, min(mx1 - mx0, 32)).astype(np.int64) if horizontal else \
                np.linspace(my0, my1 - 1, min(my1 - my0, 32)).astype(np.int64)
            prof = np.median(s[pc[:, None], along[None, :]], axis=1) if horizontal else \
                np.median(s[along[:, None], pc[None, :]], axis=0)
            prof = np.where(valid, prof, 0.0)
            peak = prof[max(r - 2, 0): r + lw + 2].max()
            if peak <= 0:
                continue
            above = prof >= 0.5 * peak
            ups = np.flatnonzero(above[1:] & ~above[:-1]) + 1  # outside -> inside crossings
            if len(ups) == 0:
                continue
            j = int(ups[np.argmin(np.abs(ups - r))])
            if abs(j - r) > 2:
                continue
            a, b = prof[j - 1], prof[j]
            frac = (0.5 * peak - a) / (b - a) if b > a else 0.5
            edge = px[j - 1] + inward * frac + 0.5  # pixel centres are at index + 0.5
            out[i, k] = edge
    return out


@dataclass
class LineMaps:
    """The blue lines of an answer at the input's size (see :func:`line_maps`)."""

    mask: np.ndarray  # uint8 0/1: line pixels (above half their local peak)
    strength: np.ndarray  # uint8: how much bluer than its surroundings each pixel is
    line_width: int
    unknown: np.ndarray | None  # uint8 0/1: the input was pure blue there, a line would not show
    blueness: np.ndarray  # int16 B - max(R, G) of the answer itself


def line_maps(answer: Any, size: tuple[int, int], image: np.ndarray | None = None, widen: int = 0) -> LineMaps:
    """The blue lines drawn in ``answer`` at ``size`` (looked for ``widen`` px wider than drawn).

    The strength is how much bluer than its surroundings a pixel is (a top-hat of B - max(R, G),
    or of the blue added to ``image``), so broad blue regions are not lines.
    """
    return _lines_at(_BlueLevel.of(answer, size, image), widen)


@dataclass
class _BlueLevel:
    """What every line width shares: the answer at the input's size and how blue (or blue-added) it is."""

    ans: np.ndarray
    blue: np.ndarray  # int16 B - max(R, G)
    level: np.ndarray  # int16: blueness, or the blue added to the input
    unknown: np.ndarray | None
    lw: int  # the drawn line width
    with_image: bool

    @classmethod
    def of(cls, answer: Any, size: tuple[int, int], image: np.ndarray | None, lw: int | None = None) -> _BlueLevel:
        width, height = check_size(size)
        lw = line_width(width, height) if lw is None else int(lw)
        ans = resize_to(as_rgb(answer), (width, height))
        blue = _blueness(ans)
        if image is None:
            return cls(ans, blue, blue, None, lw, False)
        level, unknown = _blue_added(ans, resize_to(as_rgb(image), (width, height)), blue >= _BLUE_MIN)
        # blur and JPEG mix a blue backdrop into the edges of the objects on it, which reads as
        # 1-2 px of "added blue" along their outlines: an opening removes what is thinner than a line
        level = cv2.morphologyEx(level, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
        return cls(ans, blue, level, unknown, lw, True)


def _lines_at(b: _BlueLevel, widen: int) -> LineMaps:
    """The line maps of ``b`` for lines ``widen`` px wider than drawn."""
    lw = b.lw + widen
    # signed top-hat with a square wider than a line: how much bluer than its surroundings a pixel
    # is. Broad blue regions (sky, a blue car) vanish; a line over red or yellow, whose blueness is
    # squeezed by the strongly negative background, keeps a high contrast
    # (with the input to compare with, broad blue is rarer and a wider square keeps the slab that
    # several overlapping boxes' parallel lines make)
    t = (6 if b.with_image else 2) * lw + 3
    contrast = b.level - cv2.morphologyEx(b.level, cv2.MORPH_OPEN, np.ones((t, t), np.uint8))
    strength = np.clip(contrast, 0, 255, out=contrast).astype(np.uint8)
    # the pixel itself must be blue (a grey line on yellow has contrast too); faint line pixels
    # (blurred edges) count when they touch a clearly blue core (hysteresis)
    weak = ((strength >= _WEAK) & (b.blue >= _BLUE_MIN) & (b.ans[:, :, 2] >= _B_MIN)).view(np.uint8)
    n, labels = cv2.connectedComponents(weak, connectivity=8)
    if n > 1:
        has_core = np.bincount(labels[strength >= _STRONG], minlength=n) > 0
        has_core[0] = False
        mask = has_core[labels].astype(np.uint8)
    else:
        mask = weak
    # keep what is above half the local peak: a line then measures its drawn width whatever the
    # blur, and two touching boxes' lines measure twice that
    peak = cv2.dilate(strength, np.ones((2 * lw + 1, 2 * lw + 1), np.uint8))
    mask &= (strength >= (peak >> 1)).view(np.uint8)
    return LineMaps(mask, strength, lw, b.unknown, b.blue)


def line_runs(mask: np.ndarray, lw: int) -> tuple[np.ndarray, np.ndarray]:
    """Horizontal and vertical straight runs of the line mask at least three line widths long."""
    long_run = 3 * lw
    hl = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((1, long_run), np.uint8))
    vl = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((long_run, 1), np.uint8))
    return hl, vl


def candidates(mask: np.ndarray, hl: np.ndarray, vl: np.ndarray, lw: int, small: bool = True) -> np.ndarray:
    """Candidate boxes (K, 4) int xyxy from the corners of the line runs, the mask's components and,
    if ``small``, its small holes and solid patches (only at the drawn width without the input:
    blue texture of a photo has holes too)."""
    corners = _corners(hl, vl, lw)
    min_side = 2 * lw + 2
    tr, bl = corners["tr"], corners["bl"]
    cands = [_pair(corners["tl"], corners["br"], min_side)]
    # top-right with bottom-left gives the boxes whose other two corners were lost
    flipped = np.zeros((0, 4), np.int64)
    if len(tr) and len(bl):
        x0 = np.repeat(bl[:, 0], len(tr))
        y1 = np.repeat(bl[:, 1], len(tr))
        x1 = np.tile(tr[:, 0], len(bl))
        y0 = np.tile(tr[:, 1], len(bl))
        keep = (x1 - x0 >= min_side) & (y1 - y0 >= min_side)
        flipped = np.stack([x0[keep], y0[keep], x1[keep], y1[keep]], 1)
    cands.append(flipped)
    # every component's outline is a candidate too: small boxes (sides too short for the line
    # masks) and isolated boxes whose corners were damaged
    st = _boxes_of_components(mask)
    if len(st):
        st = st[(st[:, 2] >= lw + 1) & (st[:, 3] >= lw + 1)]
        cands.append(np.stack([st[:, 0], st[:, 1], st[:, 0] + st[:, 2], st[:, 1] + st[:, 3]], 1))
    if small:  # small boxes merged with their neighbours: around each small hole, each solid patch
        cands += [hole_boxes(mask, lw, 3 * lw), patch_boxes(mask, lw)]
    cand = np.concatenate(cands, 0)
    return np.unique(cand, axis=0) if len(cand) else cand.reshape(0, 4)


def _scored_candidates(level: _BlueLevel, min_score: float, widen: int) -> tuple[np.ndarray, np.ndarray, LineMaps]:
    """Candidate boxes scoring at least ``min_score`` with lines ``widen`` px wider than drawn."""
    lines = _lines_at(level, widen)
    mask, lw = lines.mask, lines.line_width
    hl, vl = line_runs(mask, lw)
    cand = candidates(mask, hl, vl, lw, small=level.with_image or widen == 0)
    if len(cand) == 0:
        return cand.reshape(0, 4), np.zeros(0), lines
    band = max(1, int(round(0.6 * lw)))
    maps = _Maps(mask, hl, vl, band, lines.unknown)
    cand = _snap(cand, maps, reach=max(2, lw // 2 + 1))
    cand = cand[(cand[:, 2] - cand[:, 0] >= 2) & (cand[:, 3] - cand[:, 1] >= 2)]
    cand = np.unique(cand, axis=0)
    scores = _score(cand, maps, lw, band)
    # a frame too small for its sides to be lines is a (nearly) filled blue patch: a tiny box, or
    # (without the input to compare with) as likely a small blue thing of the photo; rank those
    # below real frames
    small = _is_small(cand, lw)
    scores = np.where(small, scores * (0.8 if level.with_image else 0.5), scores)
    if not level.with_image:
        # and it must be the saturated blue we draw: blue things in photos rarely are
        for i in np.flatnonzero(small & (scores >= min_score)):
            x0, y0, x1, y1 = cand[i]
            if lines.blueness[y0:y1, x0:x1].max(initial=0) < _SMALL_BLUE_MIN:
                scores[i] = 0.0
    ok = scores >= min_score
    return cand[ok], scores[ok], lines


def decode(answer: Any, size: tuple[int, int], image: np.ndarray | None = None,
           min_score: float = DEFAULT_MIN_SCORE, line_width: int | None = None) -> np.ndarray:
    """Boxes drawn in ``answer`` as an (N, 5) array ``x0, y0, x1, y1, score``, best first.

    ``size`` is the input's ``(width, height)``; coordinates are in input pixels whatever the size
    of the answer. Passing the input ``image`` lets blue that was already in the photo be ignored.
    ``line_width``: the stroke the boxes were drawn with, in input pixels (default: the released 4 px).
    Lines are looked for at the drawn width, and two pixels wider where those leave lines
    unexplained (blur, JPEG and a resize spread a thin stroke); the greedy explanation picks from both.
    """
    width, height = check_size(size)
    level = _BlueLevel.of(answer, (width, height), image, line_width)
    found = [_scored_candidates(level, min_score, _WIDENINGS[0])]
    cand, scores = found[0][:2]
    keep, final, explained = _select(cand, scores, level.lw, (height, width), min_score)
    # the wider pass costs as much as the first: only where the first left straight lines unexplained
    hl, vl = line_runs(found[0][2].mask & (explained ^ 1), level.lw)
    if cv2.countNonZero(hl | vl) > _UNEXPLAINED * level.lw ** 2:
        found += [_scored_candidates(level, min_score, widen) for widen in _WIDENINGS[1:]]
        cand, scores = (np.concatenate([f[k] for f in found]) for k in (0, 1))
        keep, final, _ = _select(cand, scores, found[-1][2].line_width, (height, width), min_score)
    source = np.concatenate([np.full(len(f[0]), k) for k, f in enumerate(found)])
    if len(keep) == 0:
        return np.zeros((0, 5), np.float64)
    boxes = np.zeros((len(keep), 4), np.float64)
    for k, (_c, _s, lines) in enumerate(found):
        mine = source[keep] == k
        if mine.any():
            boxes[mine] = _refine(cand[keep][mine], lines.strength, lines.line_width)
    # PIL truncates the corners and includes the last pixel: the frame's outer edges lie at
    # floor(x0) and floor(x1) + 1, so the corners themselves are half a pixel inside, on average
    boxes[:, :2] += _CORNER_SHIFT[0]
    boxes[:, 2:] += _CORNER_SHIFT[1]
    boxes[:, [0, 2]] = np.clip(boxes[:, [0, 2]], 0, width)
    boxes[:, [1, 3]] = np.clip(boxes[:, [1, 3]], 0, height)
    return np.concatenate([boxes, final[:, None]], 1)
