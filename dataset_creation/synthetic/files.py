"""Determinism and file output of the synthetic datasets: seeded generators, image sizes, atomic writers, image bytes, annotation encodings."""

from __future__ import annotations

import io
import json
import time
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

from instructcv.io import atomic_open

MANIFEST = ".synthetic.json"
Progress = Callable[[int], Any] | None
Size = int | tuple[int, int]


# ---- determinism and file output ---------------------------------------------------------------------------


def _key(part: str | int) -> int:
    return part if isinstance(part, int) else zlib.crc32(part.encode("utf-8"))


def rng_for(seed: int, *keys: str | int) -> np.random.Generator:
    """A generator that depends only on ``seed`` and ``keys`` (dataset, split, index), never on call order."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), *(_key(k) for k in keys)]))


def image_size(rng: np.random.Generator, size: Size) -> tuple[int, int]:
    """(width, height): ``size`` itself when a pair, else a photo-like aspect with long side ``size``."""
    if not isinstance(size, int):
        return int(size[0]), int(size[1])
    aspect = [(4, 3), (3, 2), (1, 1), (3, 4)][int(rng.choice(4, p=[0.55, 0.15, 0.1, 0.2]))]
    w, h = aspect
    if w >= h:
        return size, max(8, round(size * h / w))
    return max(8, round(size * w / h)), size


class DatasetWriter:
    """Writes one dataset's files: atomically, only when the bytes change; removes what a previous run left over."""

    def __init__(self, root: Path, name: str, params: dict[str, Any]):
        self.root = Path(root)
        self.name = name
        self.params = params
        self.files: dict[str, int] = {}
        self.written = 0
        self.unchanged = 0
        self.images = {"train": 0, "eval": 0}
        self.start = time.perf_counter()

    def put(self, rel: str, data: bytes) -> None:
        if rel in self.files:
            raise ValueError(f"{self.name}: {rel} written twice")
        self.files[rel] = len(data)
        path = self.root / rel
        try:
            if path.stat().st_size == len(data) and path.read_bytes() == data:
                self.unchanged += 1
                return
        except OSError:
            pass
        with atomic_open(path, "wb") as f:
            f.write(data)
        self.written += 1

    def text(self, rel: str, lines: Iterable[str], newline: str = "\n", final_newline: bool = True) -> None:
        body = newline.join(lines)
        self.put(rel, (body + (newline if final_newline and body else "")).encode("utf-8"))

    def finish(self) -> dict[str, Any]:
        """Write the manifest, delete files only the previous run wrote, and return the summary."""
        manifest = self.root / MANIFEST
        removed = 0
        try:
            old = json.loads(manifest.read_text(encoding="utf-8")).get("files", [])
        except (OSError, ValueError, AttributeError):
            old = []
        root = self.root.resolve()
        for rel in sorted(set(old) - set(self.files)):
            path = self.root / rel
            if root in path.resolve().parents and path.is_file():  # never outside the dataset folder
                path.unlink()
                removed += 1
                _remove_empty_parents(path.parent, self.root)
        record = {"generator": "dataset_creation/synthetic.py", "dataset": self.name, "params": self.params,
                  "files": sorted(self.files)}  # fmt: skip
        data = (json.dumps(record, indent=1, sort_keys=True) + "\n").encode("utf-8")
        if not (manifest.is_file() and manifest.read_bytes() == data):
            with atomic_open(manifest, "wb") as f:
                f.write(data)
        return {
            "dataset": self.name, "data_root": str(self.root), "images": dict(self.images),
            "files": len(self.files), "written": self.written, "unchanged": self.unchanged, "removed": removed,
            "bytes": sum(self.files.values()), "seconds": round(time.perf_counter() - self.start, 2),
        }  # fmt: skip

    def tick(self, split: str, progress: Progress) -> None:
        self.images[split] += 1
        if progress is not None:
            progress(1)


def _remove_empty_parents(folder: Path, root: Path) -> None:
    while folder != root and root in folder.parents:
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent


def jpeg_bytes(image: np.ndarray | Image.Image, quality: int = 90) -> bytes:
    img = Image.fromarray(image) if isinstance(image, np.ndarray) else image
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def png_bytes(image: np.ndarray | Image.Image) -> bytes:
    img = Image.fromarray(image) if isinstance(image, np.ndarray) else image
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def gif_bytes(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).quantize(
        colors=128, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE
    ).save(buf, format="GIF")
    return buf.getvalue()


def rgba_png_bytes(image: np.ndarray) -> bytes:
    alpha = np.full(image.shape[:2] + (1,), 255, np.uint8)
    return png_bytes(np.concatenate([image, alpha], axis=2))


def palette_png_bytes(index: np.ndarray, palette: np.ndarray) -> bytes:
    img = Image.frombytes(
        "P", (index.shape[1], index.shape[0]), np.ascontiguousarray(index, np.uint8).tobytes()
    )
    img.putpalette(palette.astype(np.uint8).ravel().tolist())
    return png_bytes(img)


# ---- annotation helpers ------------------------------------------------------------------------------------


def mask_to_polygons(mask: np.ndarray) -> list[list[float]]:
    """COCO polygons of a bool mask that pycocotools rasterises back to exactly the same pixels.

    Contours are traced on the mask upsampled 2x and mapped back to pixel coordinates, so every
    vertex lies a quarter pixel inside the region's outer pixel edges; pycocotools then fills
    exactly the pixels whose centres the outline encloses.
    """
    up = cv2.resize(mask.astype(np.uint8), None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)
    contours, _ = cv2.findContours(up, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    polys = []
    for c in contours:
        pts = (c.reshape(-1, 2).astype(np.float64) + 0.5) / 2.0
        if len(pts) >= 3:
            polys.append([round(float(v), 2) for v in pts.ravel()])
    return polys


def uncompressed_rle(mask: np.ndarray) -> dict[str, Any]:
    """COCO's uncompressed RLE: column-major run lengths starting with a run of zeros."""
    flat = np.asfortranarray(mask.astype(np.uint8)).ravel(order="F")
    change = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    counts = np.diff(bounds).tolist()
    if flat.size and flat[0] == 1:
        counts = [0] + counts
    return {"counts": counts, "size": [int(mask.shape[0]), int(mask.shape[1])]}


def compressed_rle(mask: np.ndarray) -> dict[str, Any]:
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def pixel_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) inclusive pixel indices of a non-empty mask."""
    ys = np.flatnonzero(mask.any(axis=1))
    xs = np.flatnonzero(mask.any(axis=0))
    return int(xs[0]), int(ys[0]), int(xs[-1]), int(ys[-1])


def voc_palette() -> np.ndarray:
    """The PASCAL VOC colour map (256 x 3): bits of the index spread over the channels' high bits."""
    idx = np.arange(256)
    cmap = np.zeros((256, 3), np.uint8)
    for shift in range(8):
        for ch in range(3):
            cmap[:, ch] |= (((idx >> (3 * shift + ch)) & 1) << (7 - shift)).astype(np.uint8)
    return cmap


def _xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


