"""Merging result files (InstructCV's and the baselines') into the paper's table: Markdown, CSV and a PNG chart.

A result file is a metrics.json (``{task: {dataset: {metric: value, "n": n}}}``, DESIGN.md section 6),
optionally with top-level ``"model"`` and ``"meta"`` keys as the baselines write them. Its row is named
by its ``"model"``, else by the ``"model"`` of its ``<stem>.meta.json`` (what ``evaluate.py`` writes beside
its metrics.json), else by the file stem; files of the same model are merged into one row.
``*.meta.json`` files themselves are not result files and are passed over.

Columns, in the paper's order (Table 1 of InstructCV): depth RMSE on NYUv2 and SUN RGB-D, mIoU on
ADE20K and VOC, accuracy on Oxford-Pets and ImageNet-sub, mAP on COCO and VOC. A classification
result that is verification accuracy (not every class was asked of every image) is shown marked
with a dagger, never silently as top-1. Values a file reports under ``*_instructcv_protocol`` keys
(``evaluate.py --protocol instructcv``) get their own row, labelled as the original scoring.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tasks
from evaluation.protocols import SUFFIX
from instructcv.io import atomic_path, write_text

TASK_KEYS = tasks.TAGS
META_SUFFIX = ".meta.json"
DAGGER = "†"
ORIGINAL_LABEL = "(original InstructCV scoring)"
ORIGINAL_HATCH = "//"


@dataclass(frozen=True)
class Column:
    group: str
    label: str
    task: str
    datasets: tuple[str, ...]  # result keys accepted for this column, first is the canonical one
    metric: str
    higher_is_better: bool
    fallback: str | None = None  # shown (marked) when ``metric`` is missing: cls verification accuracy
    digits: int = 1  # decimals printed

    @property
    def key(self) -> str:
        return f"{self.task}_{self.datasets[0]}_{self.metric}"


COLUMNS: tuple[Column, ...] = (
    Column("Depth estimation", "NYUv2 RMSE", "depes", ("nyuv2",), "rmse", False, digits=3),
    Column("Depth estimation", "SUN RGB-D RMSE", "depes", ("sunrgbd",), "rmse", False, digits=3),
    Column("Semantic segmentation", "ADE20K mIoU", "seg", ("ade20k",), "mIoU", True),
    Column("Semantic segmentation", "VOC mIoU", "seg", ("voc",), "mIoU", True),
    Column("Classification", "Oxford-Pets Acc", "cls", ("pets",), "accuracy", True, "verification_accuracy"),
    Column(
        "Classification",
        "ImageNet-sub Acc",
        "cls",
        ("imagenet", "imagenet-sub", "imagenet_sub"),
        "accuracy",
        True,
        "verification_accuracy",
    ),
    Column("Object detection", "COCO mAP", "det", ("coco",), "mAP", True),
    Column("Object detection", "VOC mAP", "det", ("voc",), "mAP", True),
)


@dataclass
class Cell:
    value: float
    n: int | None = None
    verification: bool = False  # cls: verification accuracy, not top-1
    source: str = ""
    queries: str | None = None  # det/seg/cls: which (image, class) pairs were asked ("all", "present+1absent")
    background: bool | None = None  # seg: is a background class part of the mean


@dataclass
class Row:
    model: str
    cells: dict[str, Cell] = field(default_factory=dict)


@dataclass
class Table:
    rows: list[Row]
    skipped: list[tuple[str, str]]  # (file, reason)
    notes: list[str]
    n_files: int = 0  # result files merged


def model_name(path: Path, doc: dict[str, Any]) -> str:
    """The row name of a result file: its "model", its meta file's "model", or its stem."""
    if isinstance(doc.get("model"), str) and doc["model"].strip():
        return doc["model"].strip()
    meta = path.with_name(path.name[: -len(".json")] + META_SUFFIX) if path.name.endswith(".json") else None
    if meta is not None and meta.is_file():
        try:
            name = json.loads(meta.read_text(encoding="utf-8")).get("model")
            if isinstance(name, str) and name.strip():
                return name.strip()
        except (OSError, ValueError, AttributeError):
            pass
    return path.stem


def _cells(doc: dict[str, Any], source: str, original: bool) -> dict[str, Cell]:
    out: dict[str, Cell] = {}
    for col in COLUMNS:
        per_dataset = doc.get(col.task)
        if not isinstance(per_dataset, dict):
            continue
        for ds in col.datasets:
            values = per_dataset.get(ds)
            if not isinstance(values, dict):
                continue
            n = values.get("n") if isinstance(values.get("n"), int) else None
            labels = {"queries": values.get("queries"), "background": values.get("background_included")}
            if original:
                v = values.get(col.metric + SUFFIX)
                if isinstance(v, (int, float)):
                    out[col.key] = Cell(float(v), n, False, source)
            elif isinstance(values.get(col.metric), (int, float)):
                out[col.key] = Cell(float(values[col.metric]), n, False, source, **labels)
            elif col.fallback and isinstance(values.get(col.fallback), (int, float)):
                out[col.key] = Cell(float(values[col.fallback]), n, True, source, **labels)
            break
    return out


def merge(paths: list[str | Path]) -> Table:
    """Read every result file and merge them into rows (first appearance order of the models)."""
    rows: dict[str, Row] = {}
    n_files = 0
    skipped: list[tuple[str, str]] = []
    notes: list[str] = []
    for raw in paths:
        path = Path(raw)
        if path.name.endswith(META_SUFFIX):
            continue
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            skipped.append((str(path), "no such file"))
            continue
        except (OSError, ValueError) as e:
            skipped.append((str(path), f"not a readable JSON file ({e})"))
            continue
        if not isinstance(doc, dict) or not any(isinstance(doc.get(t), dict) for t in TASK_KEYS):
            skipped.append((str(path), "not a result file (no det/seg/cls/depes results in it)"))
            continue
        name = model_name(path, doc)
        n_files += 1
        for original in (False, True):
            cells = _cells(doc, str(path), original)
            if not cells:
                continue
            label = f"{name} {ORIGINAL_LABEL}" if original else name
            row = rows.setdefault(label, Row(label))
            for key, cell in cells.items():
                if key in row.cells and row.cells[key].source != cell.source:
                    notes.append(f"{label}: {key} given by {row.cells[key].source} and {cell.source}; "
                                 f"the value of {cell.source} is shown")  # fmt: skip
                row.cells[key] = cell
        if not any(_cells(doc, str(path), o) for o in (False, True)):
            notes.append(f"{path}: none of its results is a column of the paper's table")
    return Table(list(rows.values()), skipped, notes, n_files)


def _fmt(col: Column, cell: Cell | None) -> str:
    if cell is None:
        return "–"
    text = f"{cell.value:.{col.digits}f}"
    return text + (DAGGER if cell.verification else "")


def markdown(table: Table) -> str:
    """The table as Markdown, with a header line of task groups and the footnotes that apply."""
    arrow = {True: "↑", False: "↓"}
    header = ["Model", *[f"{c.group}: {c.label} {arrow[c.higher_is_better]}" for c in COLUMNS]]
    lines = ["| " + " | ".join(header) + " |", "|---" + "|---:" * len(COLUMNS) + "|"]
    for row in table.rows:
        lines.append("| " + " | ".join([row.model, *[_fmt(c, row.cells.get(c.key)) for c in COLUMNS]]) + " |")
    foot = ["", "RMSE in metres (lower is better); mIoU, accuracy and mAP in percent (higher is better); "
            "– = not evaluated. Every value is computed the standard way (DESIGN.md section 6) unless the row "
            "says \"original InstructCV scoring\" (ground-truth-filtered boxes, per-image IoU mean, bitwise-AND "
            "depth masking: not comparable with the other rows)."]  # fmt: skip
    if any(cell.verification for row in table.rows for cell in row.cells.values()):
        foot.append(f"{DAGGER} verification accuracy (share of class queries answered right), not top-1: "
                    "not every class was asked of every image.")  # fmt: skip
    foot += protocol_footnote(table)
    counts = []
    for row in table.rows:
        ns = [f"{c.label} {row.cells[c.key].n}" for c in COLUMNS if c.key in row.cells and row.cells[c.key].n]
        if ns:
            counts.append(f"- {row.model}: " + ", ".join(ns))
    if counts:
        foot += ["", "Samples scored (n):", *counts]
    return "\n".join(["# InstructCV and specialist baselines", "", *lines, *foot]) + "\n"


def protocol_footnote(table: Table) -> list[str]:
    """Footnote lines naming the query protocol (and VOC background) of every cell that records one."""
    lines = []
    for row in table.rows:
        parts = []
        for c in COLUMNS:
            cell = row.cells.get(c.key)
            if cell is None or cell.queries is None:
                continue
            extra = "" if cell.background is None else f", background {'in' if cell.background else 'not in'} the mean"
            parts.append(f"{c.label} {cell.queries}{extra}")
        if parts:
            lines.append(f"- {row.model}: " + ", ".join(parts))
    if not lines:
        return []
    return ["", "Queries asked (\"all\": every class of the dataset asked of every image, the protocol comparable "
            "with specialist numbers, `evaluate.py --absent-per-image -1`; \"present+1absent\": the classes present "
            "plus one absent class per image):", *lines]  # fmt: skip


def csv_text(table: Table) -> str:
    """One row per model: each column's value, its n and whether it is verification accuracy."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    header = ["model"]
    for c in COLUMNS:
        header += [c.key, f"{c.key}_n"] + ([f"{c.key}_is_verification"] if c.fallback else [])
    w.writerow(header)
    for row in table.rows:
        out: list[Any] = [row.model]
        for c in COLUMNS:
            cell = row.cells.get(c.key)
            out += [
                "" if cell is None else repr(round(cell.value, 6)),
                "" if cell is None or cell.n is None else cell.n,
            ]
            if c.fallback:
                out.append("" if cell is None else int(cell.verification))
        w.writerow(out)
    return buf.getvalue()


def write_png(table: Table, path: str | Path) -> None:
    """A bar chart per column (models side by side), matplotlib's Agg backend, written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = [r.model for r in table.rows]
    colours = plt.get_cmap("tab10")
    fig, axes = plt.subplots(2, 4, figsize=(16, 7.5), squeeze=False)
    for ax, col in zip(axes.ravel(), COLUMNS, strict=False):
        values = [r.cells[col.key].value if col.key in r.cells else 0.0 for r in table.rows]
        bars = ax.bar(range(len(models)), values, color=[colours(i % 10) for i in range(len(models))],
                      hatch=[ORIGINAL_HATCH if r.model.endswith(ORIGINAL_LABEL) else "" for r in table.rows])  # fmt: skip
        if not any(col.key in r.cells for r in table.rows):
            ax.set_ylim(0, 1)
            ax.set_yticks([])
        for bar, row in zip(bars, table.rows, strict=True):
            cell = row.cells.get(col.key)
            label = "n/a" if cell is None else _fmt(col, cell)
            ax.annotate(label, (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center", va="bottom",
                        fontsize=7, xytext=(0, 2), textcoords="offset points")  # fmt: skip
        ax.set_title(f"{col.label} ({'higher' if col.higher_is_better else 'lower'} is better)", fontsize=9)
        ax.set_xticks(range(len(models)))
        ax.set_xticklabels([str(i + 1) for i in range(len(models))], fontsize=8)
        ax.tick_params(axis="y", labelsize=7)
        ax.margins(y=0.15)
    handles = [plt.Rectangle((0, 0), 1, 1, facecolor=colours(i % 10), hatch=ORIGINAL_HATCH if m.endswith(ORIGINAL_LABEL)
                             else "") for i, m in enumerate(models)]  # fmt: skip
    fig.legend(handles, [f"{i + 1}: {m}" for i, m in enumerate(models)], loc="lower center",
               ncol=min(3, max(1, len(models))), fontsize=8, frameon=False)  # fmt: skip
    fig.suptitle("InstructCV and specialist baselines (standard metrics; hatched: the original InstructCV scoring)"
                 if any(m.endswith(ORIGINAL_LABEL) for m in models) else
                 "InstructCV and specialist baselines (standard metrics)")  # fmt: skip
    fig.tight_layout(rect=(0, 0.04 + 0.03 * ((len(models) + 2) // 3), 1, 0.96))
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def write_table(paths: list[str | Path], out: str | Path) -> tuple[Table, list[Path]]:
    """Merge ``paths`` and write ``<out>.md``, ``<out>.csv`` and ``<out>.png`` (``out``'s suffix replaced)."""
    table = merge(paths)
    out = Path(out)
    written = [out.with_suffix(".md"), out.with_suffix(".csv"), out.with_suffix(".png")]
    if table.rows:
        write_text(written[0], markdown(table))
        write_text(written[1], csv_text(table))
        write_png(table, written[2])
    return table, written if table.rows else []
