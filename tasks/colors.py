"""Named answer colours for the classification task, and the deterministic choice of a colour pair.

``COLORS`` is the palette the released InstructCV weights were taught with (AlaaLab/InstructCV,
``build_data/format_dataset_rp.py``): rephrased prompts name two distinct colours of it, drawn at
random, and the target is filled with one of them; fixed prompts use red / green. The names keep
the original spelling ("RosyBrown"), because that is the text the released model read.
``NAMED_COLORS`` adds the other common colour words a user might write in a free-form instruction,
so that they can still be decoded. Names are matched in any case and spacing ("rosy brown",
"Rosy-Brown" and "RosyBrown" are one colour).
"""

from __future__ import annotations

import re

import numpy as np

from tasks.templates import stable_rng

COLORS: dict[str, tuple[int, int, int]] = {
    "red": (255, 0, 0),
    "green": (0, 255, 0),
    "blue": (0, 0, 255),
    "purple": (128, 0, 128),
    "white": (255, 255, 255),
    "Brown": (165, 42, 42),
    "Gold": (255, 215, 0),
    "Beige": (245, 245, 220),
    "Violet": (238, 130, 238),
    "Orange": (255, 128, 0),
    "Maroon": (128, 0, 0),
    "Indigo": (75, 0, 130),
    "Aqua": (0, 255, 255),
    "Coral": (255, 127, 80),
    "RosyBrown": (188, 143, 143),
    "Peru": (205, 133, 63),
}

NAMED_COLORS: dict[str, tuple[int, int, int]] = {
    **COLORS,
    "yellow": (255, 255, 0),
    "cyan": (0, 255, 255),
    "magenta": (255, 0, 255),
    "pink": (255, 192, 203),
    "black": (0, 0, 0),
    "grey": (128, 128, 128),
    "gray": (128, 128, 128),
    "silver": (192, 192, 192),
    "navy": (0, 0, 128),
    "teal": (0, 128, 128),
    "olive": (128, 128, 0),
    "lime": (0, 255, 0),
    "turquoise": (64, 224, 208),
    "lavender": (230, 230, 250),
    "crimson": (220, 20, 60),
    "salmon": (250, 128, 114),
}

FIXED_COLORS: tuple[str, str] = ("red", "green")

_SEPARATORS = re.compile(r"[\s_\-]+")


def color_key(name: str) -> str:
    """The lookup form of a colour name: lower case, no spaces, hyphens or underscores."""
    return _SEPARATORS.sub("", str(name)).lower()


_BY_KEY: dict[str, str] = {color_key(n): n for n in NAMED_COLORS}


def known_colors() -> str:
    """The colour names an instruction may use, for error messages (palette first)."""
    return ", ".join(NAMED_COLORS)


def canonical_color(name: str) -> str:
    """The spelling of ``name`` in ``NAMED_COLORS`` ("rosy brown" -> "RosyBrown"; "gray" -> "grey").

    Raises ``ValueError`` naming the colour and the known ones when it is not a known colour.
    """
    key = color_key(name)
    if key == "gray":
        key = "grey"
    if key not in _BY_KEY:
        raise ValueError(f"unknown colour {str(name).strip()!r}; known colours: {known_colors()}")
    return _BY_KEY[key]


def color_rgb(name: str) -> tuple[int, int, int]:
    """RGB of a colour name (any case and spacing); ``ValueError`` naming the known colours otherwise."""
    return NAMED_COLORS[canonical_color(name)]


def color_pattern() -> str:
    """A regex (no groups) matching every known colour name in lower-case text, any spacing inside."""
    words = sorted(NAMED_COLORS, key=len, reverse=True)
    parts = []
    for name in words:
        pieces = re.findall(r"[A-Z]?[a-z]+", name)  # "RosyBrown" -> rosy, brown
        parts.append(r"[\s_\-]?".join(re.escape(p.lower()) for p in pieces))
    return "(?:" + "|".join(parts) + ")"


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
    """Smallest RGB distance between two palette colours (Brown and Maroon are the closest pair)."""
    rgb = np.array(list(COLORS.values()), dtype=np.float64)
    d = np.linalg.norm(rgb[:, None] - rgb[None], axis=-1)
    return float(d[~np.eye(len(rgb), dtype=bool)].min())
