"""Reading user and dataset images robustly: one function, every mode, clear errors.

Real datasets contain PNG or GIF files named .jpg (Oxford-IIIT Pets), RGBA and palette images,
16-bit PNGs and photos whose EXIF orientation must be applied. ``load_rgb`` turns all of them
into an 8-bit RGB image or raises ``ImageReadError`` naming the file and the reason.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif")


class ImageReadError(ValueError):
    """An image could not be read; ``str(err)`` is a one-line message naming the file."""

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


def _open_fully(path: Path) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(path)
            img.load()  # force a full decode so truncated files fail here, not later
    except FileNotFoundError:
        raise ImageReadError(path, "file not found") from None
    except UnidentifiedImageError:
        raise ImageReadError(path, "not an image file (unrecognised format)") from None
    except OSError as e:
        raise ImageReadError(path, f"cannot decode image ({e})") from None
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as e:
        raise ImageReadError(path, f"image too large ({e})") from None
    return img


def to_rgb(img: Image.Image, background: tuple[int, int, int] = (255, 255, 255)) -> Image.Image:
    """Convert any PIL mode to 8-bit RGB (alpha composited on ``background``, 16-bit rescaled)."""
    if img.mode == "RGB":
        return img
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        hi = arr.max() if arr.size else 0.0
        lo = arr.min() if arr.size else 0.0
        scale = 255.0 / (hi - lo) if hi > lo else 0.0
        arr8 = np.clip((arr - lo) * scale + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(arr8, "L").convert("RGB")
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, background + (255,))
        return Image.alpha_composite(canvas, rgba).convert("RGB")
    return img.convert("RGB")


def load_rgb(path: str | os.PathLike, exif_transpose: bool = True) -> Image.Image:
    """Read ``path`` as an 8-bit RGB PIL image whatever its real format; raise ``ImageReadError``."""
    path = Path(path)
    img = _open_fully(path)
    if getattr(img, "is_animated", False):
        img.seek(0)
    if exif_transpose:
        try:
            img = ImageOps.exif_transpose(img)
        except Exception:  # a broken EXIF block must not lose the image
            pass
    return to_rgb(img)


def load_array(path: str | os.PathLike) -> np.ndarray:
    """Read an annotation image (label map, trimap, 16-bit depth) as a numpy array, unconverted."""
    path = Path(path)
    img = _open_fully(path)
    if img.mode == "P":  # palette PNGs: indices are the labels
        return np.asarray(img, dtype=np.uint8).copy()
    return np.asarray(img).copy()


def list_images(root: str | os.PathLike, extensions: tuple[str, ...] = IMAGE_EXTENSIONS) -> list[Path]:
    """All files under ``root`` (or ``root`` itself) with an image extension, sorted."""
    root = Path(root)
    if root.is_file():
        return [root]
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in extensions)
