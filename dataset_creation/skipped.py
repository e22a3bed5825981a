"""Inputs a build skipped: grouped by reason on the terminal, listed in full in a file of the save root.

A partly downloaded dataset can skip tens of thousands of files (NYUv2's train list names 24,231
frames). The end-of-run report shows each kind of reason once, with its count and first examples;
every skipped input, with its own reason, goes to ``<save_root>/skipped_inputs.txt`` (one per shard
in sharded runs), which the report names. A build that skips nothing removes a stale list.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from instructcv.io import write_text

SKIPPED_FILE = "skipped_inputs.txt"
EXAMPLES = 5  # per kind of reason
MAX_KINDS = 6  # kinds of reason shown; the rest are counted in one line

Skipped = tuple[str, str, int]  # (path, reason, samples not written)

_PARTICULARS = [
    (re.compile(r"\([^()]*\)"), "(...)"),  # parenthesised details: sample names, library messages
    (re.compile(r"'[^']*'|\"[^\"]*\""), "'...'"),  # quoted text: the offending line or value
    (re.compile(r"\S*[/\\]\S*|\S+\.[A-Za-z]{2,4}\b"), "<file>"),  # paths and file names
    (re.compile(r"\d+"), "N"),  # sizes, ids, line numbers
]


def reason_kind(reason: str) -> str:
    """``reason`` with its particulars blanked (numbers, quotes, file names), so that one failure on
    many files groups together: "listed in nyu_train.txt but missing on disk" -> "listed in <file> ..."."""
    for pattern, blank in _PARTICULARS:
        reason = pattern.sub(blank, reason)
    return reason


def group_by_kind(skipped: Sequence[Skipped]) -> list[tuple[str, list[Skipped]]]:
    """(kind of reason, its skipped inputs in order) for every kind, the most frequent first."""
    groups: dict[str, list[Skipped]] = {}
    for item in skipped:
        groups.setdefault(reason_kind(item[1]), []).append(item)
    return sorted(groups.items(), key=lambda kv: -len(kv[1]))  # stable: first seen first among equals


def line_of(item: Skipped) -> str:
    """One skipped input as a line: ``<path>: <reason>`` (+ how many samples it cost)."""
    path, reason, lost = item
    return f"{path}: {reason}" + (f" [{lost} sample(s) not written]" if lost > 1 else "")


def list_file(save_root: Path, shard: int = 0, num_shards: int = 1) -> Path:
    """Where a build (or one shard of it) lists its skipped inputs."""
    if num_shards <= 1:
        return save_root / SKIPPED_FILE
    return save_root / f"{Path(SKIPPED_FILE).stem}.shard-{shard:03d}-of-{num_shards:03d}.txt"


def write_list(path: Path, skipped: Sequence[Skipped]) -> Path | None:
    """Write every skipped input to ``path`` (atomically); with none, remove an earlier list. Returns the
    path written, or None."""
    if not skipped:
        path.unlink(missing_ok=True)
        return None
    write_text(path, "".join(line_of(item) + "\n" for item in skipped))
    return path


def summary_lines(skipped: Sequence[Skipped], listed_in: Path | None) -> list[str]:
    """The report's lines about skipped inputs: a header, then per kind of reason its count and first examples."""
    if not skipped:
        return []
    where = f"; all of them are listed in {listed_in}" if listed_in is not None else ""
    lines = [f"skipped {len(skipped)} input(s){where}:"]
    groups = group_by_kind(skipped)
    for kind, items in groups[:MAX_KINDS]:
        lines.append(f"  {len(items)} x {kind}" + (", e.g." if len(items) > EXAMPLES else ":"))
        lines += [f"    {line_of(item)}" for item in items[:EXAMPLES]]
    rest = groups[MAX_KINDS:]
    if rest:
        lines.append(f"  ... and {sum(len(v) for _, v in rest)} input(s) skipped for {len(rest)} other kind(s) "
                     "of reason" + (f" (see {listed_in})" if listed_in is not None else ""))  # fmt: skip
    return lines
