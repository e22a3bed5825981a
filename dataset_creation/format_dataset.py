"""Build instruction/image pairs (DESIGN.md section 4) from raw datasets: the command line.

Reads each ``--data_root`` with its dataset reader (``dataset_creation/readers/``) and writes the
pairs with ``dataset_creation.writer``. Several roots, or several runs into one ``--save_root``,
pool their samples; the index (instructcv.pairs) always lists every sample in the folder.
Where to get each dataset and the exact commands: ``data/README.md``.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import ModuleType

try:  # run as a script from anywhere, with or without the package installed
    import dataset_creation  # noqa: F401
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dataset_creation.readers import DATASETS, get_reader, guess_dataset
from dataset_creation.readers.base import SPLITS, LayoutError, Sample, SampleError
from dataset_creation.skipped import list_file, summary_lines, write_list
from dataset_creation.writer import (
    BuildReport,
    IndexResult,
    WriterOptions,
    clean_stale_tmp,
    rebuild_index,
    write_pairs,
)
from instructcv.cli import EXIT_OK, EXIT_PARTIAL, UsageError, run
from instructcv.pairs import METADATA_FILE, RECORD_FILE, SEEDS_FILE
from tasks import parse_tasks

EXAMPLES = """\
examples:
  # the original project's command: COCO detection pairs for training (train2017)
  python dataset_creation/format_dataset.py --save_root ./image_pairs --tasks ['det'] --data_root ./data/coco

  # all COCO tasks, 8 processes, 2 sampled negative classes per image for cls
  python dataset_creation/format_dataset.py --save_root ./image_pairs --tasks det seg cls \\
      --data_root ./data/coco --workers 8 --neg_per_image 2

  # pool the four training datasets into one folder (one run; or one run each, same --save_root)
  python dataset_creation/format_dataset.py --save_root ./image_pairs_train --tasks det seg cls depes \\
      --data_root ./data/coco ./data/ade20k ./data/oxford-iiit-pet ./data/nyu

  # evaluation pairs (official validation/test splits) go to their own folder
  python dataset_creation/format_dataset.py --save_root ./image_pairs_eval --tasks seg det \\
      --data_root ./data/VOCdevkit/VOC2012 --split eval

  # a slurm array of 10 shards, then one merge of their indexes
  python dataset_creation/format_dataset.py --save_root ./image_pairs --data_root ./data/coco \\
      --shard $SLURM_ARRAY_TASK_ID --num_shards 10
  python dataset_creation/format_dataset.py --save_root ./image_pairs --merge

Re-running a command writes only what is missing. Exit status 2 when inputs were skipped
(summarised by reason at the end, every one listed in <save_root>/skipped_inputs.txt) or the input is unusable.
"""


def _layouts() -> str:
    parts = []
    for name in DATASETS:
        try:
            reader = get_reader(name)
        except ImportError:
            continue
        parts.append(f"{name}: {getattr(reader, 'LAYOUT', (reader.__doc__ or '').strip().splitlines()[0])}")
    return "; ".join(parts)


def resolve_datasets(data_roots: Sequence[str | Path], datasets: Sequence[str] | None) -> list[tuple[Path, ModuleType]]:
    """(absolute root, reader) per ``--data_root``: named by ``--dataset`` (one for all, or one each) or guessed."""
    if datasets and len(datasets) not in (1, len(data_roots)):
        raise UsageError(f"give one --dataset for all roots or one per --data_root ({len(data_roots)}), not {len(datasets)}")
    out = []
    for i, raw in enumerate(data_roots):
        root = Path(raw).expanduser().resolve()
        if not root.is_dir():
            raise UsageError(f"--data_root {raw}: no such folder (see data/README.md for where to get each dataset)")
        name = (datasets[i] if len(datasets) > 1 else datasets[0]) if datasets else guess_dataset(root)
        if name is None:
            raise UsageError(f"--data_root {raw}: not a dataset layout this tool knows; pass --dataset or "
                             f"point it at one of: {_layouts()}")  # fmt: skip
        try:
            out.append((root, get_reader(name)))
        except (ValueError, ImportError) as e:
            raise UsageError(f"--dataset {name}: {e}") from None
    return out


def _items(plan: list[tuple[Path, ModuleType, str, list[str]]], options: dict) -> Iterator[tuple[Path, Sample | SampleError]]:
    for root, reader, split, tasks in plan:
        for item in reader.iter_samples(root, split, tasks, options):
            yield root, item


def build(
    save_root: str | Path,
    data_roots: Sequence[str | Path],
    tasks: Sequence[str] | None = None,
    dataset: Sequence[str] | str | None = None,
    split: str | None = None,
    workers: int = 1,
    prompts: str = "rephrased",
    seed: int = 0,
    neg_per_image: int | None = 1,
    neg_from: str = "all",
    det_line_width: int = 0,
    absent_per_image: int = 0,
    shard: int = 0,
    num_shards: int = 1,
    progress: bool | None = None,
) -> BuildReport:
    """Build the pairs of every root into ``save_root``; raises ``UsageError`` for an unusable layout."""
    datasets = [dataset] if isinstance(dataset, str) else (list(dataset) if dataset else None)
    if not 0 <= shard < num_shards:
        raise UsageError(f"--shard must be in 0..{num_shards - 1}, got {shard}")
    plan = []
    for root, reader in resolve_datasets(data_roots, datasets):
        reader_splits = tuple(getattr(reader, "SPLITS", SPLITS))
        the_split = split or reader_splits[0]
        wanted = [t for t in (tasks or reader.TASKS) if t in reader.TASKS]
        if not wanted:
            raise UsageError(f"{reader.NAME} ({root}) has no {', '.join(tasks or [])} pairs; "
                             f"it provides {', '.join(reader.TASKS)}")  # fmt: skip
        try:
            reader.check_layout(root, the_split)
        except LayoutError as e:
            raise UsageError(str(e)) from None
        plan.append((root, reader, the_split, wanted))
    options = {"neg_per_image": neg_per_image, "seed": seed, "neg_from": neg_from, "det_line_width": det_line_width,
               "absent_per_image": absent_per_image}
    report = write_pairs(
        save_root, _items(plan, options), WriterOptions(prompts=prompts, seed=seed), workers=workers,
        shard=shard, num_shards=num_shards, progress=progress,
    )  # fmt: skip
    report.skipped_list = write_list(list_file(Path(save_root).resolve(), shard, num_shards), report.skipped)
    return report


def _fmt_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


def _by_group(counts: Counter) -> str:
    groups: dict[tuple[str, str], list[str]] = {}
    for (ds, split, task), n in sorted(counts.items()):
        groups.setdefault((ds, split), []).append(f"{task} {n}")
    return "; ".join(f"{ds}/{split}: {', '.join(v)}" for (ds, split), v in groups.items())


def _index_line(index: IndexResult, save_root: Path) -> str:
    contents = ", ".join(f"{ds}/{split} {n}" for (ds, split), n in sorted(index.contents.items()))
    state = "updated" if index.changed else "unchanged"
    return f"index {state}: {index.samples} samples in {save_root} ({contents or 'empty'})"


def report_lines(report: BuildReport, save_root: Path, sharded: bool = False) -> list[str]:
    """The end-of-run report; the last line is the one-line summary."""
    lines = []
    if report.written:
        lines.append(f"written  {_by_group(report.written)}")
    if report.present:
        lines.append(f"present  {_by_group(report.present)} (kept from earlier runs)")
    lines += summary_lines(report.skipped, report.skipped_list)
    if report.index is not None:
        lines.append(_index_line(report.index, save_root))
        if report.index.unindexed:
            lines.append(f"note: {len(report.index.unindexed)} folder(s) without {RECORD_FILE} are not indexed "
                         f"(e.g. {report.index.unindexed[0]})")  # fmt: skip
        splits = {split for _, split in report.index.contents}
        if len(splits) > 1:
            lines.append(f"note: {save_root} mixes splits ({', '.join(sorted(splits))}); training reads every "
                         "sample of a folder: keep train and eval pairs in separate folders")  # fmt: skip
    elif sharded:
        lines.append(f"index not written (sharded run): run --save_root {save_root} --merge when all shards are done")
    rate = report.n_written / report.seconds if report.seconds > 0 else 0.0
    skipped = f", {len(report.skipped)} input(s) skipped" if report.skipped else ""
    if report.n_written == 0 and not (report.index and report.index.changed):
        lines.append(f"done: nothing new to write, {report.n_present} sample(s) already present{skipped} ({save_root})")
    else:
        lines.append(
            f"done: {report.n_written} sample(s) written, {report.n_present} already present{skipped}, "
            f"{_fmt_bytes(report.bytes_written)} in {report.seconds:.1f} s ({rate:.1f} samples/s) ({save_root})"
        )
    return lines


def merge(save_root: str | Path) -> IndexResult:
    """Rebuild the index of ``save_root`` from every sample folder (after sharded runs) and drop leftovers."""
    save_root = Path(save_root).resolve()
    if not save_root.is_dir():
        raise UsageError(f"--save_root {save_root}: no such folder")
    clean_stale_tmp(save_root, everything=True)
    return rebuild_index(save_root, full=True)


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="format_dataset.py",
        description="Build instruction/image pairs (input, target, instruction) from raw vision datasets.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--save_root", required=True, help="pairs folder to write (created; re-runs add what is missing)")
    p.add_argument("--tasks", nargs="+", metavar="TASK",
                   help="det seg cls depes, also as det,seg or ['det','seg'] (default: all the dataset has)")
    p.add_argument("--data_root", nargs="+", metavar="DIR", help="raw dataset folder(s); several roots are pooled")
    p.add_argument("--dataset", nargs="+", choices=DATASETS, metavar="NAME",
                   help=f"{'|'.join(DATASETS)}: one for all roots or one per root (default: guessed from the layout)")
    p.add_argument("--split", choices=SPLITS, help="official split to build (default: train; eval for voc/sunrgbd)")
    p.add_argument("--workers", type=int, default=1, help="processes writing pairs (default 1)")
    p.add_argument("--prompts", choices=("rephrased", "fixed"), default="rephrased",
                   help="instruction templates: many paraphrases or one fixed sentence per task")
    p.add_argument("--seed", type=int, default=0, help="seed of template, colour and negative-class choices")
    p.add_argument("--neg_per_image", type=int, default=1,
                   help="cls: absent classes asked per image (default 1; -1: all of them)")
    p.add_argument("--neg_from", choices=("all", "listed"), default="all",
                   help="cls (Pets): absent classes drawn from the dataset's whole class list (all, the default) or "
                        "only from classes its listed images have (listed: a synthetic subset of the breeds, so that "
                        "no query names a class never seen)")
    p.add_argument("--det_line_width", type=int, default=0,
                   help="det (COCO): draw the boxes N px wide instead of the released model's 4 px, e.g. for small "
                        "synthetic images a small autoencoder must keep the strokes of (default 0: the dataset's own)")
    p.add_argument("--absent_per_image", type=int, default=0,
                   help="det/seg (COCO, ADE20K), training pairs: also ask this many classes each image does not "
                        "contain, answered empty (no boxes, an empty mask), as evaluate.py asks them "
                        "(--absent-per-image); with --neg_from listed, ADE20K draws them from the classes its "
                        "split shows (default 0)")
    p.add_argument("--shard", type=int, default=0, help="this process's shard (0-based), with --num_shards")
    p.add_argument("--num_shards", type=int, default=1, help="split the raw images over this many processes")
    p.add_argument("--merge", action="store_true",
                   help=f"only rebuild the index ({SEEDS_FILE}, {METADATA_FILE}) from the sample folders "
                        "(after sharded runs)")
    p.add_argument("--no_progress", action="store_true", help="no progress bar")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    save_root = Path(args.save_root).expanduser().resolve()
    if args.merge:
        index = merge(save_root)
        print(_index_line(index, save_root))
        return EXIT_OK
    if not args.data_root:
        raise UsageError("--data_root is required (or --merge to rebuild an index)")
    if args.absent_per_image < 0:
        raise UsageError(f"--absent_per_image must be 0 or more, got {args.absent_per_image}")
    if args.workers < 1 or args.num_shards < 1:
        raise UsageError("--workers and --num_shards must be at least 1")
    report = build(
        save_root, args.data_root, parse_tasks(args.tasks), args.dataset, args.split, workers=args.workers,
        prompts=args.prompts, seed=args.seed, neg_per_image=None if args.neg_per_image < 0 else args.neg_per_image,
        neg_from=args.neg_from, det_line_width=args.det_line_width, absent_per_image=args.absent_per_image,
        shard=args.shard, num_shards=args.num_shards, progress=False if args.no_progress else None,
    )  # fmt: skip
    for line in report_lines(report, save_root, sharded=args.num_shards > 1):
        print(line)
    return EXIT_PARTIAL if report.skipped else EXIT_OK


if __name__ == "__main__":
    run(main)
