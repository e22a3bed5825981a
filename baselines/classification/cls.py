"""Fine-tune ResNet-50 or ViT-B/16 on Pets / Caltech-101 / ImageNet-sub and report test top-1.

The original README's commands work as written (``--steps`` is the number of epochs)::

    python baselines/classification/cls.py --model supervised --dataset pets --steps 100
    python baselines/classification/cls.py --model ViT-16 --dataset pets --steps 300
    python baselines/classification/cls.py --model supervised --dataset caltech --steps 100
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the project importable without installing it
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from baselines.classification import models
from baselines.classification.data import DEFAULT_ROOTS, READERS, load_split
from baselines.classification.scoring import top1_metrics
from baselines.common import (
    REPO_ROOT,
    Skipped,
    Timer,
    default_result_path,
    prepare,
    resolve_model,
    run_meta,
    run_name,
    write_result,
)
from instructcv.cli import UsageError, run, setup_logging

log = logging.getLogger("baselines.cls")

EPILOG = """\
examples:
  # the paper's baselines (downloads the pretrained weights from the Hugging Face hub)
  python baselines/classification/cls.py --model supervised --dataset pets --steps 100
  python baselines/classification/cls.py --model ViT-16 --dataset pets --steps 300 --data_root data/oxford-iiit-pet
  # offline: a local copy of the weights, or a random tiny model to check the whole path in seconds
  python baselines/classification/cls.py --model ~/models/resnet-50 --dataset caltech --steps 100
  python baselines/classification/cls.py --model supervised --tiny --dataset pets --steps 2 --batch_size 4
  # score a checkpoint written by an earlier run without training
  python baselines/classification/cls.py --model checkpoints/baselines/cls_supervised_pets/best --dataset pets --steps 0

--model: supervised (microsoft/resnet-50, ImageNet-1k), ViT-16 (google/vit-base-patch16-224-in21k),
another Hugging Face id, or a local folder with config.json. With HF_HUB_OFFLINE=1 a hub model must
already be in the cache. The best epoch (by accuracy on a per-class 10 %% validation part of the training
split) is saved under --ckpt_dir/best as safetensors; only that checkpoint is scored on the test split.
"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="cls.py", description=__doc__.splitlines()[0], epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--model", default="supervised", help="supervised | ViT-16 | a Hugging Face id | a local folder")
    p.add_argument("--dataset", default="pets", choices=sorted(DEFAULT_ROOTS), help="default: pets")
    p.add_argument("--steps", type=int, default=100, help="training epochs (0: only score --model); default 100")
    p.add_argument("--data_root", type=Path, help="dataset root; default: " + ", ".join(f"{k}: {v}" for k, v in DEFAULT_ROOTS.items()))
    p.add_argument("--out", type=Path, help="result file (metrics.json layout); default results/baseline_cls_<model>_<dataset>.json")
    p.add_argument("--ckpt_dir", type=Path, help="where best/ and history.json go; default checkpoints/baselines/cls_<model>_<dataset>")
    p.add_argument("--lr", type=float, help="SGD learning rate; default 0.01 for ResNet, 0.001 for ViT")
    p.add_argument("--batch_size", type=int, help="default 256 for ResNet, 64 for ViT")
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--weight_decay", type=float, default=0.0)
    p.add_argument("--val_fraction", type=float, default=0.1, help="part of each training class held out to pick the best epoch (0: keep the last)")
    p.add_argument("--limit", type=int, help="use at most N images per split (seeded subset; quick checks)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, help="data-loading processes; default: cores - 1, at most 8")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--dtype", default="auto", help="autocast dtype: auto (bf16 on CUDA, fp32 on CPU) | fp32 | bf16 | fp16")
    p.add_argument("--tiny", action="store_true", help="a random tiny model of the same family (offline tests)")
    p.add_argument("--no_progress", action="store_true", help="hide the progress bars")
    p.add_argument("-v", "--verbose", action="store_true")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logging(args.verbose)

    # the training loop imports torch (seconds): here, so that --help stays fast
    from baselines.classification.train import LoopConfig, default_workers, fine_tune, predict

    timer = Timer()
    if args.steps < 0:
        raise UsageError("--steps must be >= 0")
    family = models.FAMILY_OF_ALIAS.get(args.model)
    if args.tiny and family is None:
        raise UsageError("--tiny needs --model supervised or ViT-16 (the family of the tiny model)")
    source, device, dtype, data_root = prepare(args, models.ALIASES, DEFAULT_ROOTS, family=family)
    split = load_split(args.dataset, data_root, args.val_fraction, args.seed, args.limit)
    log.info("%s: %d classes, %d train / %d val / %d test images", args.dataset, len(split.classes),
             len(split.train), len(split.val), len(split.test))

    clf = models.load_classifier(source, split.classes, family, seed=args.seed)
    recipe = models.RECIPES.get(clf.family, models.RECIPES["vit"] if "vit" in clf.family else models.RECIPES["resnet"])
    lr = args.lr if args.lr is not None else float(recipe["lr"])
    batch_size = args.batch_size or int(recipe["batch_size"])
    cfg = LoopConfig(
        epochs=args.steps, lr=lr, batch_size=batch_size, momentum=args.momentum, weight_decay=args.weight_decay,
        workers=default_workers() if args.workers is None else args.workers, seed=args.seed, device=device,
        dtype=dtype, progress=not args.no_progress,
    )
    name = run_name(args.model, models.ALIASES, tiny=args.tiny)
    ckpt_dir = args.ckpt_dir or REPO_ROOT / "checkpoints" / "baselines" / f"cls_{name}_{args.dataset}"
    out = args.out or default_result_path("cls", name, args.dataset)
    dataset_key = READERS[args.dataset]
    skipped = Skipped()

    def val_score(probs, index) -> float:
        m = top1_metrics(probs, [split.val[i] for i in index], split.classes, dataset_key)
        return m.get("accuracy", m.get("verification_accuracy")) or 0.0

    recipe_info = {"epochs": args.steps, "optimizer": "SGD", "lr": lr, "momentum": args.momentum,
                   "weight_decay": args.weight_decay, "batch_size": batch_size, "schedule": "cosine",
                   "val_fraction": args.val_fraction, "seed": args.seed}
    report = None
    if args.steps > 0:
        report = fine_tune(clf, split.train, split.val, cfg, Path(ckpt_dir), skipped, val_score,
                           {"model": source.describe(), "dataset": args.dataset, "classes": split.classes, **recipe_info})
        clf = models.load_classifier(resolve_model(str(Path(ckpt_dir) / "best"), {}), split.classes, clf.family)

    probs, index = predict(clf, split.test, cfg, skipped, desc="test")
    if len(index) == 0:
        raise UsageError("no test image could be read")
    metrics = top1_metrics(probs, [split.test[i] for i in index], split.classes, dataset_key)
    meta = {
        "task": "cls",
        "baseline": "classification/cls.py",
        "model": {**source.describe(), "name": source.display, "family": clf.family},
        "protocol": f"fine-tuned on the {args.dataset} training split, best epoch by held-out validation "
                    "accuracy, top-1 on the evaluation split",
        "training": recipe_info if args.steps > 0 else None,
        "best_epoch": report.best_epoch if report else None,
        "val_accuracy": report.best_val if report else None,
        "checkpoint": str(Path(ckpt_dir) / "best") if report else None,
        "images": {"train": len(split.train), "val": len(split.val), "test": len(split.test), "test_scored": len(index)},
        **run_meta(device, timer, skipped),
    }
    write_result(out, "cls", dataset_key, metrics, model=f"{source.display} fine-tuned", meta=meta)
    print(
        f"cls {name} on {args.dataset}: top-1 {metrics['accuracy']:.2f}% over {len(index)} test images"
        + (f", best epoch {report.best_epoch}/{args.steps}" if report else "")
        + (f", {len(skipped)} skipped" if skipped else "")
        + f" -> {out} ({timer.seconds:.0f} s)"
    )
    return skipped.exit_status


if __name__ == "__main__":
    run(main)
