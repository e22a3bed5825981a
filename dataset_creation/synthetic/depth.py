"""Synthetic RGB-D frames: ray-cast rooms (floor, walls, ceiling, boxes, balls) with exact depth, plus sensor holes.

Depth is the camera-frame Z in metres (what NYUv2 and SUN RGB-D store), computed analytically per pixel
from the same geometry the colours are shaded from. The RGB correlates with depth the way photos do:
perspective texture (floor tiles shrink with distance), lighting falloff and a little haze.
``sensor_holes`` then removes depth where a Kinect-like sensor has none: the unregistered frame border,
shadows beside near objects, glass (windows) and a few dark or shiny patches.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

MIN_DEPTH_M, MAX_DEPTH_M = 0.5, 10.0


@dataclass(frozen=True)
class Camera:
    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float

    @classmethod
    def scaled(
        cls, width: int, height: int, intrinsics: tuple[float, float, float, float], ref: tuple[int, int]
    ) -> Camera:
        """Intrinsics given at ``ref`` (width, height) rescaled to ``width`` x ``height``."""
        sx, sy = width / ref[0], height / ref[1]
        fx, fy, cx, cy = intrinsics
        return cls(width, height, fx * sx, fy * sy, cx * sx, cy * sy)


@dataclass
class Room:
    """World frame: camera at the origin, y down, z forward; floor at y = cam_height, back wall at z = depth."""

    cam_height: float
    room_height: float
    left: float
    right: float
    depth: float
    floor_color: tuple[np.ndarray, np.ndarray]
    wall_color: np.ndarray
    back_color: np.ndarray
    ceiling_color: np.ndarray
    tile: float
    window: tuple[float, float, float, float] | None  # x0, x1, y0, y1 on the back wall (glass: no depth)
    picture: tuple[float, float, float, float, np.ndarray] | None
    boxes: list[tuple[float, float, float, float, float, np.ndarray]]  # x0, x1, z0, z1, height, colour
    balls: list[tuple[float, float, float, np.ndarray]]  # x, z, radius, colour


def _color(rng: np.random.Generator, lo: float = 60, hi: float = 230) -> np.ndarray:
    return rng.uniform(lo, hi, 3).astype(np.float32)


def random_room(rng: np.random.Generator) -> Room:
    """A room 4-9.5 m deep with a few boxes and balls standing on the floor (0.9-6 m away)."""
    depth = rng.uniform(4.0, 9.5)
    half = rng.uniform(1.6, 3.6)
    offset = rng.uniform(-0.8, 0.8)
    cam_h = rng.uniform(1.0, 1.6)
    room_h = rng.uniform(2.5, 3.1)
    floor_a = _color(rng, 90, 200)
    window = None
    if rng.random() < 0.5:
        wx0 = rng.uniform(offset - half + 0.3, offset + half - 1.5)
        window = (
            wx0,
            wx0 + rng.uniform(0.8, 1.4),
            cam_h - room_h + rng.uniform(0.3, 0.6),
            cam_h - rng.uniform(1.0, 1.4),
        )
    picture = None
    if rng.random() < 0.5:
        px0 = rng.uniform(offset - half + 0.2, offset + half - 1.2)
        picture = (
            px0,
            px0 + rng.uniform(0.5, 1.0),
            cam_h - rng.uniform(2.0, 2.2),
            cam_h - rng.uniform(1.2, 1.5),
            _color(rng),
        )
    boxes = []
    for _ in range(int(rng.integers(1, 5))):
        w, d = rng.uniform(0.3, 1.2), rng.uniform(0.3, 1.0)
        x0 = rng.uniform(offset - half, offset + half - w)
        z0 = rng.uniform(0.6, min(6.0, depth - d - 0.1))
        boxes.append((x0, x0 + w, z0, z0 + d, rng.uniform(0.3, 1.4), _color(rng, 40, 240)))
    balls = []
    for _ in range(int(rng.integers(0, 3))):
        r = rng.uniform(0.12, 0.45)
        balls.append(
            (
                rng.uniform(offset - half + r, offset + half - r),
                rng.uniform(1.0, min(6.0, depth - r)),
                r,
                _color(rng, 40, 240),
            )
        )
    return Room(
        cam_h, room_h, offset - half, offset + half, depth,
        (floor_a, floor_a * rng.uniform(0.7, 0.85)), _color(rng, 140, 230), _color(rng, 120, 230), _color(rng, 200, 245),
        rng.uniform(0.3, 0.7), window, picture, boxes, balls,
    )  # fmt: skip


def _rotation(yaw: float, pitch: float) -> np.ndarray:
    cy, sy, cp, sp = np.cos(yaw), np.sin(yaw), np.cos(pitch), np.sin(pitch)
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rx = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
    return ry @ rx


def _window(cam: Camera, rot: np.ndarray, corners: np.ndarray) -> tuple[slice, slice] | None:
    """Image rows/columns that world points ``corners`` (N, 3) can cover; the whole frame if one is behind."""
    pc = corners @ rot  # camera coordinates (rot maps camera to world)
    if (pc[:, 2] <= 0.05).any():
        return slice(0, cam.height), slice(0, cam.width)
    u = cam.fx * pc[:, 0] / pc[:, 2] + cam.cx
    v = cam.fy * pc[:, 1] / pc[:, 2] + cam.cy
    c0, c1 = max(0, int(np.floor(u.min())) - 1), min(cam.width, int(np.ceil(u.max())) + 2)
    r0, r1 = max(0, int(np.floor(v.min())) - 1), min(cam.height, int(np.ceil(v.max())) + 2)
    if c0 >= c1 or r0 >= r1:
        return None
    return slice(r0, r1), slice(c0, c1)


def _box_corners(x0: float, x1: float, y0: float, y1: float, z0: float, z1: float) -> np.ndarray:
    return np.array([[x, y, z] for x in (x0, x1) for y in (y0, y1) for z in (z0, z1)], np.float64)


def render_room(
    rng: np.random.Generator, cam: Camera, room: Room, yaw: float = 0.0, pitch: float = 0.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ray-cast ``room``: (rgb uint8 (H, W, 3), depth float32 metres (H, W), glass bool (H, W))."""
    h, w = cam.height, cam.width
    rot = _rotation(yaw, pitch)
    xs = ((np.arange(w) - cam.cx) / cam.fx).astype(np.float32)[None, :]
    ys = ((np.arange(h) - cam.cy) / cam.fy).astype(np.float32)[:, None]
    # World direction of each pixel's ray; its camera-frame z is 1, so the hit distance t is the depth Z.
    dx, dy, dz = (np.float32(r[0]) * xs + np.float32(r[1]) * ys + np.float32(r[2]) for r in rot)
    norm = np.sqrt(dx * dx + dy * dy + dz * dz)
    t = np.full((h, w), np.inf, np.float32)
    surface = np.zeros((h, w), np.int8)
    facing = np.zeros((h, w), np.float32)  # cos(angle between the surface normal and the ray) * |ray|
    planes = ((dy, room.cam_height, 1.0), (dy, room.cam_height - room.room_height, -1.0),
              (dx, room.left, -1.0), (dx, room.right, 1.0), (dz, room.depth, 1.0))  # fmt: skip
    with np.errstate(divide="ignore", invalid="ignore"):
        for k, (comp, offset, sign) in enumerate(planes):
            tc = offset / comp
            hit = (comp * sign > 1e-6) & (tc < t)
            t[hit], surface[hit], facing[hit] = tc[hit], k, (sign * comp)[hit]
    px, py, pz = dx * t, dy * t, dz * t
    color = np.empty((h, w, 3), np.float32)
    floor = surface == 0
    tiles = ((np.floor(px[floor] / room.tile) + np.floor(pz[floor] / room.tile)) % 2 == 1)[:, None]
    color[floor] = np.where(tiles, room.floor_color[1], room.floor_color[0])
    color[surface == 1] = room.ceiling_color
    side = (surface == 2) | (surface == 3)
    stripes = (((pz[side] + px[side]) / 0.25) % 2 < 1)[:, None]
    color[side] = room.wall_color * np.where(stripes, np.float32(1.0), np.float32(0.93))
    back = surface == 4
    color[back] = room.back_color
    glass = np.zeros((h, w), bool)
    if room.picture is not None:
        x0, x1, y0, y1, c = room.picture
        color[back & (px >= x0) & (px <= x1) & (py >= y0) & (py <= y1)] = c
    if room.window is not None:
        x0, x1, y0, y1 = room.window
        sel = back & (px >= x0) & (px <= x1) & (py >= y0) & (py <= y1)
        frac = ((py[sel] - y0) / (y1 - y0))[:, None]
        color[sel] = np.array([70, 130, 230], np.float32) + np.array([80, 60, 15], np.float32) * frac
        glass |= sel
    with np.errstate(divide="ignore", invalid="ignore"):
        for x0, x1, z0, z1, height, c in room.boxes:  # slab test, only where the box can project
            y0, y1 = room.cam_height - height, room.cam_height
            win = _window(cam, rot, _box_corners(x0, x1, y0, y1, z0, z1))
            if win is None:
                continue
            wdx, wdy, wdz, wt = dx[win], dy[win], dz[win], t[win]
            near, far, axis_comp = None, None, None
            for comp, lo, hi in ((wdx, x0, x1), (wdy, y0, y1), (wdz, z0, z1)):
                safe = np.where(np.abs(comp) < 1e-9, np.float32(1e-9), comp)
                ta, tb = lo / safe, hi / safe
                tmin, tmax = np.minimum(ta, tb), np.maximum(ta, tb)
                if near is None:
                    near, far, axis_comp = tmin, tmax, np.abs(comp)
                else:
                    later = tmin > near
                    axis_comp = np.where(later, np.abs(comp), axis_comp)
                    near, far = np.maximum(near, tmin), np.minimum(far, tmax)
            hit = (near < far) & (near > 0) & (near < wt)
            t[win] = np.where(hit, near, wt)
            facing[win] = np.where(hit, axis_comp, facing[win])
            color[win] = np.where(hit[..., None], c, color[win])
            glass[win] &= ~hit
        for bx, bz, r, c in room.balls:
            center = np.array([bx, room.cam_height - r, bz], np.float32)
            win = _window(
                cam, rot, _box_corners(bx - r, bx + r, center[1] - r, center[1] + r, bz - r, bz + r)
            )
            if win is None:
                continue
            wdx, wdy, wdz, wt = dx[win], dy[win], dz[win], t[win]
            a = wdx * wdx + wdy * wdy + wdz * wdz
            b = wdx * center[0] + wdy * center[1] + wdz * center[2]
            disc = b * b - a * (float(center @ center) - r * r)
            tb = (b - np.sqrt(np.maximum(disc, 0))) / a
            hit = (disc > 0) & (tb > 0) & (tb < wt)
            # cos to the sphere normal (p - center) / r, times |ray|: (center . d - t |d|^2) / r with a sign flip
            cos = (b - tb * a) / r
            t[win] = np.where(hit, tb, wt)
            facing[win] = np.where(hit, cos, facing[win])
            color[win] = np.where(hit[..., None], c, color[win])
            glass[win] &= ~hit
    # Lambert shading from a lamp at the camera, light falloff and haze: brightness tracks distance.
    dist = t * norm
    lam = np.clip(facing / norm, 0, 1)
    shade = (0.35 + 0.65 * lam) / (1 + (dist / 7.0) ** 2)
    haze = np.exp(-dist / 18.0)[..., None]
    rgb = color * (0.45 + 0.75 * shade)[..., None] * haze + np.float32(200) * (1 - haze)
    rgb += rng.normal(0.0, 2.0, rgb.shape).astype(np.float32)
    depth = np.clip(t, MIN_DEPTH_M, MAX_DEPTH_M).astype(np.float32)
    return np.clip(rgb, 0, 255).round().astype(np.uint8), depth, glass


def sensor_holes(rng: np.random.Generator, depth: np.ndarray, glass: np.ndarray) -> np.ndarray:
    """Where a Kinect-like sensor has no reading: a bool (H, W) valid mask (False = stored as 0)."""
    h, w = depth.shape
    valid = ~glass
    sx, sy = w / 640.0, h / 480.0
    # Unregistered border (what the Eigen crop cuts away), ragged row by row.
    top = int(rng.integers(6, 40) * sy)
    left = int(rng.integers(8, 40) * sx)
    right = int(rng.integers(0, 26) * sx)
    bottom = int(rng.integers(0, 12) * sy)
    rows = np.arange(h)[:, None]
    cols = np.arange(w)[None, :]
    jitter = rng.integers(0, max(2, int(6 * sx)), size=(h, 1))
    valid &= (rows >= top) & (rows < h - bottom) & (cols >= left + jitter) & (cols < w - right - jitter)
    # Shadows: background pixels just left of a depth edge to a nearer surface (the projector-camera baseline).
    k = max(3, int(round(8 * sx)))
    edge = np.zeros((h, w), np.uint8)
    edge[:, :-1] = depth[:, :-1] - depth[:, 1:] > 0.08 * depth[:, :-1]
    valid &= cv2.dilate(edge, np.ones((1, k), np.uint8), anchor=(0, 0)) == 0
    # Dark or shiny patches.
    for _ in range(int(rng.integers(1, 5))):
        m = np.zeros((h, w), np.uint8)
        center = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        axes = (int(rng.integers(4, 30) * sx) + 1, int(rng.integers(4, 24) * sy) + 1)
        cv2.ellipse(m, center, axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
        valid &= m == 0
    valid &= rng.random((h, w)) > 0.002  # speckle dropouts
    return valid


def depth_to_mm(depth: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """uint16 millimetres, 0 where invalid (NYUv2 / BTS ``sync_depth_*.png``)."""
    mm = np.clip(np.round(depth * 1000.0), 1, 65535).astype(np.uint16)
    mm[~valid] = 0
    return mm


def sunrgbd_encode(mm: np.ndarray) -> np.ndarray:
    """SUN RGB-D depth PNG values: millimetres rotated left by 3 bits within 16 bits ("1/8 mm" below 8.192 m)."""
    mm = mm.astype(np.uint16)
    return ((mm << np.uint16(3)) | (mm >> np.uint16(13))).astype(np.uint16)


def sunrgbd_decode(stored: np.ndarray) -> np.ndarray:
    """Millimetres back from SUN RGB-D PNG values (what SUNRGBDtoolbox's read3dPoints.m and the toolbox do)."""
    v = stored.astype(np.uint16)
    return ((v >> np.uint16(3)) | (v << np.uint16(13))).astype(np.uint16)
