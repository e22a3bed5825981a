"""Image preprocessing for classifier fine-tuning with PIL and numpy (no torchvision).

Evaluation: resize the short side to ``size / crop_pct`` and take the centre ``size`` x ``size``
crop (crop_pct 0.875: 256 -> 224, as ResNet and ViT are evaluated). Training: random resized crop
(area 8-100 %, aspect 3/4-4/3) to ``size`` x ``size`` and a horizontal flip with probability 1/2,
drawn from a ``numpy`` generator so a run is reproducible by seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Preprocess:
    """Input size and normalisation of one classifier (read from its image processor config)."""

    size: int = 224
    crop_pct: float = 0.875
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    resample: int = Image.BILINEAR

    @classmethod
    def from_processor(cls, processor: object) -> Preprocess:
        """Take size, crop ratio and mean/std from a transformers image processor."""
        size_cfg = getattr(processor, "crop_size", None) or getattr(processor, "size", None) or {}
        size_cfg = dict(size_cfg) if not isinstance(size_cfg, int) else {"shortest_edge": size_cfg}
        size = size_cfg.get("height") or size_cfg.get("shortest_edge") or 224
        crop_pct = getattr(processor, "crop_pct", None) or 0.875
        mean = tuple(float(v) for v in (getattr(processor, "image_mean", None) or IMAGENET_MEAN))
        std = tuple(float(v) for v in (getattr(processor, "image_std", None) or IMAGENET_STD))
        return cls(size=int(size), crop_pct=float(crop_pct), mean=mean, std=std)  # type: ignore[arg-type]

    def normalize(self, img: Image.Image) -> np.ndarray:
        """RGB PIL image -> float32 (3, H, W), scaled to [0, 1] then standardised."""
        arr = np.asarray(img, dtype=np.float32) * (1.0 / 255.0)
        arr = (arr - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
        return np.ascontiguousarray(arr.transpose(2, 0, 1))

    def eval(self, img: Image.Image) -> np.ndarray:
        """Resize the short side to size / crop_pct, centre crop size x size, normalise."""
        w, h = img.size
        short = int(math.floor(self.size / self.crop_pct + 0.5))
        scale = short / min(w, h)
        nw, nh = max(self.size, round(w * scale)), max(self.size, round(h * scale))
        left, top = (nw - self.size) // 2, (nh - self.size) // 2
        # resize straight into the crop window: one PIL call, identical to resize-then-crop
        box = (left / scale, top / scale, (left + self.size) / scale, (top + self.size) / scale)
        out = img.resize((self.size, self.size), self.resample, box=box)
        return self.normalize(out)

    def train(self, img: Image.Image, rng: np.random.Generator,
              scale: tuple[float, float] = (0.08, 1.0), ratio: tuple[float, float] = (3 / 4, 4 / 3)) -> np.ndarray:
        """Random resized crop to size x size plus a random horizontal flip, normalised."""
        x0, y0, cw, ch = random_crop_box(img.size, rng, scale, ratio)
        out = img.resize((self.size, self.size), self.resample, box=(x0, y0, x0 + cw, y0 + ch))
        if rng.random() < 0.5:
            out = out.transpose(Image.FLIP_LEFT_RIGHT)
        return self.normalize(out)


def random_crop_box(size: tuple[int, int], rng: np.random.Generator, scale: tuple[float, float],
                    ratio: tuple[float, float], attempts: int = 10) -> tuple[int, int, int, int]:
    """(x, y, w, h) of a crop covering ``scale`` of the area with aspect in ``ratio``; centre crop as fallback."""
    w, h = size
    area = w * h
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(attempts):
        target = area * rng.uniform(scale[0], scale[1])
        aspect = math.exp(rng.uniform(*log_ratio))
        cw = int(round(math.sqrt(target * aspect)))
        ch = int(round(math.sqrt(target / aspect)))
        if 0 < cw <= w and 0 < ch <= h:
            x = int(rng.integers(0, w - cw + 1))
            y = int(rng.integers(0, h - ch + 1))
            return x, y, cw, ch
    # the image is too elongated for the ratio range: the largest centred crop within it
    in_ratio = w / h
    if in_ratio < ratio[0]:
        cw, ch = w, int(round(w / ratio[0]))
    elif in_ratio > ratio[1]:
        ch, cw = h, int(round(h * ratio[1]))
    else:
        cw, ch = w, h
    return (w - cw) // 2, (h - ch) // 2, cw, ch
