"""The look of every class in the synthetic shapes world: part polygons, colours and a texture per class.

Each class has one consistent, distinct appearance (a shape made of polygon parts plus colours and a
texture), so that a small model trained for minutes can learn to detect, segment and classify it.
The same class name looks the same in every dataset (a COCO ``cat`` is an Oxford-IIIT Pets cat).
Shapes are defined in an object frame where y runs from -1 (top) to 1 (bottom) and x spans the
shape's natural width; the renderer scales, stretches slightly and rotates them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

RGB = tuple[int, int, int]

# Part roles: which colour a part is painted with.
MAIN, SECOND, ACCENT = 0, 1, 2


def circle(cx: float, cy: float, r: float, n: int = 40) -> np.ndarray:
    return ellipse(cx, cy, r, r, n)


def ellipse(cx: float, cy: float, rx: float, ry: float, n: int = 40) -> np.ndarray:
    a = np.linspace(0.0, 2 * np.pi, n, endpoint=False)
    return np.stack([cx + rx * np.cos(a), cy + ry * np.sin(a)], axis=1)


def rect(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float64)


def ngon(n: int, cx: float = 0.0, cy: float = 0.0, r: float = 1.0, rot: float = 0.0) -> np.ndarray:
    a = rot + np.arange(n) * 2 * np.pi / n
    return np.stack([cx + r * np.cos(a), cy + r * np.sin(a)], axis=1)


def star(cx: float, cy: float, r_out: float, r_in: float, n: int = 5) -> np.ndarray:
    a = -np.pi / 2 + np.arange(2 * n) * np.pi / n
    r = np.where(np.arange(2 * n) % 2 == 0, r_out, r_in)
    return np.stack([cx + r * np.cos(a), cy + r * np.sin(a)], axis=1)


def poly(*points: tuple[float, float]) -> np.ndarray:
    return np.array(points, dtype=np.float64)


def mirror_y(p: np.ndarray) -> np.ndarray:
    return p * np.array([1.0, -1.0])


@dataclass(frozen=True)
class Part:
    points: np.ndarray  # (N, 2) polygon in the object frame
    role: int = MAIN  # MAIN parts carry the texture, SECOND / ACCENT are solid
    tag: str = ""  # e.g. "head" for the Pets head box


def parts(*items: tuple) -> tuple[Part, ...]:
    return tuple(Part(*item) for item in items)


# ---- shapes -------------------------------------------------------------------------------------------------


def _person() -> tuple[Part, ...]:
    return parts((ellipse(0, 0.2, 0.33, 0.78), MAIN), (circle(0, -0.72, 0.25), SECOND, "head"))


def _car() -> tuple[Part, ...]:
    return parts(
        (rect(-1.7, -0.1, 1.7, 0.55), MAIN),
        (poly((-0.9, -0.1), (-0.55, -0.75), (0.7, -0.75), (1.05, -0.1)), MAIN),
        (poly((-0.74, -0.18), (-0.5, -0.62), (0.6, -0.62), (0.86, -0.18)), SECOND),
        (circle(-1.05, 0.55, 0.38), ACCENT),
        (circle(1.05, 0.55, 0.38), ACCENT),
    )


def _stop_sign() -> tuple[Part, ...]:
    return parts((ngon(8, r=1.0, rot=np.pi / 8), MAIN), (rect(-0.62, -0.16, 0.62, 0.16), SECOND))


def _bird() -> tuple[Part, ...]:
    return parts(
        (ellipse(0, 0.1, 0.85, 0.55), MAIN),
        (poly((-0.7, 0.0), (-1.45, -0.4), (-1.35, 0.4)), MAIN),
        (circle(0.72, -0.42, 0.34), MAIN),
        (poly((1.0, -0.52), (1.45, -0.38), (1.0, -0.26)), SECOND),
        (ellipse(-0.05, 0.08, 0.45, 0.24), ACCENT),
    )


def _cat() -> tuple[Part, ...]:
    return parts(
        (ellipse(0.25, 0.35, 1.0, 0.6), MAIN),
        (poly((1.1, 0.15), (1.55, -0.5), (1.68, -0.42), (1.25, 0.32)), SECOND),
        (circle(-0.7, -0.25, 0.48), MAIN, "head"),
        (poly((-1.14, -0.42), (-1.06, -1.0), (-0.76, -0.66)), SECOND, "head"),
        (poly((-0.64, -0.68), (-0.34, -1.0), (-0.26, -0.42)), SECOND, "head"),
        (circle(-0.88, -0.32, 0.08), ACCENT, "head"),
        (circle(-0.52, -0.32, 0.08), ACCENT, "head"),
    )


def _dog() -> tuple[Part, ...]:
    return parts(
        (ellipse(0.3, 0.3, 1.05, 0.52), MAIN),
        (rect(-0.5, 0.5, -0.28, 1.0), MAIN),
        (rect(0.85, 0.5, 1.07, 1.0), MAIN),
        (poly((1.25, 0.2), (1.62, -0.25), (1.58, -0.36), (1.18, 0.02)), MAIN),
        (ellipse(-0.72, -0.32, 0.45, 0.42), MAIN, "head"),
        (ellipse(-1.12, -0.16, 0.3, 0.2), MAIN, "head"),
        (ellipse(-1.08, -0.26, 0.14, 0.36), SECOND, "head"),
        (ellipse(-0.36, -0.26, 0.14, 0.36), SECOND, "head"),
        (circle(-1.38, -0.2, 0.08), ACCENT, "head"),
    )


def _ball() -> tuple[Part, ...]:
    return parts((circle(0, 0, 1.0, 48), MAIN))


def _bottle() -> tuple[Part, ...]:
    return parts(
        (rect(-0.38, -0.3, 0.38, 1.0), MAIN),
        (poly((-0.38, -0.3), (-0.15, -0.62), (0.15, -0.62), (0.38, -0.3)), MAIN),
        (rect(-0.14, -0.92, 0.14, -0.58), MAIN),
        (rect(-0.17, -1.0, 0.17, -0.86), SECOND),
        (rect(-0.38, 0.1, 0.38, 0.5), SECOND),
    )


def _cup() -> tuple[Part, ...]:
    return parts(
        (poly((-0.75, -0.8), (0.75, -0.8), (0.55, 0.85), (-0.55, 0.85)), MAIN),
        (ellipse(0.8, -0.05, 0.28, 0.4), SECOND),
        (rect(-0.75, -0.8, 0.75, -0.6), SECOND),
    )


def _chair() -> tuple[Part, ...]:
    return parts(
        (rect(-0.6, -1.0, -0.36, 0.1), MAIN),
        (rect(-0.6, -0.02, 0.65, 0.22), MAIN),
        (rect(-0.6, 0.2, -0.45, 1.0), MAIN),
        (rect(0.5, 0.2, 0.65, 1.0), MAIN),
    )


def _tv() -> tuple[Part, ...]:
    return parts(
        (rect(-1.3, -0.95, 1.3, 0.65), ACCENT),
        (rect(-1.15, -0.82, 1.15, 0.52), MAIN),
        (poly((-0.3, 0.65), (0.3, 0.65), (0.5, 1.0), (-0.5, 1.0)), ACCENT),
    )


def _clock() -> tuple[Part, ...]:
    return parts(
        (circle(0, 0, 1.0, 48), ACCENT),
        (circle(0, 0, 0.85, 48), MAIN),
        (rect(-0.05, -0.7, 0.05, 0.04), ACCENT),
        (rect(-0.04, -0.05, 0.52, 0.05), ACCENT),
        (circle(0, 0, 0.1), SECOND),
    )


def _aeroplane() -> tuple[Part, ...]:
    wing = poly((0.35, -0.1), (-0.45, -1.0), (-0.8, -1.0), (-0.3, -0.1))
    tail = poly((-1.2, -0.1), (-1.5, -0.55), (-1.7, -0.55), (-1.6, -0.1))
    return parts(
        (wing, MAIN), (mirror_y(wing), MAIN), (tail, MAIN), (mirror_y(tail), MAIN),
        (ellipse(0, 0, 1.65, 0.24), MAIN),
        (rect(-1.2, -0.06, 1.25, 0.06), SECOND),
    )  # fmt: skip


def _bed() -> tuple[Part, ...]:
    return parts(
        (rect(-1.6, -0.15, 1.6, 0.6), MAIN),
        (rect(-1.6, -0.9, -1.32, 0.6), ACCENT),
        (ellipse(-0.95, -0.26, 0.32, 0.15), SECOND),
        (rect(-1.6, 0.6, -1.42, 0.9), ACCENT),
        (rect(1.42, 0.6, 1.6, 0.9), ACCENT),
    )


def _table() -> tuple[Part, ...]:
    return parts(
        (rect(-1.4, -0.62, 1.4, -0.4), MAIN),
        (rect(-1.3, -0.42, -1.08, 1.0), MAIN),
        (rect(1.08, -0.42, 1.3, 1.0), MAIN),
    )


def _lamp() -> tuple[Part, ...]:
    return parts(
        (poly((-0.32, -1.0), (0.32, -1.0), (0.6, -0.45), (-0.6, -0.45)), SECOND),
        (rect(-0.06, -0.46, 0.06, 0.88), MAIN),
        (ellipse(0, 0.88, 0.4, 0.12), MAIN),
    )


def _painting() -> tuple[Part, ...]:
    return parts((rect(-1.25, -0.85, 1.25, 0.85), SECOND), (rect(-1.05, -0.66, 1.05, 0.66), MAIN))


def _door() -> tuple[Part, ...]:
    return parts(
        (rect(-0.48, -1.0, 0.48, 1.0), MAIN),
        (rect(-0.34, -0.86, 0.34, -0.12), SECOND),
        (rect(-0.34, 0.1, 0.34, 0.84), SECOND),
        (circle(0.34, 0.0, 0.06), ACCENT),
    )


def _window() -> tuple[Part, ...]:
    panes = [rect(-0.88, -0.88, -0.06, -0.06), rect(0.06, -0.88, 0.88, -0.06),
             rect(-0.88, 0.06, -0.06, 0.88), rect(0.06, 0.06, 0.88, 0.88)]  # fmt: skip
    return parts((rect(-1, -1, 1, 1), SECOND), *[(p, MAIN) for p in panes])


def _plant() -> tuple[Part, ...]:
    return parts(
        (star(0, -0.3, 0.72, 0.3, 7), MAIN),
        (poly((-0.42, 0.38), (0.42, 0.38), (0.3, 1.0), (-0.3, 1.0)), SECOND),
    )


def _tree() -> tuple[Part, ...]:
    return parts(
        (rect(-0.12, 0.0, 0.12, 1.0), SECOND),
        (circle(0, -0.4, 0.6), MAIN),
        (circle(-0.42, -0.1, 0.4), MAIN),
        (circle(0.42, -0.1, 0.4), MAIN),
    )


def _fish() -> tuple[Part, ...]:
    return parts(
        (ellipse(0, 0, 1.1, 0.45), MAIN),
        (poly((-0.95, 0.0), (-1.6, -0.5), (-1.6, 0.5)), MAIN),
        (poly((-0.1, -0.38), (0.3, -0.78), (0.45, -0.36)), SECOND),
        (circle(0.75, -0.08, 0.08), ACCENT),
    )


def _cassette_player() -> tuple[Part, ...]:
    return parts(
        (rect(-1.4, -0.85, 1.4, 0.85), MAIN),
        (rect(-0.9, -0.55, 0.9, 0.05), SECOND),
        (circle(-0.45, -0.25, 0.2), ACCENT),
        (circle(0.45, -0.25, 0.2), ACCENT),
        (rect(-1.1, 0.35, -0.5, 0.6), SECOND),
        (rect(0.5, 0.35, 1.1, 0.6), SECOND),
    )


def _chain_saw() -> tuple[Part, ...]:
    return parts(
        (rect(-1.0, -0.45, 0.0, 0.45), MAIN),
        (rect(-0.8, -0.78, -0.2, -0.44), ACCENT),
        (rect(0.0, -0.18, 1.45, 0.18), SECOND),
        (circle(1.45, 0.0, 0.18), SECOND),
    )


def _church() -> tuple[Part, ...]:
    return parts(
        (rect(-0.9, -0.12, 0.9, 1.0), MAIN),
        (poly((-1.05, -0.1), (0.0, -0.72), (1.05, -0.1)), SECOND),
        (rect(-0.12, -1.0, 0.12, -0.6), SECOND),
        (rect(-0.3, -0.92, 0.3, -0.8), SECOND),
        (rect(-0.2, 0.45, 0.2, 1.0), ACCENT),
    )


def _french_horn() -> tuple[Part, ...]:
    return parts((circle(0, 0, 0.85, 48), MAIN), (poly((0.55, -0.25), (1.45, -0.95), (1.45, 0.45)), MAIN))


def _garbage_truck() -> tuple[Part, ...]:
    return parts(
        (rect(-1.7, -0.85, 0.65, 0.5), MAIN),
        (rect(0.65, -0.5, 1.6, 0.5), SECOND),
        (rect(0.85, -0.38, 1.4, -0.05), ACCENT),
        (circle(-1.0, 0.55, 0.36), ACCENT),
        (circle(1.05, 0.55, 0.36), ACCENT),
    )


def _gas_pump() -> tuple[Part, ...]:
    return parts(
        (rect(-0.5, -1.0, 0.5, 1.0), MAIN),
        (rect(-0.36, -0.82, 0.36, -0.36), SECOND),
        (rect(0.5, -0.3, 0.68, 0.62), ACCENT),
        (rect(0.45, -0.42, 0.8, -0.28), ACCENT),
    )


def _parachute() -> tuple[Part, ...]:
    a = np.linspace(np.pi, 2 * np.pi, 25)
    dome = np.stack([1.4 * np.cos(a), -0.15 + 0.85 * np.sin(a)], axis=1)
    return parts(
        (dome, MAIN), (rect(-0.04, -0.16, 0.04, 0.72), ACCENT), (rect(-0.16, 0.7, 0.16, 1.0), SECOND)
    )


def _motorbike() -> tuple[Part, ...]:
    return parts(
        (circle(-1.0, 0.45, 0.5), ACCENT),
        (circle(1.0, 0.45, 0.5), ACCENT),
        (poly((-0.9, 0.2), (-0.3, -0.35), (0.6, -0.35), (1.05, 0.2), (0.3, 0.45)), MAIN),
        (rect(-0.6, -0.55, 0.1, -0.3), SECOND),
        (rect(0.75, -0.95, 0.88, -0.2), ACCENT),
    )


def _face() -> tuple[Part, ...]:
    return parts(
        (ellipse(0, 0.1, 0.72, 0.9), MAIN),
        (ellipse(0, -0.55, 0.76, 0.45), ACCENT),
        (circle(-0.28, -0.02, 0.1), ACCENT),
        (circle(0.28, -0.02, 0.1), ACCENT),
        (ellipse(0, 0.5, 0.28, 0.09), SECOND),
    )


def _leopard() -> tuple[Part, ...]:
    return parts(
        (ellipse(0.1, 0.0, 1.25, 0.5), MAIN),
        (circle(-1.25, -0.35, 0.36), MAIN),
        (rect(-0.85, 0.2, -0.62, 1.0), MAIN),
        (rect(0.75, 0.2, 0.98, 1.0), MAIN),
        (poly((1.25, -0.1), (1.9, -0.55), (1.95, -0.42), (1.32, 0.12)), MAIN),
    )


def _watch() -> tuple[Part, ...]:
    return parts(
        (rect(-0.3, -1.0, 0.3, 1.0), ACCENT),
        (circle(0, 0, 0.62), SECOND),
        (circle(0, 0, 0.5), MAIN),
        (rect(-0.03, -0.4, 0.03, 0.02), ACCENT),
    )


def _butterfly() -> tuple[Part, ...]:
    return parts(
        (ellipse(-0.55, -0.35, 0.55, 0.5), MAIN),
        (ellipse(0.55, -0.35, 0.55, 0.5), MAIN),
        (ellipse(-0.45, 0.45, 0.4, 0.4), MAIN),
        (ellipse(0.45, 0.45, 0.4, 0.4), MAIN),
        (ellipse(0, 0.05, 0.1, 0.8), ACCENT),
    )


def _sunflower() -> tuple[Part, ...]:
    return parts((star(0, 0, 1.0, 0.62, 14), MAIN), (circle(0, 0, 0.5), SECOND))


def _blob(n: int = 9) -> tuple[Part, ...]:
    # A fixed lumpy outline; clutter gets its irregularity from random stretch and rotation.
    a = np.arange(n) * 2 * np.pi / n
    r = 0.75 + 0.25 * np.cos(3 * a + 0.7) * np.sin(2 * a)
    return parts((np.stack([r * np.cos(a), r * np.sin(a)], axis=1), MAIN))


# ---- appearances --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Appearance:
    """How one class is drawn: parts, colours (main, second, accent), and the texture of MAIN parts."""

    parts: tuple[Part, ...]
    main: RGB
    second: RGB = (235, 235, 230)
    accent: RGB = (35, 35, 38)
    texture: str = "solid"  # solid | stripes | dots | spots | checker | gradient | ticked | rings
    texture_color: RGB = (0, 0, 0)
    upright: bool = True  # small tilts only (people, furniture, animals)
    extent: tuple[float, float, float, float] = field(init=False)  # x0, y0, x1, y1 in the object frame

    def __post_init__(self) -> None:
        pts = np.concatenate([p.points for p in self.parts])
        object.__setattr__(self, "extent", (*pts.min(axis=0).tolist(), *pts.max(axis=0).tolist()))


def _pet(shape: tuple[Part, ...], main: RGB, second: RGB, texture: str, tex: RGB, accent: RGB) -> Appearance:
    return Appearance(shape, main, second, accent, texture, tex)


# Breed looks (main, second = ears/tail/points, texture, texture colour). Cats share one silhouette, dogs another.
_CAT_LOOKS: dict[str, tuple[RGB, RGB, str, RGB]] = {
    "Abyssinian": ((185, 105, 55), (150, 80, 40), "ticked", (0, 0, 0)),
    "Bengal": ((215, 160, 70), (200, 145, 60), "spots", (60, 40, 20)),
    "Birman": ((240, 230, 205), (120, 95, 75), "ticked", (0, 0, 0)),
    "Bombay": ((35, 33, 38), (45, 42, 48), "solid", (0, 0, 0)),
    "British_Shorthair": ((125, 135, 150), (125, 135, 150), "solid", (0, 0, 0)),
    "Egyptian_Mau": ((190, 190, 180), (170, 170, 160), "spots", (80, 80, 75)),
    "Maine_Coon": ((140, 95, 55), (110, 75, 40), "stripes", (70, 45, 25)),
    "Persian": ((245, 240, 230), (245, 240, 230), "solid", (0, 0, 0)),
    "Ragdoll": ((235, 225, 210), (90, 75, 65), "gradient", (150, 130, 110)),
    "Russian_Blue": ((105, 115, 135), (95, 105, 125), "ticked", (0, 0, 0)),
    "Siamese": ((235, 220, 190), (70, 50, 40), "solid", (0, 0, 0)),
    "Sphynx": ((225, 175, 160), (215, 160, 150), "stripes", (200, 150, 140)),
}
_DOG_LOOKS: dict[str, tuple[RGB, RGB, str, RGB]] = {
    "american_bulldog": ((240, 235, 225), (230, 220, 205), "spots", (150, 100, 60)),
    "american_pit_bull_terrier": ((120, 110, 105), (100, 90, 85), "solid", (0, 0, 0)),
    "basset_hound": ((170, 110, 60), (120, 70, 35), "gradient", (245, 240, 230)),
    "beagle": ((200, 140, 70), (130, 80, 40), "spots", (40, 35, 30)),
    "boxer": ((190, 120, 60), (60, 40, 30), "solid", (0, 0, 0)),
    "chihuahua": ((225, 190, 140), (215, 175, 125), "solid", (0, 0, 0)),
    "english_cocker_spaniel": ((200, 120, 50), (150, 80, 30), "ticked", (0, 0, 0)),
    "english_setter": ((245, 245, 240), (60, 60, 60), "dots", (40, 40, 40)),
    "german_shorthaired": ((110, 70, 45), (90, 55, 35), "dots", (235, 230, 220)),
    "great_pyrenees": ((250, 250, 245), (240, 238, 230), "solid", (0, 0, 0)),
    "havanese": ((235, 215, 180), (200, 170, 130), "ticked", (0, 0, 0)),
    "japanese_chin": ((250, 250, 250), (30, 30, 30), "spots", (30, 30, 30)),
    "keeshond": ((150, 150, 145), (60, 60, 60), "gradient", (60, 60, 60)),
    "leonberger": ((190, 140, 70), (80, 55, 30), "gradient", (90, 60, 30)),
    "miniature_pinscher": ((55, 35, 30), (150, 90, 40), "gradient", (150, 90, 40)),
    "newfoundland": ((25, 25, 28), (35, 35, 38), "solid", (0, 0, 0)),
    "pomeranian": ((235, 160, 60), (225, 145, 50), "ticked", (0, 0, 0)),
    "pug": ((220, 195, 150), (30, 28, 28), "solid", (0, 0, 0)),
    "saint_bernard": ((250, 250, 245), (150, 70, 40), "spots", (150, 70, 40)),
    "samoyed": ((245, 245, 240), (235, 230, 215), "stripes", (225, 220, 205)),
    "scottish_terrier": ((40, 38, 40), (30, 30, 32), "ticked", (0, 0, 0)),
    "shiba_inu": ((215, 130, 60), (200, 115, 50), "gradient", (245, 230, 200)),
    "staffordshire_bull_terrier": ((110, 60, 40), (90, 50, 35), "stripes", (60, 35, 25)),
    "wheaten_terrier": ((230, 205, 150), (215, 185, 130), "ticked", (0, 0, 0)),
    "yorkshire_terrier": ((90, 100, 120), (200, 150, 80), "gradient", (200, 150, 80)),
}

PERSON = Appearance(_person(), (150, 60, 170), (235, 185, 140))
CAR = Appearance(
    _car(), (25, 70, 215), (200, 225, 240), (30, 30, 30)
)  # a blue class: decoders must not box it
CAT = _pet(_cat(), (235, 140, 45), (200, 110, 35), "stripes", (150, 80, 25), (40, 60, 20))
DOG = _pet(_dog(), (135, 85, 45), (80, 50, 25), "solid", (0, 0, 0), (20, 20, 20))
CHAIR = Appearance(_chair(), (20, 115, 110))
CUP = Appearance(_cup(), (240, 130, 180), (200, 50, 90))
STOP_SIGN = Appearance(_stop_sign(), (210, 30, 35), (245, 245, 245))
TV = Appearance(_tv(), (120, 170, 230), accent=(35, 35, 40), texture="gradient", texture_color=(60, 90, 160))
AEROPLANE = Appearance(_aeroplane(), (205, 205, 215), (200, 40, 40), upright=False)

APPEARANCES: dict[str, Appearance] = {
    # COCO / VOC things
    "person": PERSON,
    "car": CAR,
    "stop sign": STOP_SIGN,
    "bird": Appearance(_bird(), (240, 205, 30), (240, 120, 20), (120, 95, 15), upright=False),
    "cat": CAT,
    "dog": DOG,
    "sports ball": Appearance(_ball(), (240, 240, 240), texture="checker", texture_color=(25, 25, 25), upright=False),
    "bottle": Appearance(_bottle(), (40, 150, 70), (230, 225, 70)),
    "cup": CUP,
    "chair": CHAIR,
    "tv": TV,
    "clock": Appearance(_clock(), (245, 245, 238), (210, 40, 40), (45, 45, 45)),
    "aeroplane": AEROPLANE,
    # ADE20K things
    "bed": Appearance(_bed(), (140, 30, 60), (245, 245, 240), (90, 55, 30), "stripes", (110, 20, 45)),
    "table": Appearance(_table(), (190, 120, 60), texture="stripes", texture_color=(170, 100, 45)),
    "lamp": Appearance(_lamp(), (40, 40, 40), (250, 220, 110)),
    "painting": Appearance(_painting(), (90, 160, 90), (200, 160, 40), texture="gradient", texture_color=(200, 90, 60)),
    "door": Appearance(_door(), (100, 60, 30), (125, 80, 45), (215, 180, 60)),
    "windowpane": Appearance(_window(), (170, 210, 240), (250, 250, 250), texture="gradient", texture_color=(120, 170, 230)),
    "plant": Appearance(_plant(), (50, 140, 50), (180, 90, 50)),
    "tree": Appearance(_tree(), (40, 120, 40), (100, 70, 40), texture="ticked"),
    # ImageNet subset (synset names)
    "tench": Appearance(_fish(), (110, 120, 50), (80, 90, 35), (20, 20, 20), "ticked", upright=False),
    "English springer": _pet(_dog(), (250, 250, 245), (110, 50, 30), "spots", (110, 50, 30), (20, 20, 20)),
    "cassette player": Appearance(_cassette_player(), (70, 70, 80), (190, 200, 210), (20, 20, 20)),
    "chain saw": Appearance(_chain_saw(), (240, 110, 20), (170, 170, 175), (30, 30, 30), upright=False),
    "church": Appearance(_church(), (235, 225, 200), (150, 50, 40), (60, 40, 30)),
    "French horn": Appearance(_french_horn(), (205, 160, 40), texture="rings", texture_color=(150, 110, 20), upright=False),
    "garbage truck": Appearance(_garbage_truck(), (40, 130, 60), (240, 240, 240), (30, 30, 30)),
    "gas pump": Appearance(_gas_pump(), (200, 30, 40), (220, 240, 220), (30, 30, 30)),
    "golf ball": Appearance(_ball(), (250, 250, 250), texture="dots", texture_color=(200, 200, 205), upright=False),
    "parachute": Appearance(_parachute(), (240, 80, 40), (60, 60, 60), (30, 30, 30), "stripes", (250, 220, 40)),
    # Caltech-101 folders not covered above
    "Faces": Appearance(_face(), (225, 180, 150), (190, 70, 70), (50, 35, 25)),
    "Leopards": Appearance(_leopard(), (225, 170, 70), texture="spots", texture_color=(45, 30, 15)),
    "Motorbikes": Appearance(_motorbike(), (210, 30, 30), (30, 30, 30), (45, 45, 50)),
    "butterfly": Appearance(_butterfly(), (250, 150, 30), accent=(30, 20, 20), texture="spots", texture_color=(30, 20, 20), upright=False),
    "sunflower": Appearance(_sunflower(), (250, 210, 30), (110, 70, 20), upright=False),
    "watch": Appearance(_watch(), (250, 250, 250), (190, 190, 200), (30, 30, 30), upright=False),
}  # fmt: skip
for _name, (_m, _s, _t, _c) in _CAT_LOOKS.items():
    APPEARANCES[_name] = _pet(_cat(), _m, _s, _t, _c, (60, 150, 60) if _name != "Bombay" else (230, 200, 40))
for _name, (_m, _s, _t, _c) in _DOG_LOOKS.items():
    APPEARANCES[_name] = _pet(_dog(), _m, _s, _t, _c, (20, 20, 20))

# Names that are the same thing in another dataset's words.
ALIASES = {
    "tvmonitor": "tv", "airplanes": "aeroplane", "airplane": "aeroplane", "stop_sign": "stop sign",
    "television receiver": "tv", "motorbike": "Motorbikes",
}  # fmt: skip

CLUTTER = Appearance(_blob(), (128, 128, 128), upright=False)


def appearance(name: str) -> Appearance:
    """The appearance of class ``name`` (dataset spellings and aliases accepted)."""
    key = ALIASES.get(name, name)
    try:
        return APPEARANCES[key]
    except KeyError:
        raise KeyError(f"no synthetic appearance for class {name!r}") from None
