"""Score SegFormer or Mask2Former (ADE20K checkpoints) on ADE20K or PASCAL VOC with the shared mIoU.

    python baselines/segmentation/seg.py --model segformer --dataset ade20k
    python baselines/segmentation/seg.py --model mask2former --dataset voc --data_root data/VOCdevkit/VOC2012
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
from baselines.segmentation import class_maps
from dataset_creation.readers.base import SampleError
from instructcv.cli import UsageError, run, setup_logging
from instructcv.images import ImageReadError, load_rgb
from tasks import get_task

log = logging.getLogger("baselines.seg")

DEFAULT_ROOTS = {"ade20k": "data/ade20k", "voc": "data/VOCdevkit/VOC2012"}

EPILOG = """\
examples:
  python baselines/segmentation/seg.py --model segformer --dataset ade20k --data_root data/ade20k
  python baselines/segmentation/seg.py --model mask2former --dataset ade20k --mode slide
  python baselines/segmentation/seg.py --model segformer --dataset voc --data_root data/VOCdevkit/VOC2012
  python baselines/segmentation/seg.py --model ~/models/segformer-b5-ade-640 --dataset ade20k --limit 100
  python baselines/segmentation/seg.py --model segformer --tiny --dataset ade20k --limit 2   # offline check

--model: segformer (nvidia/segformer-b5-finetuned-ade-640-640), mask2former
(facebook/mask2former-swin-large-ade-semantic), another Hugging Face id or a local folder.
Evaluation images and ground truth come from the dataset readers InstructCV's evaluation uses
(ADE20K validation, 150 classes, label 0 ignored; VOC Segmentation val list, 255 ignored).
On VOC an ADE20K model can predict 13 of the 20 classes (explicit table in
baselines/segmentation/class_maps.py); bird, cat, cow, dog, horse, sheep and train are not ADE20K
classes and are left out of its VOC mIoU (listed in the result file).
"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="seg.py", description=__doc__.splitlines()[0], epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="segformer", help="segformer | mask2former | a Hugging Face id | a local folder")
    p.add_argument("--dataset", default="ade20k", choices=sorted(DEFAULT_ROOTS))
    p.add_argument("--data_root", type=Path, help="default: " + ", ".join(f"{k}: {v}" for k, v in DEFAULT_ROOTS.items()))
    p.add_argument("--out", type=Path, help="result file; default results/baseline_seg_<model>_<dataset>.json")
    p.add_argument("--mode", choices=("whole", "slide"), default="whole", help="whole image at once, or sliding windows")
    p.add_argument("--short_side", type=int, help="resize the short side to this (default: 640 for the hub models)")
    p.add_argument("--crop", type=int, help="sliding window size (default: --short_side)")
    p.add_argument("--stride", type=int, help="sliding window stride (default: 2/3 of --crop)")
    add_runtime_args(p)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logging(args.verbose)

    # the model module imports torch (seconds): here, so that --help stays fast
    from baselines.segmentation.models import ALIASES, FAMILIES, load_segmenter

    timer = Timer()
    if args.tiny and args.model not in FAMILIES:
        raise UsageError(f"--tiny needs --model {' or '.join(FAMILIES)} (the family of the tiny model)")
    source, device, dtype, data_root = prepare(args, ALIASES, DEFAULT_ROOTS)

    skipped = Skipped()
    images = eval_images(args.dataset, data_root, "seg", skipped, limit=args.limit, seed=args.seed)
    if not images:
        raise UsageError(f"{data_root}: no {args.dataset} evaluation image with a segmentation label map")
    segmenter = load_segmenter(source, short_side=args.short_side, crop=args.crop, stride=args.stride,
                               mode=args.mode, seed=args.seed).to(device, dtype)
    classes = class_maps.dataset_classes(args.dataset)
    groups, not_covered = class_maps.label_groups(args.dataset, classes, segmenter.labels)
    if not groups:
        raise UsageError(f"none of the model's labels is a {args.dataset} class (labels: {segmenter.labels[:5]}...)")
    if not_covered:
        log.info("%d %s classes cannot be predicted by this model and are not scored: %s",
                 len(not_covered), args.dataset, ", ".join(not_covered))
    lookup = _label_lookup(groups, len(segmenter.labels))

    metric = get_task("seg").new_metric(args.dataset)
    scored = 0
    for item in tqdm(images, desc=f"seg {args.dataset}", disable=args.no_progress):
        try:
            image = load_rgb(item.image, exif_transpose=False)  # annotations are in the stored pixel frame
            truths = {s.class_name: load_truth(args.dataset, data_root, s) for s in item.samples}
        except (ImageReadError, SampleError) as e:
            skipped.add(e.path, e.reason)
            continue
        first = next(iter(truths.values()))
        valid = first.get("valid")
        if first["mask"].shape != (image.height, image.width):
            skipped.add(item.image, f"label map is {first['mask'].shape[1]}x{first['mask'].shape[0]}, "
                                    f"image is {image.width}x{image.height}")
            continue
        classes_of_pred = lookup[segmenter.predict(image)]  # dataset class index per pixel, -1 = none
        if valid is None:
            valid = np.ones(classes_of_pred.shape, bool)
        present_pred = set(np.unique(classes_of_pred[valid]).tolist()) - {-1}
        for k, cls in enumerate(groups):
            truth = truths.get(cls)
            if truth is None and k not in present_pred:
                continue  # neither there nor predicted: adds nothing to the class's intersection or union
            gt = truth["mask"] if truth is not None else np.zeros_like(valid)
            metric.add(cls, classes_of_pred == k, gt, valid)
        scored += 1
    if scored == 0:
        raise UsageError("no evaluation image could be scored")
    metrics = metric.compute()
    meta = {
        "task": "seg",
        "baseline": "segmentation/seg.py",
        "model": {**source.describe(), "name": source.display, "family": segmenter.family},
        "protocol": (f"{args.mode} inference, short side {segmenter.short_side}"
                     + (f", {segmenter.crop} px windows, stride {segmenter.stride}" if args.mode == "slide" else "")
                     + "; class scores resized to the image, arg-max; shared mIoU over the evaluation split"),
        "classes_scored": list(groups),
        "classes_not_covered": not_covered,
        "class_map": {c: [segmenter.labels[i] for i in ids] for c, ids in groups.items()} if args.dataset != "ade20k" else "identity",
        "images": scored,
        **run_meta(device, timer, skipped),
    }
    name = run_name(args.model, ALIASES, tiny=args.tiny)
    out = args.out or default_result_path("seg", name, args.dataset)
    write_result(out, "seg", args.dataset, metrics, model=source.display, meta=meta)
    miou = metrics.get("mIoU")
    print(f"seg {name} on {args.dataset}: mIoU {_fmt(miou)} over {scored} images, {len(groups)} classes"
          + (f" ({len(not_covered)} not covered)" if not_covered else "")
          + (f", {len(skipped)} skipped" if skipped else "") + f" -> {out} ({timer.seconds:.0f} s)")
    return skipped.exit_status


def _label_lookup(groups: dict[str, list[int]], n_labels: int):
    """Model label id -> index of the dataset class it predicts (-1: none), as a numpy lookup table."""
    import numpy as np

    table = np.full(n_labels, -1, np.int32)
    for k, ids in enumerate(groups.values()):
        table[ids] = k
    return table


def _fmt(v) -> str:
    return "n/a" if v is None else f"{v:.2f}"


if __name__ == "__main__":
    run(main)
