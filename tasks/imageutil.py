"""Small image helpers the task codecs share: answers as arrays, resizing back to the input size."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
from PIL import Image


def as_array(image: Any) -> np.ndarray:
    """A PIL image or array as a numpy array (a copy is not guaranteed)."""
    if isinstance(image, Image.Image):
        if image.mode not in ("RGB", "L", "RGBA", "I;16", "I", "F"):
            image = image.convert("RGB")
        return np.asarray(image)
    arr = np.asarray(image)
    if arr.ndim not in (2, 3):
        raise ValueError(f"expected an (H, W) or (H, W, C) image, got shape {arr.shape}")
    return arr


def as_rgb(image: Any) -> np.ndarray:
    """Any answer image as uint8 (H, W, 3) RGB: grey is repeated, alpha dropped, floats in 0..1 scaled."""
    arr = as_array(image)
    if arr.dtype != np.uint8:
        if np.issubdtype(arr.dtype, np.floating) and arr.size and float(np.nanmax(arr)) <= 1.0:
            arr = arr * 255.0
        arr = np.clip(np.nan_to_num(arr), 0, 255).astype(np.uint8)
    if arr.ndim == 2:
        return np.repeat(arr[:, :, None], 3, axis=2)
    if arr.shape[2] == 1:
        return np.repeat(arr, 3, axis=2)
    return np.ascontiguousarray(arr[:, :, :3])


def as_gray(image: Any) -> np.ndarray:
    """Any answer image as float32 (H, W): the mean of the colour channels (no luma weighting)."""
    arr = as_array(image)
    if arr.ndim == 3 and arr.shape[2] >= 3:
        if arr.dtype not in (np.uint8, np.uint16, np.int16, np.float32, np.float64):
            arr = arr.astype(np.float32)
        r, g, b = cv2.split(np.ascontiguousarray(arr[:, :, :3]))
        total = cv2.add(cv2.add(r, g, dtype=cv2.CV_32F), b, dtype=cv2.CV_32F)
        return cv2.multiply(total, 1.0 / 3.0)
    if arr.ndim == 3:
        arr = arr[:, :, 0]
    return arr.astype(np.float32, copy=False)


def check_size(size: Any) -> tuple[int, int]:
    """``size`` as ``(width, height)`` positive ints, or a clear ``ValueError``."""
    try:
        width, height = (int(v) for v in size)
    except (TypeError, ValueError):
        raise ValueError(f"size must be (width, height), got {size!r}") from None
    if width <= 0 or height <= 0:
        raise ValueError(f"size must be positive, got {size!r}")
    return width, height


def resize_to(arr: np.ndarray, size: tuple[int, int], interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
    """Resize ``arr`` to ``size = (width, height)``; a no-op when it already has that size."""
    width, height = size
    if arr.shape[1] == width and arr.shape[0] == height:
        return arr
    if interpolation == cv2.INTER_LINEAR and (arr.shape[1] > 2 * width or arr.shape[0] > 2 * height):
        interpolation = cv2.INTER_AREA  # shrinking a lot: average, do not alias thin lines away
    return cv2.resize(arr, (width, height), interpolation=interpolation)
