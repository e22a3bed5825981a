"""Synthetic dataset generation speed: images per second for each dataset writer, and a 200-image 640x480 COCO.

Target: >= 200 COCO images of 640x480 in well under a minute on one core. Each writer runs into a
fresh temporary folder, then once more into the same folder (the idempotent re-run: nothing written).

Example:
  .venv/bin/python benchmarks/bench_synthetic.py            # all writers at 256 px plus the COCO 640x480 run
  .venv/bin/python benchmarks/bench_synthetic.py --quick    # fewer images
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dataset_creation import synthetic  # noqa: E402


def timed(name: str, root: Path, **kwargs) -> tuple[float, dict]:
    start = time.perf_counter()
    summary = synthetic.WRITERS[name](root, **kwargs)
    return time.perf_counter() - start, summary


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="20 images per writer and 60 COCO images")
    args = parser.parse_args()
    per_writer = 20 if args.quick else 50
    coco_n = 60 if args.quick else 200
    with tempfile.TemporaryDirectory() as tmp:
        print(
            f"{'dataset':10s} {'images':>6s} {'s':>7s} {'img/s':>7s} {'MB':>6s} {'re-run s':>9s} {'rewritten':>9s}"
        )
        for name in synthetic.DATASETS:
            root = Path(tmp) / name
            size = synthetic.NYU_SIZE if name == "nyuv2" else 256
            kwargs = dict(num_train=per_writer - per_writer // 5, num_eval=per_writer // 5, size=size, seed=0)
            seconds, summary = timed(name, root, **kwargs)
            again, second = timed(name, root, **kwargs)
            n = sum(summary["images"].values())
            print(f"{name:10s} {n:6d} {seconds:7.2f} {n / seconds:7.1f} {summary['bytes'] / 1e6:6.1f} "
                  f"{again:9.2f} {second['written']:9d}")  # fmt: skip
        seconds, summary = timed(
            "coco", Path(tmp) / "coco640", num_train=coco_n, num_eval=0, size=(640, 480), seed=0
        )
        print(f"\nCOCO {coco_n} images of 640x480: {seconds:.1f} s ({coco_n / seconds:.1f} img/s, "
              f"{summary['bytes'] / 1e6:.1f} MB); target: 200 images well under 60 s")  # fmt: skip


if __name__ == "__main__":
    main()
