"""The printed results of an evaluation: metrics table, absent-class report, notes, failures, summary."""

from __future__ import annotations

from typing import Any

from evaluation.protocols import SUFFIX
from evaluation.scoring import ScoreReport

MAX_LISTED = 20  # failures printed one per line; the rest are counted (all of them are in the meta file)
PERCENT_TASKS = ("det", "seg", "cls")


def fmt(value: Any, task: str, key: str) -> str:
    """A metric value for the terminal: percentages with one decimal, depth errors with three."""
    if value is None:
        return "-"
    if isinstance(value, (str, bool)):  # protocol labels (queries, background_included)
        return str(value).lower() if isinstance(value, bool) else value
    if isinstance(value, int) and key == "n":
        return str(value)
    if task in PERCENT_TASKS:
        return f"{value:.1f}"
    return f"{value:.3f}"


def metrics_lines(metrics: dict[str, dict[str, dict[str, Any]]]) -> list[str]:
    """One line per (task, dataset): ``task  dataset  n  metric value ...`` (standard metrics only)."""
    rows = [("task", "dataset", "n", "metrics")]
    for task, per_dataset in metrics.items():
        for dataset, values in per_dataset.items():
            shown = "  ".join(
                f"{k} {fmt(v, task, k)}" for k, v in values.items() if k != "n" and not k.endswith(SUFFIX)
            )
            rows.append((task, dataset, str(values.get("n", "-")), shown))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    return [f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:>{widths[2]}}  {r[3]}".rstrip() for r in rows]


def original_lines(metrics: dict[str, dict[str, dict[str, Any]]]) -> list[str]:
    """The ``--protocol instructcv`` values, under a heading that says what they are."""
    lines = []
    for task, per_dataset in metrics.items():
        for dataset, values in per_dataset.items():
            extra = {k[: -len(SUFFIX)]: v for k, v in values.items() if k.endswith(SUFFIX)}
            if extra:
                lines.append(
                    f"  {task:<5}  {dataset:<8}  "
                    + "  ".join(f"{k} {fmt(v, task, k)}" for k, v in extra.items())
                )
    if not lines:
        return []
    return ["original InstructCV scoring (NOT standard: ground-truth-filtered boxes, per-image IoU mean, "
            "bitwise-AND depth masking; present-class queries only; keys *_instructcv_protocol):", *lines]  # fmt: skip


def absent_lines(report: ScoreReport, n_generated: int) -> list[str]:
    if report.absent_unscored:
        return [f"absent-class queries: {report.absent_unscored} generated but NOT scored: no answer exists for any "
                "of them in the predictions folder (run with --ckpt to answer them, or pass --absent-per-image 0 "
                "to silence this)"]  # fmt: skip
    if not report.absent:
        return []
    lines = [
        f"absent-class queries ({n_generated}, included in the metrics above; a perfect answer is empty):"
    ]
    for name, s in report.absent.items():
        amount = (f"{s['boxes_per_query']:.2f} boxes per query" if "boxes_per_query" in s
                  else f"{s['mask_area_pct']:.2f}% of the image masked on average")  # fmt: skip
        lines.append(f"  {name}: {s['queries']} queries, {s['empty_pct']:.1f}% answered empty, {amount}")
    return lines


def problem_lines(title: str, items: list[tuple[str, str]]) -> list[str]:
    """``title`` then one line per item, at most ``MAX_LISTED``, then a count of the rest."""
    if not items:
        return []
    lines = [f"{title} ({len(items)}):"]
    lines += [f"  {name}: {reason}" if reason else f"  {name}" for name, reason in items[:MAX_LISTED]]
    if len(items) > MAX_LISTED:
        lines.append(f"  ... and {len(items) - MAX_LISTED} more (all listed in the .meta.json file)")
    return lines


def fallback_lines(report: ScoreReport) -> list[str]:
    return [f"note: {name}: {n} quer{'y' if n == 1 else 'ies'} scored without the raw annotation: "
            f"{reason}" for name, (n, reason) in report.fallbacks.items()]  # fmt: skip
