"""Instruction templates: deterministic filling from (key, seed, style) and matching back to fields.

A template is a sentence with placeholders: ``%`` the class name, ``*`` the positive colour and
``#`` the negative colour. Every task module owns ``TEMPLATES = {"rephrased": [...], "fixed": [one]}``
and builds its instructions with :func:`make_instruction`; the instruction parser turns the same
templates into patterns with :func:`template_pattern`, so every sentence we generate parses back.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence

import numpy as np

CLASS, POSITIVE, NEGATIVE = "%", "*", "#"
STYLES = ("rephrased", "fixed")


def stable_rng(seed: int, *keys: str) -> np.random.Generator:
    """A numpy generator seeded from sha256 of the keys and the seed (Python's hash() is salted per run)."""
    digest = hashlib.sha256("\x1f".join((str(int(seed)), *keys)).encode("utf-8")).digest()
    return np.random.default_rng(int.from_bytes(digest[:16], "little"))


def fill_template(template: str, class_name: str | None = None, positive: str | None = None,
                  negative: str | None = None) -> str:
    """Put the class and colour names into ``template``; a placeholder without a value is an error."""
    out = template
    for mark, value, what in ((CLASS, class_name, "class_name"), (POSITIVE, positive, "positive"),
                              (NEGATIVE, negative, "negative")):
        if mark in out:
            if not value or not str(value).strip():
                raise ValueError(f"template {template!r} needs {what}")
            out = out.replace(mark, " ".join(str(value).split()))
    return out


def pick_template(templates: Mapping[str, Sequence[str]], tag: str, key: str, seed: int, style: str) -> str:
    """The template for sample ``key``: deterministic in (tag, key, seed, style)."""
    if style not in templates:
        raise ValueError(f"unknown prompt style {style!r} (expected one of {', '.join(templates)})")
    choices = templates[style]
    if len(choices) == 1:
        return choices[0]
    return choices[int(stable_rng(seed, "instruction", tag, style, key).integers(len(choices)))]


def make_instruction(templates: Mapping[str, Sequence[str]], tag: str, key: str, seed: int = 0,
                     style: str = "rephrased", class_name: str | None = None, positive: str | None = None,
                     negative: str | None = None) -> str:
    """Fill the template chosen for ``key`` (see :func:`pick_template`) with the given names."""
    return fill_template(pick_template(templates, tag, key, seed, style), class_name, positive, negative)


_SPACES = re.compile(r"\s+")
_TRAILING = re.compile(r"[\s.!?]+$")


def normalise(text: str) -> str:
    """Lower case, single spaces, straight quotes, no trailing full stop or question mark."""
    text = text.replace("\u2019", "'").replace("\u2018", "'").replace("\u201c", '"').replace("\u201d", '"')
    return _TRAILING.sub("", _SPACES.sub(" ", text.strip().lower()))


def template_pattern(template: str) -> re.Pattern[str]:
    """A regex matching :func:`normalise`-d fillings of ``template``; groups ``cls``, ``pos``, ``neg``."""
    parts = []
    for ch in normalise(template):
        if ch == CLASS:
            parts.append(r"(?P<cls>[^,;:?!]+?)")
        elif ch == POSITIVE:
            parts.append(r"(?P<pos>[a-z]+)")
        elif ch == NEGATIVE:
            parts.append(r"(?P<neg>[a-z]+)")
        elif ch == " ":
            parts.append(r"\s+")
        else:
            parts.append(re.escape(ch))
    return re.compile("^" + "".join(parts) + "$")


def literal_length(template: str) -> int:
    """How many fixed characters a template has (longer = more specific when several match)."""
    return len(normalise(template).replace(CLASS, "").replace(POSITIVE, "").replace(NEGATIVE, ""))
