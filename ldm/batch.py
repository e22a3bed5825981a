"""How a pair becomes tensors: images resized and scaled to the VAE's range, instructions tokenised.

Shared by the training datasets (ldm/data.py), the latent cache (ldm/latent_cache.py), the image
logger and the model, so that all of them see a pair the same way.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from instructcv.images import load_rgb
from instructcv.pairs import PairSample


def load_pair_images(sample: PairSample, resolution: int) -> tuple[np.ndarray, np.ndarray]:
    """Input and target as uint8 ``(resolution, resolution, 3)`` arrays (square resize, as the paper trains)."""
    size = (resolution, resolution)
    images = [load_rgb(p).resize(size, Image.Resampling.LANCZOS) for p in (sample.input_path, sample.target_path)]
    return np.asarray(images[0]), np.asarray(images[1])


def to_model_range(image: np.ndarray) -> torch.Tensor:
    """uint8 ``(H, W, 3)`` -> float ``(3, H, W)`` in [-1, 1], the range the SD VAE expects."""
    return torch.from_numpy(np.array(image, dtype=np.uint8, copy=True)).permute(2, 0, 1).float().div(127.5).sub(1.0)


def tokenize(tokenizer, prompts: str | list[str]) -> torch.Tensor:
    """CLIP token ids padded to the tokenizer's 77 tokens, shape ``(B, 77)``."""
    return tokenizer(
        prompts, padding="max_length", max_length=tokenizer.model_max_length, truncation=True, return_tensors="pt"
    ).input_ids
