"""Answer images on disk: ``<dir>/<sample>.png`` (or .jpg), the layout ``--predictions`` reads and ``--ckpt`` writes.

The cache ``evaluate.py --ckpt`` fills is a predictions folder like any other, plus
``.evaluate_settings.json`` recording the model and sampling settings that made its answers. A re-run
reuses every answer already there (no model call); a run with different settings refuses the folder
rather than mix answers of two settings, unless ``--overwrite`` (which regenerates them all).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from PIL import Image

from instructcv.cli import UsageError
from instructcv.io import save_image, write_json

ANSWER_EXTENSIONS = (".png", ".jpg", ".jpeg")
SETTINGS_FILE = ".evaluate_settings.json"
# settings that change answers; device and dtype only change rounding noise, they are recorded, not compared
COMPARED = ("model", "steps", "cfg_text", "cfg_image", "resolution", "seed", "scheduler", "use_ema")


def answer_index(root: str | Path) -> dict[str, Path]:
    """Sample name -> answer file for every ``<sample>.png|.jpg|.jpeg`` directly in ``root`` (PNG preferred)."""
    out: dict[str, Path] = {}
    root = Path(root)
    if not root.is_dir():
        return out
    with os.scandir(root) as it:
        entries = sorted((e.name for e in it if e.is_file() and not e.name.startswith(".")), reverse=True)
    for name in entries:  # reverse order: for one sample, .png is seen after .jpg/.jpeg and wins
        stem, ext = os.path.splitext(name)
        if ext.lower() in ANSWER_EXTENSIONS:
            if stem not in out or ext.lower() == ".png":
                out[stem] = root / name
    return out


class AnswerCache:
    """The answers folder of a ``--ckpt`` run."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def path(self, sample: str) -> Path:
        return self.root / f"{sample}.png"

    def settings(self) -> dict[str, Any] | None:
        try:
            return json.loads((self.root / SETTINGS_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def check_settings(self, settings: dict[str, Any], n_existing: int) -> str | None:
        """Refuse answers made with other settings; a note when the folder's answers are of unknown origin."""
        old = self.settings()
        if old is None:
            if n_existing:
                return (f"{n_existing} answer(s) already in {self.root} were not made by evaluate.py --ckpt "
                        "(no settings file); they are used as they are")  # fmt: skip
            return None
        differ = [
            f"{k}={old.get(k)!r} (now {settings.get(k)!r})" for k in COMPARED if old.get(k) != settings.get(k)
        ]
        if differ:
            raise UsageError(f"--predictions {self.root}: its answers were made with {', '.join(differ)}; "
                             "pass another --predictions folder, or --overwrite to make them again")  # fmt: skip
        return None

    def write_settings(self, settings: dict[str, Any]) -> None:
        write_json(self.root / SETTINGS_FILE, settings, indent=1)

    def forget(self, samples: list[str]) -> None:
        """Delete the answers of ``samples`` and the settings file (before ``--overwrite`` remakes them)."""
        (self.root / SETTINGS_FILE).unlink(missing_ok=True)
        for s in samples:
            for ext in ANSWER_EXTENSIONS:
                (self.root / f"{s}{ext}").unlink(missing_ok=True)

    def save(self, sample: str, answer: Image.Image) -> Path:
        path = self.path(sample)
        save_image(path, answer)
        return path
