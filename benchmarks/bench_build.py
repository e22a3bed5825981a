"""Pairs-building speed and size: format_dataset on a synthetic COCO (dataset_creation/synthetic.py).

Writes a synthetic COCO train2017 of ``--images`` 640x480 images, builds its pairs with ``--workers``
processes and prints samples per second and bytes on disk. Targets (issue 3): >= 25 det samples/s
with 2 workers; total bytes <= 1.3 x (distinct input JPEGs + targets), i.e. an input is stored once
however many samples use it (hard links are counted once). Also times a re-run, which must write
nothing.

Example:
  .venv/bin/python benchmarks/bench_build.py                      # 240 images, det, 2 workers
  .venv/bin/python benchmarks/bench_build.py --tasks det seg cls --workers 4
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dataset_creation.format_dataset import build  # noqa: E402
from dataset_creation.synthetic import write_coco  # noqa: E402
from dataset_creation.writer import IMAGES_DIR  # noqa: E402
from instructcv.pairs import is_input_file, is_target_file  # noqa: E402


def disk_bytes(root: Path) -> tuple[int, int, int, int]:
    """(apparent bytes, allocated bytes, stored-input bytes, target bytes) with each inode counted once."""
    seen: set[int] = set()
    apparent = allocated = inputs = targets = 0
    for p in root.rglob("*"):
        st = p.lstat()
        if st.st_ino in seen:
            continue
        seen.add(st.st_ino)
        allocated += st.st_blocks * 512
        if p.is_file():
            apparent += st.st_size
            if IMAGES_DIR in p.parts or is_input_file(p.name):  # the store, or a link to it seen first
                inputs += st.st_size
            elif is_target_file(p.name):
                targets += st.st_size
    return apparent, allocated, inputs, targets


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=int, default=240, help="synthetic COCO train images (default 240)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--tasks", nargs="+", default=["det"])
    p.add_argument("--out", help="keep the raw data and pairs here instead of a temporary folder")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.out) if args.out else Path(tmp)
        start = time.perf_counter()
        write_coco(root / "coco", num_train=args.images, num_eval=0, size=(640, 480), seed=0)
        raw_jpegs = sum(f.stat().st_size for f in (root / "coco" / "train2017").iterdir())
        print(f"setup: synthetic COCO, {args.images} images 640x480 ({raw_jpegs / 1e6:.1f} MB of JPEG) "
              f"in {time.perf_counter() - start:.1f} s")  # fmt: skip

        report = build(root / "pairs", [root / "coco"], args.tasks, split="train", workers=args.workers,
                       progress=False)  # fmt: skip
        per_task = Counter()
        for (_, _, task), n in report.written.items():
            per_task[task] += n
        rate = report.n_written / report.seconds
        print(f"build: {report.n_written} samples ({', '.join(f'{t} {n}' for t, n in sorted(per_task.items()))}) "
              f"in {report.seconds:.1f} s with {args.workers} worker(s): {rate:.1f} samples/s "
              f"(target for det with 2 workers: >= 25)")  # fmt: skip

        apparent, allocated, inputs, targets = disk_bytes(root / "pairs")
        ratio = apparent / (inputs + targets)
        print(f"bytes: {apparent / 1e6:.1f} MB in files ({allocated / 1e6:.1f} MB allocated on disk), "
              f"stored inputs {inputs / 1e6:.1f} MB (raw JPEGs {raw_jpegs / 1e6:.1f} MB), targets {targets / 1e6:.1f} MB; "
              f"total / (inputs + targets) = {ratio:.3f} in files, {allocated / (inputs + targets):.3f} on disk "
              "(target <= 1.3)")  # fmt: skip

        again = build(root / "pairs", [root / "coco"], args.tasks, split="train", workers=args.workers,
                      progress=False)  # fmt: skip
        print(f"re-run: {again.n_written} written, {again.n_present} already present, "
              f"index {'changed' if again.index.changed else 'unchanged'}, {again.seconds:.1f} s")  # fmt: skip


if __name__ == "__main__":
    main()
