"""VAE latents and CLIP text embeddings of a pairs folder, computed once so a training step runs only the UNet.

On disk, beside the pairs: ``<pairs>/.latent_cache/<fingerprint>/shard-<id>/`` with

- ``input_mode.npy``   (N, O, 4, h, w) float16: the input image's VAE posterior mode, *unscaled* (what the
  UNet's extra channels receive, as in InstructPix2Pix);
- ``target_mean.npy``, ``target_std.npy`` (N, O, 4, h, w) float16: the target's posterior mean and standard
  deviation, unscaled. A fresh target latent ``(mean + std * noise) * scaling_factor`` is drawn every
  step, exactly as training from images does (``latent_dist.sample()``);
- ``text_embeddings.npy`` (P, 77, D) float16, one per distinct instruction, and ``prompt_index.npy`` (N,);
- ``index.json``: pair keys and the size/mtime stamps of their files (written last).

The fingerprint hashes the VAE and text-encoder weights, the resolution and this format's version, so a
different VAE or resolution gets a new folder. A pair whose files changed since it was encoded (other
stamps) is encoded again into a new shard; shards are written under a temporary name and renamed.
Orientations ``O``: 1, or 2 when the data are flipped (``flip``): index 1 holds the encodings of the
horizontally flipped images. The VAE is not mirror-symmetric, so a flipped latent is not the latent of
the flipped image; a flipped training sample takes the encodings of the flipped pair, as training from
images would.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.lib.format import open_memmap
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from instructcv.cli import UsageError
from instructcv.images import ImageReadError
from instructcv.io import write_json
from instructcv.pairs import PairSample, read_prompt
from ldm.batch import load_pair_images, to_model_range, tokenize

log = logging.getLogger(__name__)

CACHE_DIRNAME = ".latent_cache"
CACHE_FORMAT = 2  # 2: an orientation axis (flipped pairs encoded, not flipped latents)
_ARRAYS = ("input_mode", "target_mean", "target_std")


def fingerprint(components, resolution: int) -> str:
    """16 hex digits identifying (VAE weights, text-encoder weights, tokenizer length, resolution, format)."""
    h = hashlib.sha256(f"instructcv-latent-cache/{CACHE_FORMAT}/{resolution}/"
                       f"{components.tokenizer.model_max_length}".encode())
    for module in (components.vae, components.text_encoder):
        for name, tensor in sorted(module.state_dict().items()):
            h.update(name.encode())
            h.update(str(tensor.dtype).encode())
            h.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


def file_stamp(record: PairSample) -> list[int]:
    """Sizes and modification times of a pair's three files; a change means: encode it again."""
    stamp = []
    for path in record.files:
        st = path.stat()
        stamp += [st.st_size, st.st_mtime_ns]
    return stamp


def cache_root(pairs_root: Path, fp: str) -> Path:
    return Path(pairs_root) / CACHE_DIRNAME / fp


def orientations(flip: bool) -> int:
    """How many orientations a cache holds: the pair as is, and flipped when training flips."""
    return 2 if flip else 1


def _read_index(root: Path) -> dict[str, list[tuple[Path, int, list[int], int]]]:
    """key -> [(shard dir, row, stamp, orientations), ...] over every complete shard under ``root``."""
    entries: dict[str, list[tuple[Path, int, list[int], int]]] = defaultdict(list)
    if not root.is_dir():
        return entries
    for shard in sorted(root.glob("shard-*")):
        index_file = shard / "index.json"
        if not index_file.is_file():
            continue
        index = json.loads(index_file.read_text())
        if index.get("format") != CACHE_FORMAT:
            continue
        for key, row, stamp in zip(index["keys"], index["rows"], index["stamps"], strict=True):
            entries[key].append((shard, row, stamp, index["orientations"]))
    return entries


def _lookup(entries, record: PairSample, stamp: list[int], needed: int) -> tuple[Path, int] | None:
    for shard, row, cached_stamp, held in reversed(entries.get(record.key, ())):
        if cached_stamp == stamp and held >= needed:
            return shard, row
    return None


class _EncodeInputs(Dataset):
    def __init__(self, records: Sequence[PairSample], resolution: int):
        self.records, self.resolution = list(records), resolution

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int):
        record = self.records[i]
        try:
            image, target = load_pair_images(record, self.resolution)
            return i, to_model_range(image), to_model_range(target), read_prompt(record)
        except ImageReadError as e:
            return i, None, None, str(e)


def _collate(items):
    good = [it for it in items if it[1] is not None]
    bad = [(it[0], it[3]) for it in items if it[1] is None]
    if not good:
        return None, None, None, [], bad
    return (torch.tensor([it[0] for it in good]), torch.stack([it[1] for it in good]),
            torch.stack([it[2] for it in good]), [it[3] for it in good], bad)


@torch.no_grad()
def _encode_shard(records: list[PairSample], stamps: list[list[int]], components, resolution: int, out: Path,
                  batch_size: int, device: torch.device, num_workers: int, progress: bool, n_orient: int) -> int:
    """Encode ``records`` (and their flipped images when ``n_orient`` is 2) into the shard folder ``out``;
    returns how many pairs were unreadable."""
    vae, text_encoder = components.vae, components.text_encoder
    latent = resolution // components.vae_scale_factor
    channels = vae.config.latent_channels
    arrays = {name: open_memmap(out / f"{name}.npy", mode="w+", dtype=np.float16,
                                shape=(len(records), n_orient, channels, latent, latent)) for name in _ARRAYS}
    prompts: list[str | None] = [None] * len(records)
    loader = DataLoader(_EncodeInputs(records, resolution), batch_size=batch_size, num_workers=num_workers,
                        collate_fn=_collate)
    bad_rows: list[int] = []
    for rows, images, targets, batch_prompts, bad in tqdm(loader, desc=f"latent cache {out.parent.parent.parent.name}",
                                                           unit="batch", disable=not progress):
        for row, message in bad:
            log.warning("%s; pair left out of the latent cache", message)
            bad_rows.append(row)
        if rows is None:
            continue
        rows_np = rows.numpy()
        for o in range(n_orient):  # orientation 1: the flipped pair, encoded (not the flipped latents)
            pair = (images, targets) if o == 0 else (images.flip(-1), targets.flip(-1))
            latents = encode_pair_latents(vae, *pair, device)
            for name in _ARRAYS:
                arrays[name][rows_np, o] = latents[name]
        for row, prompt in zip(rows.tolist(), batch_prompts, strict=True):
            prompts[row] = prompt

    distinct = sorted({p for p in prompts if p is not None})
    prompt_ids = {p: i for i, p in enumerate(distinct)}
    dim = text_encoder.config.hidden_size
    text = open_memmap(out / "text_embeddings.npy", mode="w+", dtype=np.float16,
                       shape=(len(distinct), components.tokenizer.model_max_length, dim))
    text[:] = embed_prompts(components, distinct, device)
    np.save(out / "prompt_index.npy", np.array([prompt_ids.get(p, -1) for p in prompts], dtype=np.int32))
    for array in (*arrays.values(), text):
        array.flush()

    keep = [i for i in range(len(records)) if prompts[i] is not None]
    write_json(out / "index.json", {
        "format": CACHE_FORMAT, "resolution": resolution, "scaling": "unscaled", "orientations": n_orient,
        "keys": [records[i].key for i in keep], "rows": keep, "stamps": [stamps[i] for i in keep],
    })
    return len(bad_rows)


def build_latent_cache(records: Sequence[PairSample], components, resolution: int, *, batch_size: int = 16,
                       device: torch.device | str = "cpu", num_workers: int = 2, progress: bool = True,
                       flip: bool = True) -> int:
    """Encode every pair of ``records`` not yet cached (or changed since, or cached without its flipped
    images when ``flip``); returns how many were encoded."""
    fp = fingerprint(components, resolution)
    needed = orientations(flip)
    by_root: dict[Path, list[PairSample]] = defaultdict(list)
    for record in records:
        by_root[record.root].append(record)
    device = torch.device(device)
    moved = []
    encoded = 0
    try:
        for root, group in by_root.items():
            target_dir = cache_root(root, fp)
            entries = _read_index(target_dir)
            stamps = [file_stamp(r) for r in group]
            todo = [(r, s) for r, s in zip(group, stamps, strict=True) if _lookup(entries, r, s, needed) is None]
            if not todo:
                log.info("latent cache %s: all %d pairs cached", target_dir, len(group))
                continue
            for module in (components.vae, components.text_encoder):
                if module.device != device:
                    moved.append((module, module.device))
                    module.to(device)
            shard_id = hashlib.sha256(json.dumps([needed, [[r.key, s] for r, s in todo]]).encode()).hexdigest()[:16]
            final = target_dir / f"shard-{len(list(target_dir.glob('shard-*'))):05d}-{shard_id}"
            target_dir.mkdir(parents=True, exist_ok=True)
            tmp = target_dir / f".tmp-{shard_id}-{os.getpid()}"
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir()
            try:
                bad = _encode_shard([r for r, _ in todo], [s for _, s in todo], components, resolution, tmp,
                                    batch_size, device, num_workers, progress, needed)
                if any(target_dir.glob(f"shard-*-{shard_id}")):  # another process wrote the same shard
                    shutil.rmtree(tmp)
                else:
                    os.rename(tmp, final)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            encoded += len(todo) - bad
            log.info("latent cache %s: encoded %d pairs (%d unreadable)", target_dir, len(todo) - bad, bad)
    finally:
        for module, original in moved:
            module.to(original)
    return encoded


class LatentCache:
    """Where each pair's cached arrays are; opens the shard arrays memory-mapped, lazily, per process."""

    def __init__(self, locations: list[tuple[Path, int]], keys: list[str]):
        self.locations = locations
        self.keys = keys
        self._open: dict[Path, dict[str, np.ndarray]] = {}

    def __len__(self) -> int:
        return len(self.locations)

    def __getstate__(self):  # data-loader workers reopen the memory maps themselves
        return {"locations": self.locations, "keys": self.keys, "_open": {}}

    def arrays(self, shard: Path) -> dict[str, np.ndarray]:
        if shard not in self._open:
            self._open[shard] = {name: np.load(shard / f"{name}.npy", mmap_mode="r")
                                 for name in (*_ARRAYS, "text_embeddings", "prompt_index")}
        return self._open[shard]

    def item(self, i: int, flipped: bool = False) -> dict[str, torch.Tensor]:
        """Pair ``i``'s latents and text embedding; ``flipped``: those of its horizontally flipped images."""
        shard, row = self.locations[i]
        a = self.arrays(shard)
        item = {name: torch.from_numpy(np.array(a[name][row, int(flipped)])) for name in _ARRAYS}
        item["text_embedding"] = torch.from_numpy(np.array(a["text_embeddings"][a["prompt_index"][row]]))
        return item


def open_latent_cache(records: Sequence[PairSample], components, resolution: int, flip: bool = True) -> LatentCache:
    """The cache entries of ``records`` (built by ``build_latent_cache`` with the same ``flip``); uncached
    pairs are left out."""
    fp = fingerprint(components, resolution)
    needed = orientations(flip)
    by_root: dict[Path, dict] = {}
    locations, keys, missing = [], [], 0
    for record in records:
        if record.root not in by_root:
            by_root[record.root] = _read_index(cache_root(record.root, fp))
        found = _lookup(by_root[record.root], record, file_stamp(record), needed)
        if found is None:
            missing += 1
        else:
            locations.append(found)
            keys.append(record.key)
    if not locations:
        roots = ", ".join(str(cache_root(r, fp)) for r in by_root)
        raise UsageError(f"latent cache {roots} is empty for these pairs; build it with main.py --build-cache")
    if missing:
        log.warning("%d pairs are not in the latent cache (unreadable or added since) and are left out", missing)
    return LatentCache(locations, keys)


class CachedPairsDataset(Dataset):
    """Training items from the latent cache: latents and text embedding, of the flipped pair half the time,
    and the pair's task (``tasks``, in cache order)."""

    def __init__(self, cache: LatentCache, flip: bool = True, tasks: Sequence[str | None] | None = None):
        self.cache, self.flip = cache, flip
        self.tasks = list(tasks) if tasks is not None else [None] * len(cache)

    def __len__(self) -> int:
        return len(self.cache)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = self.cache.item(index, flipped=bool(self.flip and torch.rand(()) < 0.5))
        item["key"], item["task"] = self.cache.keys[index], self.tasks[index] or ""  # collate takes no None
        return item


# ---- encoding shared with dataset_creation/shard_latents.py (latent shards) ---------------------


@torch.no_grad()
def encode_pair_latents(vae, images: torch.Tensor, targets: torch.Tensor,
                        device: torch.device | str) -> dict[str, np.ndarray]:
    """The cached arrays of a batch of pairs (images in [-1, 1]): input mode, target mean and std, unscaled."""
    posterior = vae.encode(torch.cat([images, targets]).to(device=device, dtype=vae.dtype)).latent_dist
    n = len(images)
    return {"input_mode": posterior.mode()[:n].float().cpu().numpy(),
            "target_mean": posterior.mean[n:].float().cpu().numpy(),
            "target_std": posterior.std[n:].float().cpu().numpy()}


@torch.no_grad()
def embed_prompts(components, prompts: Sequence[str], device: torch.device | str) -> np.ndarray:
    """CLIP embeddings ``(P, 77, D)`` float32 of ``prompts``, 64 at a time."""
    dim = components.text_encoder.config.hidden_size
    out = np.zeros((len(prompts), components.tokenizer.model_max_length, dim), np.float32)
    for start in range(0, len(prompts), 64):
        ids = tokenize(components.tokenizer, list(prompts[start:start + 64])).to(device)
        out[start:start + len(ids)] = components.text_encoder(ids)[0].float().cpu().numpy()
    return out
