"""The four vision tasks as image-to-image answers, and the one registry of their tags.

``TASKS`` maps a task tag (``det``, ``seg``, ``cls``, ``depes``) to its module; every module has
``TAG``, ``TEMPLATES``, ``make_instruction``, ``encode``, ``decode``, ``new_metric`` and ``TASK``, the
object the rest of the project calls (``tasks.base.Task``: build a target, read an answer back,
render it, make the metric) without branching on the tag. ``task(tag)`` gives that object.
This module is also the one place that knows the tags' other names (``depth``, ``dep``, ...) and
parses task lists as the command lines accept them (``det seg``, ``det,seg``, ``['det','seg']``).
Nothing here reads or writes files. A new task: its module here and one line in ``TASKS``.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from types import ModuleType

from instructcv.cli import UsageError
from tasks import classification, depth, detection, segmentation
from tasks.base import Task
from tasks.parser import ParsedInstruction, parse_instruction

TASKS: dict[str, ModuleType] = {
    "det": detection,
    "seg": segmentation,
    "cls": classification,
    "depes": depth,
}
TAGS: tuple[str, ...] = tuple(TASKS)

ALIASES = {"detection": "det", "segmentation": "seg", "classification": "cls", "depth": "depes",
           "depe": "depes", "dep": "depes", "depth_estimation": "depes"}  # fmt: skip


def canonical(tag: str) -> str:
    """The tag of ``tag`` or one of its other names (``depth`` -> ``depes``); ValueError when unknown."""
    key = str(tag).strip().lower()
    key = ALIASES.get(key, key)
    if key not in TASKS:
        raise ValueError(f"unknown task {tag!r}; tasks are {', '.join(TASKS)}")
    return key


def get_task(tag: str) -> ModuleType:
    """The module of task ``tag`` (long names such as "depth" are accepted too)."""
    return TASKS[canonical(tag)]


def task(tag: str) -> Task:
    """The ``Task`` object of ``tag``: what writer, evaluation, app and CLIs call."""
    return get_task(tag).TASK


def new_metric(task_tag: str, dataset: str, classes: Collection[str] | None = None):
    """The metric accumulator of ``task_tag`` with ``dataset``'s protocol (``classes``: the cls class list)."""
    return task(task_tag).new_metric(dataset, classes)


def parse_names(values: Sequence[str] | None, option: str, known: Sequence[str] | None = None,
                aliases: dict[str, str] | None = None, noun: str = "value") -> list[str] | None:  # fmt: skip
    """``a b``, ``a,b``, ``['a','b']`` or a shell-mangled ``[a]`` -> ``["a", "b"]`` (lower case, no repeats).

    ``known``: the accepted names (others are a ``UsageError`` naming ``option``); ``aliases`` map
    other names onto them.
    """
    if not values:
        return None
    out: list[str] = []
    for token in re.split(r"[\s,\[\]'\"]+", " ".join(values)):
        if not token:
            continue
        name = (aliases or {}).get(token.lower(), token.lower())
        if known is not None and name not in known:
            raise UsageError(f"unknown {noun} {token!r} in {option}; expected some of {', '.join(known)}")
        if name not in out:
            out.append(name)
    return out or None


def parse_tasks(values: Sequence[str] | None, option: str = "--tasks") -> list[str] | None:
    """A ``--tasks`` list (``det seg``, ``det,seg``, ``['det','seg']``, ``[det]``, ``depth``) -> tags."""
    return parse_names(values, option, TAGS, ALIASES, noun="task")


def order(tag: str) -> int:
    """Where ``tag`` sorts among the tasks (unknown ones last): tables and reports list them so."""
    return TAGS.index(tag) if tag in TAGS else len(TAGS)


__all__ = ["ALIASES", "TAGS", "TASKS", "ParsedInstruction", "Task", "canonical", "get_task", "new_metric",
           "order", "parse_instruction", "parse_names", "parse_tasks", "task"]
