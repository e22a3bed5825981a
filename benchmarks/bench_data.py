"""Training data pipeline: pairs folders vs image shards vs latent shards (samples/s, files opened, bytes on disk).

Writes ``--n`` synthetic pairs (``--size`` px noisy images with a red square, its mask as the target;
no format_dataset.py run, only the pairs layout), packs them with ``dataset_creation/pack_pairs.py``'s
functions into image shards and latent shards, then measures, each in this process (``--threads``):

- one epoch of training batches (decode, resize to ``--resolution``, flip, tokenise; latents: arrays
  and text embeddings) from each source: samples/s and the files opened (``open`` calls counted);
- samples/s "into the UNet's input": the same batches turned into latents, i.e. images through the
  VAE encoder (``--vae``: the configs/tiny.yaml VAE, or sd15 = the full SD v1.5 VAE, random weights)
  and latent shards as they come; at most ``--seconds`` per source;
- files and bytes on disk (allocated blocks, where small files pay).

The latent shards are encoded by a minimal VAE with the same latent shape (4 x res/8 x res/8): reading
cost depends on the shapes, not the values, and a real VAE would take the CPU far longer than the read.

Examples:
  .venv/bin/python benchmarks/bench_data.py                         # 20,000 pairs of 64 px (~8 min on 2 busy cores)
  .venv/bin/python benchmarks/bench_data.py --n 2000 --seconds 10   # a quick look
  .venv/bin/python benchmarks/bench_data.py --vae sd15 --seconds 60
"""

from __future__ import annotations

import argparse
import builtins
import contextlib
import io
import json
import os
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from dataset_creation.shard_latents import pack_latents  # noqa: E402
from dataset_creation.shards import pack_images  # noqa: E402
from instructcv import pairs  # noqa: E402
from instructcv.pairs import scan_pairs  # noqa: E402
from ldm.components import build_random_components  # noqa: E402
from ldm.data import PairsDataset  # noqa: E402
from ldm.latent_cache import encode_pair_latents  # noqa: E402
from ldm.shard_reader import open_shards  # noqa: E402
from ldm.shards import ShardsDataset  # noqa: E402

MICRO_VAE = {"vae": {"block_out_channels": [4, 4, 4, 4], "layers_per_block": 1, "norm_num_groups": 2,
                     "mid_block_add_attention": False,
                     "down_block_types": ["DownEncoderBlock2D"] * 4, "up_block_types": ["UpDecoderBlock2D"] * 4}}
TINY_VAE = {"vae": {"block_out_channels": [16, 16, 32, 32], "down_block_types": ["DownEncoderBlock2D"] * 4,
                    "up_block_types": ["UpDecoderBlock2D"] * 4}}


def write_synthetic_pairs(root: Path, n: int, size: int, seed: int = 0) -> Path:
    """``n`` pairs in the pairs layout: noisy input with a red square, its white mask as the target."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    prompts = ["Segment the red square.", "Show the red square as a white mask."]
    rows = []
    for i in range(n):
        stem = f"syn_{i:06d}"
        sample = f"{stem}_seg_red_square"
        record = pairs.PairSample(root, sample, stem)
        record.folder.mkdir(parents=True, exist_ok=True)
        image = rng.integers(0, 120, (size, size, 3), dtype=np.uint8)
        x, y = rng.integers(0, size // 2, 2)
        image[y:y + size // 3, x:x + size // 3] = (255, 0, 0)
        mask = np.zeros((size, size), np.uint8)
        mask[y:y + size // 3, x:x + size // 3] = 255
        Image.fromarray(image).save(record.input_path, quality=90)
        Image.fromarray(mask).save(record.target_path)
        record.prompt_path.write_text(json.dumps(pairs.prompt_entry(prompts[i % 2], "seg", "red square", "synthetic")))
        rows.append({"sample": sample, "stem": stem, "task": "seg", "dataset": "synthetic", "class": "red square"})
    pairs.write_index(root, rows)
    return root


def disk_usage(root: Path) -> tuple[int, int, int]:
    """(files, apparent bytes, allocated bytes) under ``root``."""
    files = apparent = allocated = 0
    for dirpath, _, names in os.walk(root):
        for name in names:
            st = os.stat(os.path.join(dirpath, name))
            files, apparent, allocated = files + 1, apparent + st.st_size, allocated + st.st_blocks * 512
    return files, apparent, allocated


@contextlib.contextmanager
def count_opens() -> Iterator[list[int]]:
    """Count ``open`` calls (builtins.open and io.open: PIL, pathlib and the shard reader all go through them)."""
    count = [0]
    original = builtins.open

    def counting_open(*args, **kwargs):
        count[0] += 1
        return original(*args, **kwargs)

    builtins.open = io.open = counting_open
    try:
        yield count
    finally:
        builtins.open = io.open = original


def loaders(args: argparse.Namespace, pairs: Path, shards: Path, latents: Path, comps) -> dict:
    """A fresh one-epoch batch iterator per source (single process: every open is counted here)."""
    from torch.utils.data import DataLoader


    def pairs_epoch():
        records, _ = scan_pairs([pairs])
        return iter(DataLoader(PairsDataset(records, comps.tokenizer, args.resolution), batch_size=args.batch,
                               shuffle=True, drop_last=True, num_workers=0))

    def shards_epoch(root: Path):
        def make():
            ds = ShardsDataset(open_shards([root]), batch_size=args.batch, resolution=args.resolution,
                               tokenizer=comps.tokenizer, shuffle_buffer=1000)
            return iter(ds)
        return make

    return {"pairs": pairs_epoch, "image shards": shards_epoch(shards), "latent shards": shards_epoch(latents)}


def timed(batches: Iterator, seconds: float | None, work=None) -> tuple[int, float]:
    """(samples, seconds) over ``batches`` until exhausted or ``seconds`` have passed."""
    samples, start = 0, time.perf_counter()
    for batch in batches:
        if work is not None:
            work(batch)
        samples += len(batch["key"])
        if seconds is not None and time.perf_counter() - start > seconds:
            break
    return samples, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=20000, help="synthetic pairs (default 20000)")
    parser.add_argument("--size", type=int, default=64, help="stored image size in px (default 64)")
    parser.add_argument("--resolution", type=int, default=64, help="training resolution (default 64)")
    parser.add_argument("--batch", type=int, default=32, help="batch size (default 32)")
    parser.add_argument("--vae", choices=["tiny", "sd15"], default="tiny", help="VAE for images -> UNet input")
    parser.add_argument("--seconds", type=float, default=20, help="time limit per 'into the UNet' measurement")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: a shared machine)")
    parser.add_argument("--work", default="/tmp/instructcv_bench_data", help="scratch folder (removed first)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args(argv)

    import torch


    torch.set_num_threads(args.threads)
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    figures: dict = {"n": args.n, "size": args.size, "resolution": args.resolution, "batch": args.batch,
                     "vae": args.vae, "threads": args.threads}
    t = time.perf_counter()
    pairs = write_synthetic_pairs(work / "pairs", args.n, args.size)
    figures["write_pairs_s"] = time.perf_counter() - t
    t = time.perf_counter()
    pack_images([pairs], work / "shards", shard_size=64 * 10**6, workers=1, progress=False)
    figures["pack_images_s"] = time.perf_counter() - t
    micro = build_random_components("tiny", seed=0, overrides=MICRO_VAE)
    t = time.perf_counter()
    pack_latents([pairs], work / "latents", 64 * 10**6, micro, args.resolution, flip=True, batch_size=64,
                 workers=1, progress=False)
    figures["pack_latents_s"] = time.perf_counter() - t
    print(f"wrote {args.n} pairs in {figures['write_pairs_s']:.0f} s, packed images in {figures['pack_images_s']:.0f} s, "
          f"latents (both orientations, minimal VAE) in {figures['pack_latents_s']:.0f} s", flush=True)

    comps = build_random_components("tiny", seed=0, overrides=TINY_VAE)  # its tokenizer is CLIP's
    vae = comps.vae
    if args.vae == "sd15":
        from diffusers import AutoencoderKL

        vae = AutoencoderKL.from_config(AutoencoderKL.load_config(REPO / "configs" / "sd15" / "vae")).eval()
    sources = loaders(args, pairs, work / "shards", work / "latents", comps)

    def to_unet_input(batch):
        if "input" in batch:
            encode_pair_latents(vae, batch["input"], batch["target"], "cpu")

    rows = {}
    for name, make in sources.items():
        with count_opens() as opens:
            samples, seconds = timed(make(), None)
        into, into_seconds = timed(make(), args.seconds, to_unet_input)
        files, apparent, allocated = disk_usage({"pairs": pairs, "image shards": work / "shards",
                                                 "latent shards": work / "latents"}[name])
        rows[name] = {"samples_per_s": samples / seconds, "epoch_samples": samples, "files_opened": opens[0],
                      "into_unet_samples_per_s": into / into_seconds, "files": files, "bytes": apparent,
                      "bytes_allocated": allocated}
        r = rows[name]
        print(f"{name:14s} {r['samples_per_s']:8.0f} samples/s  {r['into_unet_samples_per_s']:7.1f} samples/s into "
              f"the UNet ({args.vae} VAE)  {r['files_opened']:6d} files opened/epoch  {files:6d} files  "
              f"{apparent / 1e6:7.1f} MB ({allocated / 1e6:.1f} MB allocated)", flush=True)
    figures["sources"] = rows
    p, s, lat = rows["pairs"], rows["image shards"], rows["latent shards"]
    print(f"shards vs pairs: {s['samples_per_s'] / p['samples_per_s']:.2f}x samples/s, "
          f"{p['files_opened'] / max(1, s['files_opened']):.0f}x fewer files opened; latent shards vs image shards "
          f"into the UNet: {lat['into_unet_samples_per_s'] / s['into_unet_samples_per_s']:.1f}x")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1))
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
