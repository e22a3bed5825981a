"""The four vision tasks as image-to-image answers: instructions, target codecs, metrics, parser.

``TASKS`` maps a task tag (``det``, ``seg``, ``cls``, ``depes``) to its module; every module has
``TAG``, ``TEMPLATES``, ``make_instruction``, ``encode``, ``decode`` and ``new_metric`` (see
docs/ARCHITECTURE.md section 2). Nothing here reads or writes files.
"""

from __future__ import annotations

from types import ModuleType

from tasks import classification, depth, detection, segmentation
from tasks.parser import ParsedInstruction, parse_instruction

TASKS: dict[str, ModuleType] = {
    "det": detection,
    "seg": segmentation,
    "cls": classification,
    "depes": depth,
}

_ALIASES = {"detection": "det", "segmentation": "seg", "classification": "cls", "depth": "depes",
            "depe": "depes", "depth_estimation": "depes"}


def get_task(tag: str) -> ModuleType:
    """The module of task ``tag`` (long names such as "depth" are accepted too)."""
    key = str(tag).strip().lower()
    key = _ALIASES.get(key, key)
    if key not in TASKS:
        raise ValueError(f"unknown task {tag!r}; tasks are {', '.join(TASKS)}")
    return TASKS[key]


def new_metric(task: str, dataset: str, classes=None):
    """The metric accumulator of ``task`` with ``dataset``'s protocol (``classes``: the cls class list)."""
    module = get_task(task)
    if module is classification:
        return module.new_metric(dataset, classes)
    return module.new_metric(dataset)


__all__ = ["TASKS", "ParsedInstruction", "get_task", "new_metric", "parse_instruction"]
