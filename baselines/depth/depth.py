"""Score DPT, GLPN or Depth Anything on NYUv2 or SUN RGB-D with the shared depth metrics.

    python baselines/depth/depth.py --model glpn --dataset nyuv2
    python baselines/depth/depth.py --model depth-anything --dataset sunrgbd --data_root data/SUNRGBD
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

if __package__ in (None, ""):  # run as a script: make the project importable without installing it
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from baselines.common import (
    Skipped,
    Timer,
    add_runtime_args,
    default_result_path,
    prepare,
    run_meta,
    run_name,
    write_result,
)
from baselines.eval_data import eval_images, load_truth
from dataset_creation.readers.base import SampleError
from instructcv.cli import UsageError, run, setup_logging
from instructcv.images import ImageReadError, load_rgb
from tasks import get_task

log = logging.getLogger("baselines.depth")

DEFAULT_ROOTS = {"nyuv2": "data/nyu", "sunrgbd": "data/SUNRGBD"}

EPILOG = """\
examples:
  python baselines/depth/depth.py --model glpn --dataset nyuv2 --data_root data/nyu
  python baselines/depth/depth.py --model depth-anything --dataset nyuv2
  python baselines/depth/depth.py --model dpt --dataset sunrgbd --data_root data/SUNRGBD     # relative: median-scaled
  python baselines/depth/depth.py --model ~/models/glpn-nyu --dataset nyuv2 --limit 50
  python baselines/depth/depth.py --model glpn --tiny --dataset nyuv2 --limit 2              # offline check

--model: glpn (vinvino02/glpn-nyu, metric), depth-anything (Depth-Anything-V2-Metric-Indoor-Small,
metric), depth-anything-relative (Depth-Anything-V2-Small, relative), dpt (Intel/dpt-large,
relative), dpt-hybrid (Intel/dpt-hybrid-midas, relative), another Hugging Face id or a local folder.
Metric models are scored as they are. Relative models predict disparity up to scale: it is inverted
and each image is scaled so that its median depth equals the ground truth's median (over the
pixels the metric scores); the result file says "median-scaled", and such numbers use the ground truth's scale.
Scoring is the shared depth metric of the dataset (NYUv2: Eigen crop; 0 = no ground truth).
"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="depth.py", description=__doc__.splitlines()[0], epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="glpn", help="glpn | depth-anything | depth-anything-relative | dpt | dpt-hybrid | a hub id | a folder")
    p.add_argument("--dataset", default="nyuv2", choices=sorted(DEFAULT_ROOTS))
    p.add_argument("--data_root", type=Path, help="default: " + ", ".join(f"{k}: {v}" for k, v in DEFAULT_ROOTS.items()))
    p.add_argument("--out", type=Path, help="result file; default results/baseline_depes_<model>_<dataset>.json")
    p.add_argument("--output", choices=("auto", "metric", "disparity"), default="auto",
                   help="what the model predicts (auto: from its config)")
    add_runtime_args(p)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logging(args.verbose)

    # the model module imports torch (seconds): here, so that --help stays fast
    from baselines.depth.models import ALIASES, FAMILY_OF_ALIAS, align_to_ground_truth, load_depth_model

    timer = Timer()
    family = FAMILY_OF_ALIAS.get(args.model)
    if args.tiny and family is None:
        raise UsageError(f"--tiny needs --model {' | '.join(FAMILY_OF_ALIAS)} (the family of the tiny model)")
    source, device, dtype, data_root = prepare(args, ALIASES, DEFAULT_ROOTS, family=family)

    skipped = Skipped()
    images = eval_images(args.dataset, data_root, "depes", skipped, limit=args.limit, seed=args.seed)
    if not images:
        raise UsageError(f"{data_root}: no {args.dataset} evaluation image with ground-truth depth")
    estimator = load_depth_model(source, family=family, output=args.output, seed=args.seed).to(device, dtype)

    metric = get_task("depes").new_metric(args.dataset)
    scales = []
    scored = 0
    for item in tqdm(images, desc=f"depth {args.dataset}", disable=args.no_progress):
        try:
            image = load_rgb(item.image, exif_transpose=False)  # depth maps are in the stored pixel frame
            gt = load_truth(args.dataset, data_root, item.samples[0])
        except (ImageReadError, SampleError) as e:
            skipped.add(e.path, e.reason)
            continue
        if gt.shape != (image.height, image.width):
            skipped.add(item.image, f"depth map is {gt.shape[1]}x{gt.shape[0]}, image is {image.width}x{image.height}")
            continue
        pred = estimator.predict(image)
        if estimator.output == "disparity":  # the median over exactly the pixels the metric scores
            pred, scale = align_to_ground_truth(pred, gt, metric.scored_pixels(gt))
            scales.append(scale)
        metric.add(pred, gt)
        scored += 1
    if scored == 0:
        raise UsageError("no evaluation image could be scored")
    metrics = metric.compute()
    relative = estimator.output == "disparity"
    meta = {
        "task": "depes",
        "baseline": "depth/depth.py",
        "model": {**source.describe(), "name": source.display, "family": estimator.family},
        "prediction": "relative disparity, inverted and median-scaled per image to the ground truth"
                      if relative else "metric depth (metres), scored as predicted",
        "median_scaled": relative,
        "median_scale": {"min": float(np.min(scales)), "median": float(np.median(scales)), "max": float(np.max(scales))}
                        if scales else None,
        "protocol": "the model's own preprocessing, prediction resized bilinearly to the image; shared depth "
                    "metric of the dataset on valid ground-truth pixels",
        "images": scored,
        **run_meta(device, timer, skipped),
    }
    name = run_name(args.model, ALIASES, tiny=args.tiny)
    out = args.out or default_result_path("depes", name, args.dataset)
    label = f"{source.display}, median-scaled" if relative else source.display
    write_result(out, "depes", args.dataset, metrics, model=label, meta=meta)
    rmse = metrics.get("rmse")
    print(f"depth {name} on {args.dataset}: rmse {'n/a' if rmse is None else f'{rmse:.3f}'} m, "
          f"delta1 {'n/a' if metrics.get('delta1') is None else round(metrics['delta1'], 3)}"
          + (" (median-scaled)" if relative else "") + f" over {scored} images"
          + (f", {len(skipped)} skipped" if skipped else "") + f" -> {out} ({timer.seconds:.0f} s)")
    return skipped.exit_status


if __name__ == "__main__":
    run(main)
