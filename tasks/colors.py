"""Named answer colours for the classification task, and the deterministic choice of a colour pair.

``COLORS`` is the palette instructions are built from: the six saturated corners of the RGB cube,
at least 255 apart from one another, so that a slightly off-colour, JPEG-damaged answer is never
closer to the wrong colour. Black, white and grey are deliberately left out of the palette: a
blank or washed-out answer must not read as a valid answer. ``NAMED_COLORS`` adds the other
common colour words a user might write in a free-form instruction, so they can still be decoded.
"""

from __future__ import annotations

import numpy as np

from tasks.templates import stable_rng

COLORS: dict[str, tuple[int, int, int]] = {
    "red": (255, 0, 0),
    "green": (0, 255, 0),
    "blue": (0, 0, 255),
    "yellow": (255, 255, 0),
    "cyan": (0, 255, 255),
    "magenta": (255, 0, 255),
}

NAMED_COLORS: dict[str, tuple[int, int, int]] = {
    **COLORS,
    "orange": (255, 128, 0),
    "purple": (128, 0, 255),
    "pink": (255, 128, 192),
    "brown": (128, 64, 0),
    "white": (255, 255, 255),
    "black": (0, 0, 0),
    "grey": (128, 128, 128),
    "gray": (128, 128, 128),
}

FIXED_COLORS: tuple[str, str] = ("red", "green")


def color_rgb(name: str) -> tuple[int, int, int]:
    """RGB of a colour name (case-insensitive); ``ValueError`` naming the known colours otherwise."""
    key = name.strip().lower()
    if key not in NAMED_COLORS:
        raise ValueError(f"unknown colour {name!r}; known colours: {', '.join(NAMED_COLORS)}")
    return NAMED_COLORS[key]


def choose_colors(key: str, seed: int = 0, style: str = "rephrased") -> tuple[str, str]:
    """(positive, negative): two distinct palette colours, deterministic in (key, seed, style).

    The fixed style always answers red for "present" and green for "absent".
    """
    if style == "fixed":
        return FIXED_COLORS
    if style != "rephrased":
        raise ValueError(f"unknown prompt style {style!r} (expected 'rephrased' or 'fixed')")
    names = list(COLORS)
    i, j = stable_rng(seed, "colors", key).choice(len(names), size=2, replace=False)
    return names[int(i)], names[int(j)]


def palette_distance_min() -> float:
    """Smallest RGB distance between two palette colours (documents the separation guarantee)."""
    rgb = np.array(list(COLORS.values()), dtype=np.float64)
    d = np.linalg.norm(rgb[:, None] - rgb[None], axis=-1)
    return float(d[~np.eye(len(rgb), dtype=bool)].min())
