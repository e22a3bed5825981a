"""Scoring speed of evaluate.py: queries per second for each task and dataset, answers already on disk.

Builds synthetic eval pairs (dataset_creation/synthetic.py + format_dataset) in a temporary folder,
writes the targets as answers (JPEG, as a model's would be) and times ``evaluation.scoring.score_queries``
per (task, dataset): ground truth read from the raw files through the readers, answer decoded, metric
accumulated and computed. What it shows: whether scoring a full benchmark (COCO val 5k images, ADE20K
2k images with ~10 classes each) takes minutes, not hours, next to the model's own time.

Example:
  .venv/bin/python benchmarks/bench_eval.py            # 20 eval images per dataset, 640x480 (NYUv2 640x480)
  .venv/bin/python benchmarks/bench_eval.py --quick    # 6 images per dataset at 256 px
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PIL import Image  # noqa: E402

from dataset_creation.format_dataset import build  # noqa: E402
from dataset_creation.synthetic import write_all  # noqa: E402
from evaluation.answers import answer_index  # noqa: E402
from evaluation.pairs import read_pairs, target_path  # noqa: E402
from evaluation.queries import build_queries  # noqa: E402
from evaluation.scoring import score_queries  # noqa: E402

DATASETS = ("coco", "ade20k", "pets", "nyuv2", "voc", "sunrgbd")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="6 images per dataset at 256 px")
    args = parser.parse_args()
    n, size = (6, 256) if args.quick else (20, (640, 480))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        start = time.perf_counter()
        write_all(root / "raw", DATASETS, num_train=0, num_eval=n, size=size, seed=0, progress=False)
        for name in DATASETS:
            build(root / "pairs", [root / "raw" / name], dataset=name, split="eval", progress=False)
        rows = read_pairs(root / "pairs")
        answers = root / "answers"
        answers.mkdir()
        for row in rows:
            Image.open(target_path(root / "pairs", row)).convert("RGB").save(
                answers / f"{row['sample']}.jpg", quality=90
            )
        print(
            f"setup: {len(rows)} pairs samples from {n} images per dataset in {time.perf_counter() - start:.1f} s"
        )
        qs = build_queries(rows)
        index = answer_index(answers)
        groups = sorted({(q["task"], q["dataset"]) for q in qs.queries})
        print(f"{'task':6s} {'dataset':8s} {'queries':>7s} {'s':>7s} {'queries/s':>9s} {'ms/query':>9s}")
        total_q, total_s = 0, 0.0
        for task, dataset in groups:
            queries = [
                q for q in qs.queries if (q["task"], q["dataset"]) == (task, dataset) and not q.get("absent")
            ]
            t0 = time.perf_counter()
            score_queries(queries, root / "pairs", index, classes=qs.classes, progress=False)
            s = time.perf_counter() - t0
            total_q, total_s = total_q + len(queries), total_s + s
            print(
                f"{task:6s} {dataset:8s} {len(queries):7d} {s:7.2f} {len(queries) / s:9.1f} {1000 * s / len(queries):9.1f}"
            )
        print(f"all: {total_q} queries scored in {total_s:.1f} s ({total_q / total_s:.1f} queries/s)")


if __name__ == "__main__":
    main()
