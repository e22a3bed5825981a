"""Pack the latent cache into shards: VAE latents and instruction embeddings instead of images.

Per sample ``<key>.latents.npy`` is a float16 array ``(F, 3, C, h, w)``: for each orientation
(F = 2 with flips: as stored, then both images mirrored and encoded again, because the VAE is not
mirror-symmetric; F = 1 without) the input's posterior mode, the target's posterior mean and std,
unscaled (the arrays of ``ldm/latent_cache.py``). ``<key>.json`` holds the sample's metadata and
``prompt``, its row in ``text_embeddings.npy`` (P, 77, D) float16 beside the shards: one CLIP
embedding per distinct instruction instead of one per sample (a 77 x 768 embedding is four times a
sample's latents at 256 px). ``index.json`` records the resolution, the orientations and the
fingerprint of the VAE and text encoder (``ldm.latent_cache.fingerprint``), which training checks.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from dataset_creation.shards import (
    PackedSample,
    check_out,
    pool_records,
    read_prompt_object,
    sample_meta,
    write_index,
    write_shards,
)
from instructcv.images import ImageReadError
from instructcv.io import atomic_path
from instructcv.pairs import PairSample
from ldm.batch import load_pair_images, to_model_range
from ldm.latent_cache import _ARRAYS, embed_prompts, encode_pair_latents, fingerprint

TEXT_EMBEDDINGS = "text_embeddings.npy"


class _LatentInputs(Dataset):
    """(position, input, target, prompt object, meta) per pair, or (position, error message)."""

    def __init__(self, items: Sequence[tuple[int, PairSample]], resolution: int):
        self.items, self.resolution = list(items), resolution

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        source, record = self.items[i]
        try:
            image, target = load_pair_images(record, self.resolution)
            _, prompt = read_prompt_object(record)
        except ImageReadError as e:
            return i, f"{e}; pair {record.key} left out"
        except (OSError, ValueError) as e:
            return i, f"{record.folder}: {type(e).__name__}: {e}; pair {record.key} left out"
        return i, to_model_range(image), to_model_range(target), prompt, sample_meta(source, record, prompt)


def _collate(items):
    return [it for it in items if len(it) == 5], [it[1] for it in items if len(it) == 2]


def npy_bytes(array: np.ndarray) -> bytes:
    """``np.save`` into bytes (a deterministic header and the raw array)."""
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def encode_samples(items: Sequence[tuple[int, PairSample]], components, resolution: int, flip: bool,
                   batch_size: int, device: torch.device, workers: int,
                   prompts: dict[str, int]) -> Iterator[PackedSample | str]:
    """Latent samples in ``items`` order (a string for a pair left out); fills ``prompts`` (text -> row)."""
    loader = DataLoader(_LatentInputs(items, resolution), batch_size=batch_size, num_workers=workers,
                        collate_fn=_collate)
    for good, bad in loader:
        yield from bad
        if not good:
            continue
        images, targets = torch.stack([g[1] for g in good]), torch.stack([g[2] for g in good])
        views = [encode_pair_latents(components.vae, images, targets, device)]
        if flip:
            views.append(encode_pair_latents(components.vae, images.flip(-1), targets.flip(-1), device))
        stacked = np.stack([np.stack([view[name] for name in _ARRAYS], axis=1) for view in views], axis=1)
        for (_, _, _, prompt, meta), latents in zip(good, stacked.astype(np.float16), strict=True):
            meta = {**meta, "prompt": prompts.setdefault(prompt["edit"], len(prompts)), "edit": prompt["edit"]}
            yield PackedSample({"latents.npy": npy_bytes(latents), "json": json.dumps(meta, sort_keys=True).encode()},
                               str(meta["task"]), str(meta["dataset"]))


def pack_latents(roots: Sequence[str | os.PathLike], out: str | os.PathLike, shard_size: int, components,
                 resolution: int, *, flip: bool = True, batch_size: int = 16, device: str | torch.device = "cpu",
                 workers: int = 0, progress: bool = True) -> dict[str, Any]:
    """Encode the pairs of ``roots`` (pooled) with ``components`` and pack them as latent shards into ``out``."""
    out = Path(out)
    check_out(out, roots)
    if resolution % components.vae_scale_factor:
        raise ValueError(f"resolution {resolution} is not a multiple of the VAE's factor {components.vae_scale_factor}")
    items = pool_records(roots)
    out.mkdir(parents=True, exist_ok=True)
    device = torch.device(device)
    components.vae.to(device)
    components.text_encoder.to(device)
    prompts: dict[str, int] = {}
    samples = encode_samples(items, components, resolution, flip, batch_size, device, workers, prompts)
    stats = write_shards(samples, out, shard_size, total=len(items), progress=progress)
    texts = sorted(prompts, key=prompts.get)
    with atomic_path(out / TEXT_EMBEDDINGS) as tmp, open(tmp, "wb") as f:
        np.save(f, embed_prompts(components, texts, device).astype(np.float16), allow_pickle=False)
    latent = resolution // components.vae_scale_factor
    return write_index(out, stats, roots, "latents", {
        "resolution": resolution, "orientations": 2 if flip else 1, "arrays": list(_ARRAYS),
        "latent_shape": [components.vae.config.latent_channels, latent, latent],
        "fingerprint": fingerprint(components, resolution), "text_embeddings": TEXT_EMBEDDINGS, "prompts": texts,
    })
