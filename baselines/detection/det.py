"""Score DETR or RT-DETR (COCO checkpoints) on COCO or PASCAL VOC with the shared COCOeval code.

    python baselines/detection/det.py --model detr --dataset coco
    python baselines/detection/det.py --model rtdetr --dataset voc --data_root data/VOCdevkit/VOC2012
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
from baselines.detection import class_maps
from baselines.eval_data import eval_images, load_truth
from dataset_creation.readers.base import SampleError
from instructcv.cli import UsageError, run, setup_logging
from instructcv.images import ImageReadError, load_rgb
from tasks import get_task

log = logging.getLogger("baselines.det")

DEFAULT_ROOTS = {"coco": "data/coco", "voc": "data/VOCdevkit/VOC2012"}

EPILOG = """\
examples:
  python baselines/detection/det.py --model detr --dataset coco --data_root data/coco
  python baselines/detection/det.py --model rtdetr --dataset voc --data_root data/VOCdevkit/VOC2012
  python baselines/detection/det.py --model ~/models/rtdetr_r50vd --dataset coco --limit 500 --batch_size 8
  python baselines/detection/det.py --model detr --tiny --dataset coco --limit 2   # offline check

--model: detr (facebook/detr-resnet-50, revision no_timm), rtdetr (PekingU/rtdetr_r50vd), another
Hugging Face id or a local folder. Every detection is kept (no score threshold) and scored by the
shared COCOeval (mAP, AP50, AP75; crowd / VOC-difficult boxes are ignore regions). On VOC the
COCO classes are mapped to the 20 VOC classes explicitly (aeroplane=airplane, tvmonitor=tv,
motorbike=motorcycle, sofa=couch, diningtable=dining table, pottedplant=potted plant); detections
of the other 60 COCO classes are dropped.
"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="det.py", description=__doc__.splitlines()[0], epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="detr", help="detr | rtdetr | a Hugging Face id | a local folder")
    p.add_argument("--dataset", default="coco", choices=sorted(DEFAULT_ROOTS))
    p.add_argument("--data_root", type=Path, help="default: " + ", ".join(f"{k}: {v}" for k, v in DEFAULT_ROOTS.items()))
    p.add_argument("--out", type=Path, help="result file; default results/baseline_det_<model>_<dataset>.json")
    p.add_argument("--batch_size", type=int, default=1, help="images per forward pass (DETR pads them); default 1")
    add_runtime_args(p)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logging(args.verbose)

    # the model module imports torch (seconds): here, so that --help stays fast
    from baselines.detection.models import ALIASES, FAMILIES, load_detector

    timer = Timer()
    if args.tiny and args.model not in FAMILIES:
        raise UsageError(f"--tiny needs --model {' or '.join(FAMILIES)} (the family of the tiny model)")
    if args.batch_size < 1:
        raise UsageError("--batch_size must be >= 1")
    source, device, dtype, data_root = prepare(args, ALIASES, DEFAULT_ROOTS)

    skipped = Skipped()
    images = eval_images(args.dataset, data_root, "det", skipped, limit=args.limit, seed=args.seed)
    if not images:
        raise UsageError(f"{data_root}: no {args.dataset} evaluation image with boxes")
    detector = load_detector(source, seed=args.seed).to(device, dtype)
    sample_classes = {c for item in images for c in item.classes}
    classes = class_maps.dataset_classes(args.dataset)
    classes += sorted(sample_classes - set(classes))
    to_class, not_covered = class_maps.label_to_class(args.dataset, classes, detector.labels)
    if not to_class:
        raise UsageError(f"none of the model's labels is a {args.dataset} class")
    uncovered_with_gt = sorted(set(not_covered) & sample_classes)
    if uncovered_with_gt:
        log.warning("the model cannot predict these %s classes (their AP will be 0): %s", args.dataset,
                    ", ".join(uncovered_with_gt))

    metric = get_task("det").new_metric(args.dataset)
    scored = 0
    bar = tqdm(total=len(images), desc=f"det {args.dataset}", disable=args.no_progress)
    for start in range(0, len(images), args.batch_size):
        batch, pils, truths = [], [], []
        for item in images[start:start + args.batch_size]:
            try:
                pil = load_rgb(item.image, exif_transpose=False)  # boxes are in the stored pixel frame
                truth = {s.class_name: load_truth(args.dataset, data_root, s) for s in item.samples}
            except (ImageReadError, SampleError) as e:
                skipped.add(e.path, e.reason)
                continue
            batch.append(item)
            pils.append(pil)
            truths.append(truth)
        preds = detector.predict(pils) if pils else []
        for item, truth, by_label in zip(batch, truths, preds, strict=True):
            by_class: dict[str, list[np.ndarray]] = {}
            for label, boxes in by_label.items():
                cls = to_class.get(label)
                if cls is not None:
                    by_class.setdefault(cls, []).append(boxes)
            for cls in sorted(set(truth) | set(by_class), key=classes.index):
                pred = np.concatenate(by_class[cls]) if cls in by_class else np.zeros((0, 5))
                gt = truth.get(cls, {"boxes": np.zeros((0, 4)), "crowd": None})
                metric.add(item.stem, cls, pred, gt["boxes"], gt.get("crowd"))
            scored += 1
        bar.update(len(images[start:start + args.batch_size]))
    bar.close()
    if scored == 0:
        raise UsageError("no evaluation image could be scored")
    metrics = metric.compute()
    meta = {
        "task": "det",
        "baseline": "detection/det.py",
        "model": {**source.describe(), "name": source.display, "family": detector.family},
        "protocol": "the model's own preprocessing; every detection kept (no score threshold); shared COCOeval "
                    "over each image and every class it has or is predicted (crowd / difficult = ignore)",
        "class_map": {detector.labels[i]: c for i, c in sorted(to_class.items()) if detector.labels[i] != c},
        "classes_not_covered": uncovered_with_gt,
        "images": scored,
        **run_meta(device, timer, skipped),
    }
    name = run_name(args.model, ALIASES, tiny=args.tiny)
    out = args.out or default_result_path("det", name, args.dataset)
    write_result(out, "det", args.dataset, metrics, model=source.display, meta=meta)
    print(f"det {name} on {args.dataset}: mAP {_fmt(metrics.get('mAP'))} AP50 {_fmt(metrics.get('AP50'))} over {scored} images"
          + (f", {len(skipped)} skipped" if skipped else "") + f" -> {out} ({timer.seconds:.0f} s)")
    return skipped.exit_status


def _fmt(v) -> str:
    return "n/a" if v is None else f"{v:.2f}"


if __name__ == "__main__":
    run(main)
