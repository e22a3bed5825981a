"""Score InstructCV on evaluation pairs the standard way: from answer images, or by running a model first.

    python evaluate.py --pairs <eval pairs dir> --predictions <dir> --out metrics.json
    python evaluate.py --pairs <eval pairs dir> --ckpt <model> --out metrics.json
    python evaluate.py --table results/*.json --out results/table.md

Writes metrics.json as ``{task: {dataset: {metric: value, ..., "n": queries}}}`` (DESIGN.md section 6)
and, beside it, ``<name>.meta.json`` (model, settings, protocols, absent-class report, every missing
answer). The protocol of each task and dataset is written down in ``evaluation/protocols.py``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

try:  # run as a script from anywhere, with or without the package installed
    import evaluation  # noqa: F401
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from evaluation import protocols, report
from evaluation.answers import AnswerCache, answer_index
from evaluation.pairs import read_pairs
from evaluation.queries import build_queries
from evaluation.scoring import score_queries
from evaluation.table import markdown, write_table
from instructcv.cli import EXIT_OK, EXIT_PARTIAL, UsageError, run, setup_logging
from instructcv.io import write_json
from tasks import parse_names, parse_tasks

EXAMPLES = """\
examples:
  # score answer images <dir>/<sample>.png made by any means (e.g. edit_cli.py on each sample)
  python evaluate.py --pairs data/image_pairs_evaluation --predictions outputs/answers --out results/mine.json

  # run a model over every sample (answers cached in results/instructcv_answers/, reused on a re-run)
  python evaluate.py --pairs data/image_pairs_evaluation --ckpt checkpoints/InstructCV --out results/instructcv.json

  # a quick look: 200 images per task and dataset (the same 200 every time), seg and det on ADE20K and VOC
  python evaluate.py --pairs data/image_pairs_evaluation --ckpt logs/my_run --tasks seg det \\
      --datasets ade20k voc --limit 200 --batch-size 8 --out results/quick.json

  # also report the original project's scoring, to see why its published numbers are higher
  python evaluate.py --pairs data/image_pairs_evaluation --predictions results/instructcv_answers \\
      --protocol instructcv --out results/instructcv_both.json

  # one table (Markdown, CSV, PNG) of InstructCV and the baselines
  python evaluate.py --table results/*.json --out results/table.md

Build the evaluation pairs with dataset_creation/format_dataset.py --split eval (see data/README.md).
Besides the pairs samples, each image with det or seg samples is also asked about --absent-per-image
classes it does not contain (seeded; false positives count). Answers that are missing or unreadable are
listed and scored as blank answers; the exit status is then 2.
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="evaluate.py",
        description=__doc__.split("\n\n")[0],
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    io = p.add_argument_group("what to score")
    io.add_argument("--pairs", help="evaluation pairs folder (format_dataset.py --split eval)")
    io.add_argument("--predictions", metavar="DIR",
                    help="answer images <DIR>/<sample>.png|.jpg; with --ckpt, the answers cache "
                         "(default: <out name>_answers/ beside --out)")  # fmt: skip
    io.add_argument(
        "--ckpt",
        metavar="MODEL",
        help="run this model first: hub id, diffusers folder, .ckpt/.safetensors or main.py run folder",
    )
    io.add_argument(
        "--out",
        required=True,
        help="metrics.json to write (with --table: the table, written as .md, .csv and .png)",
    )
    io.add_argument(
        "--table",
        nargs="+",
        metavar="RESULT_JSON",
        help="merge these result files (evaluate.py's and the baselines') into the paper's table",
    )
    io.add_argument(
        "--model-name",
        "--model_name",
        dest="model_name",
        help="name of this model in tables (default: the --ckpt or --predictions folder name)",
    )

    q = p.add_argument_group("which queries")
    q.add_argument(
        "--tasks", nargs="+", metavar="TASK", help="det seg cls depes (also det,seg or ['det']; default all)"
    )
    q.add_argument(
        "--datasets", nargs="+", metavar="NAME", help="datasets of the pairs to score (default all)"
    )
    q.add_argument(
        "--limit",
        type=int,
        metavar="N",
        help="N images per task and dataset, the same ones for the same --seed (default: all)",
    )
    q.add_argument("--absent-per-image", "--absent_per_image", dest="absent_per_image", type=int, default=1,
                   metavar="K", help="det/seg queries per image for classes it does not contain (default 1; "
                                     "-1: every class; 0: none)")  # fmt: skip
    q.add_argument(
        "--protocol",
        choices=("standard", "instructcv"),
        default="standard",
        help="instructcv: also report the original project's scoring, labelled *_instructcv_protocol",
    )
    q.add_argument(
        "--data_root",
        "--data-root",
        dest="data_root",
        nargs="+",
        metavar="DATASET=PATH",
        help="raw dataset folder for ground truth, overriding the data_root the pairs recorded",
    )

    m = p.add_argument_group("model and sampling (with --ckpt)")
    m.add_argument("--steps", type=int, default=100, help="sampling steps (100)")
    m.add_argument(
        "--cfg-text", "--cfg_text", dest="cfg_text", type=float, default=7.5, help="text guidance (7.5)"
    )
    m.add_argument(
        "--cfg-image", "--cfg_image", dest="cfg_image", type=float, default=1.5, help="image guidance (1.5)"
    )
    m.add_argument("--resolution", type=int, default=512, help="long side images are sampled at (512)")
    m.add_argument(
        "--seed",
        type=int,
        default=0,
        help="sampling seed, and the seed of --limit subsets and absent-class queries (0)",
    )
    m.add_argument(
        "--batch-size",
        "--batch_size",
        dest="batch_size",
        type=int,
        default=1,
        help="images per UNet batch (1)",
    )
    m.add_argument("--scheduler", default=None, help="sampler (default: euler_ancestral)")
    m.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    m.add_argument(
        "--dtype", default="auto", choices=["auto", "fp32", "bf16", "fp16"], help="(auto: bf16 on GPU)"
    )
    m.add_argument(
        "--no-ema", "--no_ema", dest="use_ema", action="store_false", help="use the non-EMA UNet weights"
    )
    m.add_argument(
        "--allow-unsafe-pickle",
        "--allow_unsafe_pickle",
        dest="allow_unsafe_pickle",
        action="store_true",
        help="allow a checkpoint that needs full unpickling (only files you trust)",
    )
    m.add_argument("--overwrite", action="store_true", help="make every cached answer again")

    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--verbose", action="store_true", help="debug logging")
    return p


def parse_data_roots(values: list[str] | None, datasets: set[str]) -> dict[str, Path]:
    """``DATASET=PATH`` pairs (or one bare PATH when the pairs hold a single dataset)."""
    out: dict[str, Path] = {}
    for value in values or []:
        name, sep, path = value.partition("=")
        if not sep:
            if len(datasets) != 1:
                raise UsageError(
                    f"--data_root {value}: write DATASET=PATH (the pairs hold {', '.join(sorted(datasets))})"
                )
            name, path = next(iter(datasets)), value
        if name not in datasets:
            raise UsageError(f"--data_root {value}: the pairs have no {name!r} samples "
                             f"(they have {', '.join(sorted(datasets))})")  # fmt: skip
        root = Path(path).expanduser().resolve()
        if not root.is_dir():
            raise UsageError(f"--data_root {value}: no such folder")
        out[name] = root
    return out


def meta_path(out: Path) -> Path:
    """``results/x.json`` -> ``results/x.meta.json``."""
    return out.with_name(
        (out.name[: -len(".json")] if out.name.endswith(".json") else out.name) + ".meta.json"
    )


def run_table(args: argparse.Namespace) -> int:
    table, written = write_table(args.table, args.out)
    for path, reason in table.skipped:
        print(f"skipped {path}: {reason}", file=sys.stderr)
    for note in table.notes:
        print(f"note: {note}", file=sys.stderr)
    if not table.rows:
        raise UsageError("--table: no usable result file among " + " ".join(args.table))
    print(markdown(table), end="")
    print(f"done: {len(table.rows)} row(s) from {table.n_files} file(s) -> "
          + ", ".join(str(p) for p in written))  # fmt: skip
    return EXIT_PARTIAL if table.skipped else EXIT_OK


def _check_numbers(args: argparse.Namespace) -> None:
    for name, low in (("steps", 1), ("batch_size", 1), ("resolution", 64)):
        if getattr(args, name) < low:
            raise UsageError(f"--{name.replace('_', '-')} must be at least {low}, got {getattr(args, name)}")
    if args.limit is not None and args.limit < 1:
        raise UsageError(f"--limit must be at least 1, got {args.limit}")


def _settings(args: argparse.Namespace) -> dict:
    from ldm.sampling import DEFAULT_SCHEDULER  # torch: seconds, not for --help or scoring answer images

    ckpt = Path(args.ckpt).expanduser()
    model = str(ckpt.resolve()) if ckpt.exists() else args.ckpt
    return {"model": model, "steps": args.steps, "cfg_text": args.cfg_text, "cfg_image": args.cfg_image,
            "resolution": args.resolution, "seed": args.seed, "scheduler": args.scheduler or DEFAULT_SCHEDULER,
            "use_ema": args.use_ema, "device": args.device, "dtype": args.dtype}  # fmt: skip


def answer_with_model(args: argparse.Namespace, queries: list[dict], out: Path) -> tuple[Path, object, dict]:
    """Fill the answers cache for ``queries`` with ``--ckpt``; (cache folder, Generation, meta entries)."""
    from evaluation.inference import generate_answers, load_model  # diffusers: seconds, only to run a model

    cache = AnswerCache(Path(args.predictions) if args.predictions else out.with_name(out.stem + "_answers"))
    settings = _settings(args)
    wanted = {q["sample"] for q in queries}
    if args.overwrite:
        cache.forget(sorted(wanted))
    existing = {s for s in answer_index(cache.root) if s in wanted}
    note = cache.check_settings(settings, len(existing))
    if note:
        print(f"note: {note}")

    def get_model():
        model = load_model(args.ckpt, device=args.device, dtype=args.dtype, scheduler=args.scheduler,
                           use_ema=args.use_ema, allow_unsafe_pickle=args.allow_unsafe_pickle,
                           verbose=args.verbose)  # fmt: skip
        cache.write_settings(
            settings
        )  # only once the model has loaded: a failed load must not claim the cache
        return model

    generation = generate_answers(queries, args.pairs, cache, get_model, have=existing, steps=args.steps,
                                  cfg_text=args.cfg_text, cfg_image=args.cfg_image, resolution=args.resolution,
                                  seed=args.seed, batch_size=args.batch_size, progress=not args.quiet)  # fmt: skip
    print(f"answers: {generation.generated} generated, {generation.reused} reused from {cache.root}")
    meta = {"settings": settings,
            "generation": {"generated": generation.generated, "reused": generation.reused,
                           "model_loaded": generation.model_loaded,
                           "failed": [{"sample": s, "reason": r} for s, r in generation.failed]}}  # fmt: skip
    return cache.root, generation, meta


def describe_run(args: argparse.Namespace, qs, result, predictions: Path, problems: list[str]) -> dict:
    """The ``.meta.json`` content: what was scored, how, and everything that went wrong."""

    absent_scored = qs.n_absent - result.absent_unscored
    return {
        "model": args.model_name or (Path(args.ckpt).name if args.ckpt else predictions.resolve().name),
        "mode": "ckpt" if args.ckpt else "predictions",
        "pairs": str(Path(args.pairs).resolve()),
        "predictions": str(predictions.resolve()),
        "protocol": args.protocol,
        "queries": {"scored": result.n_queries, "pairs_samples": qs.n_pairs, "absent_generated": qs.n_absent,
                    "absent_scored": absent_scored, "absent_per_image": args.absent_per_image,
                    "limit": args.limit, "seed": args.seed, "tasks": args.tasks, "datasets": args.datasets},
        "protocols": {f"{t}/{d}": protocols.describe(t, d) for t, per in result.metrics.items() for d in per},
        "absent": result.absent,
        "failures": [{"sample": s, "reason": r} for s, r in result.failures],
        "skipped": [{"sample": s, "reason": r} for s, r in result.skipped],
        "ground_truth_fallbacks": {k: {"queries": n, "reason": why} for k, (n, why) in result.fallbacks.items()},
        "pairs_problems": problems,
    }  # fmt: skip


def print_report(qs, result, generation, problems: list[str], out: Path, seconds: float) -> None:
    """Metrics table and notes on stdout, problems on stderr, then the one-line summary."""

    lines = report.metrics_lines(result.metrics)
    lines += report.original_lines(result.metrics)
    lines += report.absent_lines(result, qs.n_absent)
    lines += report.fallback_lines(result)
    print("\n".join(lines))
    errors = report.problem_lines("unusable lines in the pairs index", [(p, "") for p in problems])
    errors += report.problem_lines("answers missing or unreadable, scored as blank answers", result.failures)
    errors += report.problem_lines("queries not scored (no usable ground truth)", result.skipped)
    if generation is not None:
        errors += report.problem_lines("queries the model could not answer", generation.failed)
    if errors:
        print("\n".join(errors), file=sys.stderr)
    absent = qs.n_absent - result.absent_unscored
    parts = [f"done: {result.n_queries} queries scored ({qs.n_pairs} pairs samples"
             + (f" + {absent} absent-class" if absent else "") + f") in {seconds:.1f} s"]  # fmt: skip
    if result.failures:
        parts.append(f"{len(result.failures)} answers missing/unreadable (scored blank)")
    if result.skipped:
        parts.append(f"{len(result.skipped)} not scored")
    print(", ".join(parts) + f" -> {out}")


def run_evaluation(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    if not args.pairs:
        raise UsageError("--pairs is required (or --table to merge result files)")
    if not args.ckpt and not args.predictions:
        raise UsageError("give --predictions DIR (answer images to score) or --ckpt MODEL (run a model)")
    _check_numbers(args)
    out = Path(args.out)
    problems: list[str] = []
    rows = read_pairs(args.pairs, problems)
    data_roots = parse_data_roots(args.data_root, {r["dataset"] for r in rows})
    qs = build_queries(rows, tasks=parse_tasks(args.tasks),
                       datasets=parse_names(args.datasets, "--datasets"), limit=args.limit, seed=args.seed,
                       absent_per_image=args.absent_per_image)  # fmt: skip
    for note in qs.notes:
        print(f"note: {note}")

    generation, run_meta = None, {}
    if args.ckpt:
        predictions, generation, run_meta = answer_with_model(args, qs.queries, out)
    else:
        predictions = Path(args.predictions)
        if not predictions.is_dir():
            raise UsageError(f"--predictions {predictions}: no such folder")
    result = score_queries(qs.queries, args.pairs, answer_index(predictions), protocol=args.protocol,
                           data_roots=data_roots, classes=qs.classes, progress=not args.quiet)  # fmt: skip

    write_json(out, result.metrics, indent=2)
    meta = {**describe_run(args, qs, result, predictions, problems), **run_meta}
    meta["seconds"] = round(time.perf_counter() - start, 2)
    write_json(meta_path(out), meta, indent=2)
    print_report(qs, result, generation, problems, out, time.perf_counter() - start)
    bad = problems or result.failures or result.skipped or (generation is not None and generation.failed)
    return EXIT_PARTIAL if bad else EXIT_OK


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.verbose)
    if args.table:
        if args.pairs or args.ckpt or args.predictions:
            raise UsageError("--table merges result files; it does not take --pairs, --ckpt or --predictions")
        return run_table(args)
    return run_evaluation(args)


if __name__ == "__main__":
    run(main)
