#!/usr/bin/env python
"""`make demo`: the whole InstructCV path end to end on CPU, on data the project generates itself.

synthetic raw datasets (COCO, ADE20K, Oxford-IIIT Pets, NYUv2 formats) -> format_dataset.py train and
eval pairs -> main.py trains a small model from scratch (first its autoencoder, then the UNet) ->
edit_cli.py answers a few held-out images with --decode -> evaluate.py scores the eval pairs -> the
metrics table. Every stage is the project's own command line, printed before it runs.

Re-running with the same arguments redoes nothing that is done; a stage whose arguments changed is
redone from scratch, and so is everything after it. The exit status is non-zero when a stage failed,
and the message names it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import tasks  # noqa: E402
from evaluation.report import fmt, metrics_lines  # noqa: E402
from instructcv.cli import UsageError, run  # noqa: E402
from instructcv.io import write_json  # noqa: E402
from instructcv.pairs import PairSample, read_index  # noqa: E402

DATASETS = ("coco", "ade20k", "pets", "nyuv2")
DET_LINE_WIDTH = 8  # box stroke of the synthetic COCO targets (format_dataset.py --det_line_width)
COCO_NEGATIVES = 2  # absent classes asked per synthetic COCO image (format_dataset.py --neg_per_image)
STAMPS = ".stages"  # <out>/.stages/<stage>.json: the key a finished stage ran with


@dataclass
class Stage:
    """One step of the demo: commands to run, the folders they write, and what decides it is done."""

    name: str
    title: str
    commands: list[list[str]]
    outputs: list[Path]
    env: dict[str, str] = field(default_factory=dict)
    copies: list[tuple[Path, Path]] = field(default_factory=list)  # (source, destination), put in place first
    resumable: bool = False  # its tools finish a half-done output themselves: cleared only when outdated
    key: str = ""


class StageFailed(Exception):
    """A stage's command exited non-zero."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n")[0].strip("`: ").split(": ", 1)[-1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
               "  python scripts/demo.py                          # the default demo (about 10 minutes on 2 idle cores)\n"
               "  python scripts/demo.py --steps 6000 --out outputs/demo_long   # train longer\n"
               "  make demo DEMO_STEPS=6000                       # the same through make",
    )
    p.add_argument("--out", default="outputs/demo", help="everything the demo writes goes here (outputs/demo)")
    p.add_argument("--steps", type=int, default=1500, help="UNet training steps (1500)")
    p.add_argument("--vae-steps", type=int, default=None,
                   help="autoencoder training steps (default: configs/demo_vae.yaml's)")
    p.add_argument("--num-train", type=int, default=120, help="synthetic training images per dataset (120)")
    p.add_argument("--num-eval", type=int, default=10, help="synthetic held-out images per dataset (10)")
    p.add_argument("--pets-breeds", type=int, default=4, choices=range(2, 9), metavar="N",
                   help="synthetic Pets breeds (4, the most distinct looks; 2-8): a few classes with many images "
                        "each, so that a model trained for minutes can learn presence")
    p.add_argument("--size", type=int, default=128,
                   help="long side of the synthetic photos in pixels (128; the model sees 64); NYUv2 frames stay 640x480")
    p.add_argument("--prompts", choices=("fixed", "rephrased"), default="fixed",
                   help="instruction templates of the pairs: one sentence per task (fixed, the default: a model "
                        "trained for minutes learns it far sooner) or the many paraphrases the paper trains on")
    p.add_argument("--answers", type=int, default=3, help="held-out images answered per task with edit_cli.py (3)")
    p.add_argument("--sampling-steps", type=int, default=20, help="sampling steps for answers and evaluation (20)")
    p.add_argument("--cfg-text", type=float, default=3.0, help="text guidance scale (3.0)")
    p.add_argument("--cfg-image", type=float, default=1.0, help="image guidance scale (1.0)")
    p.add_argument("--seed", type=int, default=0, help="seed of the data, the training and the sampling (0)")
    p.add_argument("--config", default="configs/demo.yaml", help="model and training config (configs/demo.yaml)")
    p.add_argument("--vae-config", default="configs/demo_vae.yaml",
                   help="autoencoder stage config, merged over --config (configs/demo_vae.yaml)")
    p.add_argument("--model-config", default="configs/demo_one_step.yaml", metavar="YAML",
                   help="UNet stage only: merged over --config, e.g. configs/demo_one_step.yaml (a one-step model; "
                        "the autoencoder stage is unchanged)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = p.parse_args(argv)
    for name in ("steps", "num_train", "num_eval", "answers", "sampling_steps"):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be at least 1")
    if args.vae_steps is not None and args.vae_steps < 1:
        raise UsageError("--vae-steps must be at least 1")
    for name in ("config", "vae_config", "model_config"):
        if getattr(args, name) is None:
            continue
        if not (ROOT / getattr(args, name)).is_file() and not Path(getattr(args, name)).is_file():
            raise UsageError(f"--{name.replace('_', '-')} {getattr(args, name)}: no such config file")
    return args


# ---- the stages ----------------------------------------------------------------------------------

def python(script: str, *args: object) -> list[str]:
    return [sys.executable, str(ROOT / script), *map(str, args)]


def data_stages(args: argparse.Namespace, out: Path) -> list[Stage]:
    quiet = ["--no-progress"] if args.no_progress else []
    raw = out / "raw"
    roots = [raw / d for d in DATASETS]
    pairs = ["--tasks", *tasks.TAGS, "--seed", args.seed, "--prompts", args.prompts, "--workers", 2,
             *(["--no_progress"] if args.no_progress else [])]
    # COCO images hold one to three classes, each asked as present: two absent classes per image keep its
    # presence queries near half (44-46 %) and chance at 50 %; Pets asks one breed present, one absent
    # boxes 8 px wide at 128 px (the released model's 4 px would be half a latent pixel of the 64 px model, and
    # the autoencoder's own reconstructions of perfect answers score AP50 20; with 8 px they score 40)
    by_negatives = [[*pairs, "--data_root", raw / "coco", "--neg_per_image", COCO_NEGATIVES,
                     "--det_line_width", DET_LINE_WIDTH],
                    [*pairs, "--data_root", *[r for r in roots if r.name != "coco"], "--neg_from", "listed"]]
    return [
        Stage("data", "writing synthetic raw datasets in the COCO, ADE20K, Pets and NYUv2 formats",
              [python("dataset_creation/synthetic.py", "--out", raw, "--datasets", *DATASETS,
                      "--num-train", args.num_train, "--num-eval", args.num_eval, "--size", args.size,
                      "--pets-breeds", args.pets_breeds, "--seed", args.seed, *quiet)], [raw], resumable=True),
        Stage("pairs", "building instruction/answer pairs: training split and held-out split",
              [python("dataset_creation/format_dataset.py", "--save_root", out / "pairs" / split, *options,
                      *(["--split", "eval"] if split == "eval" else []))
               for split in ("train", "eval") for options in by_negatives], [out / "pairs"], resumable=True),
    ]


def training_stages(args: argparse.Namespace, out: Path) -> list[Stage]:
    common = ["--train", "--accelerator", "cpu", "--logdir", out / "runs", "--seed", args.seed,
              f"data.params.pairs=[{out / 'pairs' / 'train'}]"]
    vae_steps = [f"lightning.trainer.max_steps={args.vae_steps}"] if args.vae_steps else []
    if args.no_progress:
        common.append("lightning.trainer.enable_progress_bar=false")
    vae_run, model_run = out / "runs" / "autoencoder", out / "runs" / "model"
    model_config = [args.model_config] if args.model_config else []
    return [
        Stage("autoencoder", "training the autoencoder (stage 1: reconstruction of both images of every pair)",
              [python("main.py", "--name", "demo_autoencoder", "--base", args.config, args.vae_config,
                      *common, *vae_steps)], [vae_run], env={"INSTRUCTCV_RUN_DIR": str(vae_run)}),
        Stage("model", "training the UNet on the pairs (stage 2: the autoencoder stays fixed)",
              [python("main.py", "--name", "demo", "--base", args.config, *model_config, *common,
                      f"lightning.trainer.max_steps={args.steps}", f"model.params.ckpt_path={vae_run}")],
              [model_run], env={"INSTRUCTCV_RUN_DIR": str(model_run)}),
    ]


def sampling_options(args: argparse.Namespace) -> list[object]:
    return ["--steps", args.sampling_steps, "--cfg-text", args.cfg_text, "--cfg-image", args.cfg_image,
            "--resolution", 64, "--seed", args.seed, "--batch-size", 16, "--device", "cpu"]


def instruction(tag: str) -> str:
    """The one instruction the held-out images of task ``tag`` are asked (its fixed template)."""
    return tasks.task(tag).templates["fixed"][0]


def held_out_queries(pairs_eval: Path, count: int) -> dict[str, tuple[dict[str, str], list[Path], list[str]]]:
    """Per task: the --class/--positive/--negative of its instruction, up to ``count`` held-out inputs and
    the pairs sample of each.

    Tasks whose instruction names a class ask about the class most often present in the synthetic
    COCO held-out split, on images that contain it; the others (depth) take their own held-out frames.
    """
    rows = sorted((read_index(pairs_eval) or {}).values(), key=lambda r: r["sample"])
    present = [r for r in rows if r["dataset"] == "coco" and r.get("class") and r.get("positive", True)]
    if not present:
        raise UsageError(f"{pairs_eval}: no COCO pairs with a class to pick held-out images from")
    name = Counter(r["class"] for r in present).most_common(1)[0][0]
    fill = {"class": name, "positive": "red", "negative": "green"}
    out = {}
    for tag in tasks.TAGS:
        asks_class = "%" in instruction(tag)
        mine = [r for r in (present if asks_class else rows) if r["task"] == tag and (not asks_class or r["class"] == name)]
        by_input: dict[Path, str] = {}
        for r in mine:
            by_input.setdefault(_input(pairs_eval, r), r["sample"])
        images = sorted(by_input)[:count]
        out[tag] = (fill if asks_class else {}, images, [by_input[i] for i in images])
    return out


def _input(pairs_dir: Path, row: dict) -> Path:
    return PairSample(pairs_dir, row["sample"], row["stem"]).input_path


def answer_stage(args: argparse.Namespace, out: Path) -> Stage:
    """edit_cli.py --decode, one instruction per task, on copies of a few held-out inputs."""
    model = out / "runs" / "model"
    commands, copies = [], []
    queries = held_out_queries(out / "pairs" / "eval", args.answers)
    for task, (fill, images, _samples) in queries.items():
        folder = out / "held_out" / task
        copies += [(image, folder / image.name) for image in images]
        options = [f"--{k}={v}" for k, v in fill.items()]
        commands.append(python("edit_cli.py", "--input", folder, "--output", out / "answers" / task,
                               "--edit", instruction(task), *options, "--decode", "--ckpt", model,
                               *sampling_options(args), *(["--quiet"] if args.no_progress else [])))
    return Stage("answers", "answering held-out images, one instruction per task (edit_cli.py --decode)",
                 commands, [out / "answers", out / "held_out"], copies=copies)


def evaluation_stage(args: argparse.Namespace, out: Path) -> Stage:
    metrics = out / "eval" / "metrics.json"
    return Stage("evaluate", "scoring every held-out pair with the standard metrics (evaluate.py)",
                 [python("evaluate.py", "--pairs", out / "pairs" / "eval", "--ckpt", out / "runs" / "model",
                         "--out", metrics, "--model-name", "demo", *sampling_options(args),
                         *(["--quiet"] if args.no_progress else [])),
                  python("evaluate.py", "--table", metrics, "--out", out / "eval" / "table")],
                 [out / "eval"])


def summary_stage(args: argparse.Namespace, out: Path) -> Stage:
    """Chance scores of trivial answers, and summary.png: one held-out answer per task, read back."""
    queries = held_out_queries(out / "pairs" / "eval", args.answers)
    shown = [f"{task}={samples[0]}" for task, (_fill, _images, samples) in queries.items() if samples]
    colors = next(([f["positive"], f["negative"]] for f, _i, _s in queries.values() if "positive" in f), [])
    return Stage("summary", "scoring trivial answers (chance) and drawing summary.png",
                 [python("scripts/demo_summary.py", "--pairs", out / "pairs" / "eval", "--train",
                         out / "pairs" / "train", "--answers", out / "answers", "--out", out, "--seed", args.seed,
                         *(["--colors", *colors] if colors else []), "--show", *shown)],
                 [out / "summary.png", out / "eval" / "chance.json"])


# ---- running them --------------------------------------------------------------------------------

def stage_key(stage: Stage, upstream: str) -> str:
    """What a stage's result depends on: its commands, the config files they read, its environment and
    everything before it."""
    configs = {str(a): (ROOT / a).read_text() for c in stage.commands for a in map(str, c)
               if a.endswith(".yaml") and (ROOT / a).is_file()}
    copies = [[str(source), str(destination)] for source, destination in stage.copies]
    text = json.dumps([upstream, [[str(a) for a in c] for c in stage.commands], configs, copies, stage.env],
                      sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def shown_path(arg: str) -> str:
    """Paths inside the repository as the user would type them from its root."""
    path = Path(arg)
    if arg != sys.executable and path.is_absolute() and path.is_relative_to(ROOT):
        return str(path.relative_to(ROOT))
    return arg


def run_stage(stage: Stage, number: int, total: int, out: Path) -> None:
    """Run a stage unless its stamp holds the same key.

    Its outputs are cleared first when they are outdated (another key), or when they may be half-done by
    tools that cannot finish them (no stamp, not ``resumable``); then its copies are put in place.
    """
    stamp = out / STAMPS / f"{stage.name}.json"
    print(f"\n==> [{number}/{total}] {stage.title}", flush=True)
    previous = json.loads(stamp.read_text()).get("key") if stamp.is_file() else None
    if previous == stage.key:
        print("    done already with these arguments; skipping", flush=True)
        return
    stamp.unlink(missing_ok=True)
    if previous is not None or not stage.resumable:
        for path in stage.outputs:
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
    for source, destination in stage.copies:
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, destination)
    start = time.perf_counter()
    for command in stage.commands:
        shown = " ".join(shlex.quote(shown_path(a)) for a in map(str, command))
        print(f"    $ {' '.join(f'{k}={v}' for k, v in stage.env.items())}{' ' if stage.env else ''}{shown}",
              flush=True)
        status = subprocess.run(command, cwd=ROOT, env={**os.environ, "HF_HUB_OFFLINE": "1", **stage.env}).returncode
        if status != 0:
            raise StageFailed(f"stage '{stage.name}' failed: {Path(command[1]).name} exited with status {status} "
                              f"(its messages are above)")
    write_json(stamp, {"key": stage.key, "seconds": round(time.perf_counter() - start, 1)})
    print(f"    finished in {time.perf_counter() - start:.0f} s", flush=True)


def with_chance(lines: list[str], chance: dict[str, dict[str, dict]]) -> list[str]:
    """The metrics lines, each followed by the score of the best trivial answer for its task and dataset."""
    width = max(map(len, lines))
    out = []
    for line in lines:
        task, dataset = (line.split() + ["", ""])[:2]
        best = chance.get(task, {}).get(dataset)
        if line.startswith("task "):
            line = f"{line:<{width}}   | chance: the best answer that ignores the image"
        elif best:
            value = "-" if best["value"] is None else fmt(best["value"], task, best["metric"])
            line = f"{line:<{width}}   | chance {best['metric']} {value} ({best['answer']})"
        out.append(line)
    return out


def summary(out: Path) -> str:
    """The metrics of every task and dataset, and where the demo's results are."""
    metrics = json.loads((out / "eval" / "metrics.json").read_text())
    chance = json.loads((out / "eval" / "chance.json").read_text())
    run = out / "runs" / "model"
    logs = sorted((run / "csv").glob("*/metrics.csv"))
    lines = ["", "==> InstructCV demo: standard metrics on the held-out synthetic pairs", "",
             *with_chance(metrics_lines(metrics), chance), "",
             f"one answer per task, read back:        {out / 'summary.png'}",
             f"paper-style table:                     {out / 'eval' / 'table.md'} (.csv, .png)",
             f"answer images (with decoded results):  {out / 'answers'}/<task>/",
             f"evaluation answers and metrics:        {out / 'eval'}/",
             f"training log:                          {logs[-1] if logs else run / 'csv'}",
             f"  tensorboard --logdir {run / 'tensorboard'};  sampled previews: {run / 'images'}/",
             f"the trained model:                     {run}  (python edit_cli.py --ckpt {run} ...)",
             "",
             "A small model trained from scratch for minutes on CPU, on a world of coloured shapes: it shows the",
             "whole path working, not the paper's numbers. README.md says how to train and evaluate the real model."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    stages = data_stages(args, out) + training_stages(args, out)
    total = len(stages) + 3
    upstream = ""
    try:
        for number, stage in enumerate(stages, 1):
            stage.key = upstream = stage_key(stage, upstream)
            run_stage(stage, number, total, out)
        for number, make in enumerate((answer_stage, evaluation_stage, summary_stage), len(stages) + 1):
            stage = make(args, out)  # built now: they read the pairs the stages above wrote
            stage.key = upstream = stage_key(stage, upstream)
            run_stage(stage, number, total, out)
    except StageFailed as e:
        print(f"\ndemo: {e}", file=sys.stderr)
        return 1
    print(summary(out))
    print(f"\ndemo finished in {(time.perf_counter() - start) / 60:.1f} min", flush=True)
    return 0


if __name__ == "__main__":
    run(main)
