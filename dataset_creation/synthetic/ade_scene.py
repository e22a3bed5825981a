"""ADE20K-like scenes for the synthetic data: stuff regions plus things, every pixel labelled."""

from __future__ import annotations

import cv2
import numpy as np

from dataset_creation.synthetic.scene import (
    ADE_LABEL,
    Placed,
    Scene,
    _finish_scene,
    _random_place,
    _smooth_field,
    clutter,
    place,
    prune,
)
from dataset_creation.synthetic.shapes import appearance

# ---- ADE20K scenes (stuff regions plus things, every pixel labelled) ---------------------------------------

ADE_OUTDOOR_THINGS = ("person", "car", "tree")
ADE_INDOOR_WALL = ("painting", "windowpane", "door")
ADE_INDOOR_FLOOR = ("bed", "table", "chair", "lamp", "plant", "person")


def _fill(canvas: np.ndarray, labels: np.ndarray, mask: np.ndarray, color: np.ndarray, label: int) -> None:
    canvas[mask] = color[mask] if color.ndim == 3 else color
    labels[mask] = label


def _stuff(rng: np.random.Generator, name: str, width: int, height: int) -> np.ndarray:
    """A full-frame float32 texture for an ADE20K stuff class; each class has its own look."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    short = min(width, height)
    fld = _smooth_field(rng, width, height, 6, 1)
    if name == "sky":
        t = (ys / height)[..., None]
        return np.array([60, 120, 225], np.float32) * (1 - t) + np.array([175, 205, 245], np.float32) * t
    if name == "wall":
        return np.array([205, 192, 165], np.float32) * rng.uniform(0.9, 1.05) + 6 * fld
    if name == "ceiling":
        return np.full((height, width, 3), 228, np.float32) * rng.uniform(0.92, 1.02)
    if name == "floor":
        plank = (np.floor(ys / (0.035 * short)) % 2)[..., None]
        return (
            np.array([150, 100, 60], np.float32) * (1 - plank) + np.array([128, 84, 50], np.float32) * plank
        )
    if name == "grass":
        noise = rng.standard_normal((height, width, 1)).astype(np.float32)
        return np.array([70, 150, 50], np.float32) * (1 + 0.12 * noise + 0.08 * fld)
    if name == "road":
        return np.array([92, 92, 98], np.float32) + 5 * fld
    if name == "building":
        win = ((xs % (0.08 * short)) > 0.05 * short) & ((ys % (0.1 * short)) > 0.06 * short)
        return np.where(
            win[..., None], np.array([60, 70, 85], np.float32), np.array([170, 85, 60], np.float32)
        )
    if name == "mountain":
        return np.array([120, 108, 98], np.float32) + 10 * fld
    if name == "water":
        wave = (np.sin(ys / (0.02 * short) + 0.3 * np.sin(xs / (0.05 * short))) > 0.6)[..., None]
        return np.where(wave, np.array([120, 180, 220], np.float32), np.array([30, 90, 170], np.float32))
    raise ValueError(f"no stuff texture for {name!r}")


def compose_ade(rng: np.random.Generator, width: int, height: int) -> tuple[Scene, str]:
    """An outdoor or indoor scene where every pixel carries its ADE20K label (0 = unlabelled clutter).

    Returns the scene (``scene.labels`` uint8) and its scene category for sceneCategories.txt.
    """
    canvas = np.zeros((height, width, 3), np.float32)
    labels = np.zeros((height, width), np.uint8)
    ys, xs = np.mgrid[0:height, 0:width]
    short = min(width, height)
    objs: list[Placed] = []
    if rng.random() < 0.5:  # outdoor
        horizon = rng.uniform(0.38, 0.6) * height
        _fill(canvas, labels, ys < horizon, _stuff(rng, "sky", width, height), ADE_LABEL["sky"])
        mountains = rng.random() < 0.5
        buildings = not mountains or rng.random() < 0.3
        if mountains:
            n = int(rng.integers(2, 5))
            px = np.linspace(-0.1, 1.1, 2 * n + 1) * width
            py = np.where(
                np.arange(2 * n + 1) % 2 == 1,
                horizon - rng.uniform(0.12, 0.3, 2 * n + 1) * height,
                horizon + 2,
            )
            pts = np.concatenate(
                [np.stack([px, py], 1), [[1.1 * width, horizon + 2], [-0.1 * width, horizon + 2]]]
            )
            m = np.zeros((height, width), np.uint8)
            cv2.fillPoly(m, [np.round(pts).astype(np.int32)], 1)
            _fill(
                canvas, labels, m.astype(bool), _stuff(rng, "mountain", width, height), ADE_LABEL["mountain"]
            )
        if buildings:
            tex = _stuff(rng, "building", width, height)
            for _ in range(int(rng.integers(1, 4))):
                bx0 = rng.uniform(-0.1, 0.8) * width
                bw, bh = rng.uniform(0.12, 0.35) * width, rng.uniform(0.15, 0.4) * height
                m = (xs >= bx0) & (xs < bx0 + bw) & (ys >= horizon - bh) & (ys < horizon + 1)
                _fill(canvas, labels, m, tex, ADE_LABEL["building"])
        ground = ys >= horizon
        _fill(canvas, labels, ground, _stuff(rng, "grass", width, height), ADE_LABEL["grass"])
        road = rng.random() < 0.6
        if road:
            vx = rng.uniform(0.3, 0.7) * width
            pts = np.array([[vx - 0.02 * width, horizon], [vx + 0.02 * width, horizon],
                            [rng.uniform(0.75, 1.2) * width, height], [rng.uniform(-0.2, 0.25) * width, height]])  # fmt: skip
            m = np.zeros((height, width), np.uint8)
            cv2.fillPoly(m, [np.round(pts).astype(np.int32)], 1)
            _fill(
                canvas, labels, m.astype(bool) & ground, _stuff(rng, "road", width, height), ADE_LABEL["road"]
            )
        elif rng.random() < 0.5:
            wy = horizon + rng.uniform(0.05, 0.2) * height
            m = ground & (ys < wy + rng.uniform(0.08, 0.2) * height) & (ys >= wy)
            _fill(canvas, labels, m, _stuff(rng, "water", width, height), ADE_LABEL["water"])
        category = "street" if road else ("mountain" if mountains else "building_facade")
        for _ in range(int(rng.integers(1, 6))):
            name = str(rng.choice(ADE_OUTDOOR_THINGS, p=[0.4, 0.35, 0.25]))
            y = rng.uniform(horizon + 0.05 * height, height)
            depth_scale = 0.3 + 0.7 * (y - horizon) / (height - horizon)  # nearer (lower) things are bigger
            scale = depth_scale * rng.uniform(0.1, 0.2) * short * (1.6 if name == "tree" else 1.0)
            y0 = appearance(name).extent[3]
            p = _random_place(
                rng, name, width, height, scale, rng.uniform(0.05, 0.95) * width, y - y0 * scale
            )
            if p is not None:
                objs.append(p)
    else:  # indoor
        ceiling = rng.uniform(0.06, 0.18) * height
        floor_y = rng.uniform(0.58, 0.76) * height
        _fill(canvas, labels, ys < ceiling, _stuff(rng, "ceiling", width, height), ADE_LABEL["ceiling"])
        _fill(
            canvas,
            labels,
            (ys >= ceiling) & (ys < floor_y),
            _stuff(rng, "wall", width, height),
            ADE_LABEL["wall"],
        )
        _fill(canvas, labels, ys >= floor_y, _stuff(rng, "floor", width, height), ADE_LABEL["floor"])
        for _ in range(int(rng.integers(0, 3))):
            name = str(rng.choice(ADE_INDOOR_WALL))
            if name == "door":
                scale = 0.5 * (floor_y - ceiling) * rng.uniform(0.8, 0.98)
                cy = floor_y - scale
            else:
                scale = rng.uniform(0.08, 0.16) * short
                cy = rng.uniform(ceiling + scale, max(ceiling + scale + 1, floor_y - 1.2 * scale))
            p = place(name, appearance(name), rng.uniform(0.08, 0.92) * width, cy, scale, width, height,
                      stretch=rng.uniform(0.85, 1.15), brightness=rng.uniform(0.92, 1.06))  # fmt: skip
            if p is not None:
                objs.append(p)
        has_bed = False
        for _ in range(int(rng.integers(1, 5))):
            name = str(rng.choice(ADE_INDOOR_FLOOR))
            has_bed |= name == "bed"
            base = rng.uniform(floor_y + 0.02 * height, height * 1.02)
            scale = (
                rng.uniform(0.1, 0.2) * short * (0.6 + 0.4 * (base - floor_y) / max(1.0, height - floor_y))
            )
            p = _random_place(rng, name, width, height, scale, rng.uniform(0.05, 0.95) * width,
                              base - appearance(name).extent[3] * scale)  # fmt: skip
            if p is not None:
                objs.append(p)
        category = "bedroom" if has_bed else "living_room"
    objs = objs + clutter(rng, width, height, int(rng.integers(0, 3)))
    objs = prune(objs, width, height, min_visible=0.25)
    return _finish_scene(rng, canvas, objs, labels), category
