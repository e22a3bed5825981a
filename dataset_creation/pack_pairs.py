"""Pack pairs folders into WebDataset tar shards for training at scale: the command line.

Millions of small files (a folder per pair) are what stalls multi-node training on a shared file
system; shards are a few large files that ranks stream. Training reads them with
``main.py ... data.params.shards=[<out>]``. The format: ``dataset_creation/shards.py`` (images) and
``dataset_creation/shard_latents.py`` (``--latents``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

try:  # run as a script from anywhere, with or without the package installed
    import dataset_creation  # noqa: F401
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dataset_creation.shards import DEFAULT_SHARD_SIZE, pack_images, parse_size
from instructcv.cli import EXIT_OK, EXIT_PARTIAL, UsageError, run, setup_logging

EXAMPLES = """\
examples:
  # pool the training pairs of two folders into 1 GB shards
  python dataset_creation/pack_pairs.py --pairs ./image_pairs ./image_pairs_nyu --out ./shards --workers 8

  # VAE latents and instruction embeddings instead of images (both flip orientations), SD v1.5 at 256 px
  python dataset_creation/pack_pairs.py --pairs ./image_pairs --out ./shards_latents --latents \\
      --ckpt checkpoints/v1-5-pruned-emaonly.safetensors --resolution 256

  # then train from them
  python main.py --name exp --base configs/train.yaml --train --gpus 0,1,2,3 data.params.pairs=[] data.params.shards=[./shards]
"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Pack one or more pairs folders (pooled) into WebDataset tar shards plus index.json.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", nargs="+", required=True, metavar="DIR", help="pairs folders (format_dataset.py)")
    parser.add_argument("--out", required=True, metavar="DIR", help="shards folder (shard-000000.tar ..., index.json)")
    parser.add_argument("--shard-size", default=DEFAULT_SHARD_SIZE,
                        help=f"largest shard, e.g. 500MB, 2GiB (default {DEFAULT_SHARD_SIZE})")
    parser.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1),
                        help="processes reading (and checking) pairs (default: up to 8)")
    parser.add_argument("--latents", action="store_true", help="pack VAE latents + instruction embeddings (needs --ckpt)")
    parser.add_argument("--ckpt", metavar="MODEL", help="the model whose VAE and text encoder encode (--latents)")
    parser.add_argument("--resolution", type=int, default=256, help="--latents: square training size (default 256)")
    parser.add_argument("--no-flip", action="store_true", help="--latents: only the stored orientation, no mirrored copy")
    parser.add_argument("--batch-size", type=int, default=16, help="--latents: pairs per VAE batch (default 16)")
    parser.add_argument("--device", default="auto", help="--latents: cpu, cuda, cuda:1 ... (default: cuda if any)")
    parser.add_argument("--allow-unsafe-pickle", action="store_true", help="--ckpt files that need full unpickling")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser.parse_args(argv)


def pack_latents_cli(args: argparse.Namespace, shard_size: int) -> dict:
    import torch

    from dataset_creation.shard_latents import pack_latents
    from ldm.loading import load_components

    if not args.ckpt:
        raise UsageError("--latents needs --ckpt <model> (its VAE and text encoder encode the pairs)")
    device = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    components = load_components(args.ckpt, allow_unsafe_pickle=args.allow_unsafe_pickle)
    try:
        return pack_latents(args.pairs, args.out, shard_size, components, args.resolution, flip=not args.no_flip,
                            batch_size=args.batch_size, device=device, workers=min(args.workers, 4),
                            progress=not args.quiet)
    except ValueError as e:
        raise UsageError(f"--resolution {args.resolution}: {e}") from None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logging()
    shard_size = parse_size(args.shard_size)
    if args.ckpt and not args.latents:
        raise UsageError("--ckpt is for --latents (image shards need no model)")
    start = time.perf_counter()
    if args.latents:
        index = pack_latents_cli(args, shard_size)
    else:
        index = pack_images(args.pairs, args.out, shard_size, workers=args.workers, progress=not args.quiet)
    counts = ", ".join(f"{task} {sum(d.values())}" for task, d in index["counts"].items()) or "nothing"
    skipped = len(index["skipped"])
    print(f"packed {index['samples']} {index['kind']} samples ({counts}) into {len(index['shards'])} shards, "
          f"{index['bytes'] / 1e6:.1f} MB, {skipped} left out, {time.perf_counter() - start:.0f} s: {args.out}")
    return EXIT_PARTIAL if skipped else EXIT_OK


if __name__ == "__main__":
    run(main)
