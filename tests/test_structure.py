"""Structure rules of the code base (issue 12), checked on the source files: one test function per rule.

Run alone with ``pytest tests/test_structure.py``. Each rule lists what breaks it, so a failure says
where to look. Non-test code is every tracked ``*.py`` outside ``tests/`` (and the virtual environment).
"""

from __future__ import annotations

import ast
import inspect
import os
import re
from pathlib import Path

import main
from ldm.data import PairsDataModule
from ldm.model import InstructCVModel
from tests.conftest import REPO_ROOT

TASK_TAGS = {"det", "seg", "cls", "depes", "depe", "dep", "depth"}  # tags and the names people use for them
MAX_TASK_BRANCHES = 8  # outside tasks/ and the dataset readers
MAX_MODULE_LINES = 600
FIRST_PARTY = {"instructcv", "tasks", "dataset_creation", "ldm", "evaluation", "baselines"}
PAIRS_FILE_NAMES = ("seeds.json", "metadata.jsonl", "prompt.json", "_0.jpg", "_1.png", "bbox.json")
MAX_INNER_IMPORTS = 30
SKIP_DIRS = {".venv", "tests", ".git", "build", "outputs", "data", "logs", "node_modules"}


def source_files() -> list[Path]:
    """Every non-test Python file of the project (hidden and generated folders skipped)."""
    out = []
    for folder, dirs, files in os.walk(REPO_ROOT):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith("."))
        out += [Path(folder) / f for f in files if f.endswith(".py")]
    return sorted(out)


def _is_tag(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and node.value in TASK_TAGS


def _names_a_task(node: ast.AST) -> bool:
    """``task``, ``tag``, ``sample.task``, ``row["task"]``, ``col.task``, ...: something that holds a task tag."""
    if isinstance(node, ast.Name):
        return node.id in ("task", "tag", "t")
    if isinstance(node, ast.Attribute):
        return node.attr in ("task", "tag")
    if isinstance(node, ast.Subscript):
        return isinstance(node.slice, ast.Constant) and node.slice.value == "task"
    return False


def task_branches(tree: ast.AST) -> list[int]:
    """Lines comparing a task against a tag: ``task == "det"``, ``row["task"] in ("det", "seg")``, ..."""
    lines = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Compare):
            continue
        operands = [node.left, *node.comparators]
        tags = [o for o in operands if _is_tag(o)]
        tags += [e for o in operands if isinstance(o, (ast.Tuple, ast.List, ast.Set)) for e in o.elts if _is_tag(e)]
        if tags and any(_names_a_task(o) for o in operands):
            lines.append(node.lineno)
    return lines


def test_task_branches_stay_in_tasks_and_readers() -> None:
    """Task knowledge lives in tasks/ (and each dataset's reader); everything else calls the Task interface."""
    found = []
    for path in source_files():
        rel = path.relative_to(REPO_ROOT).as_posix()
        if rel.startswith(("tasks/", "dataset_creation/readers/")):
            continue
        found += [f"{rel}:{line}" for line in task_branches(ast.parse(path.read_text(encoding="utf-8")))]
    assert len(found) <= MAX_TASK_BRANCHES, (
        f"{len(found)} task branches outside tasks/ and the readers (at most {MAX_TASK_BRANCHES}): {found}"
    )


def test_the_scan_finds_task_branches() -> None:
    """The rule above counts what it should (a scan that finds nothing would always pass)."""
    code = (
        'if task == "det": pass\n'
        'if row["task"] in ("seg", "cls"): pass\n'
        'x = 1 if sample.task != "depes" else 2\n'
        'if name == "det": pass\n'  # not a task variable
        'if task == other: pass\n'  # no tag
    )
    assert task_branches(ast.parse(code)) == [1, 2, 3]


def test_no_module_over_600_lines() -> None:
    """Files keep to one job; a module past 600 lines is doing several."""
    long = {p.relative_to(REPO_ROOT).as_posix(): n for p in source_files()
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES}  # fmt: skip
    assert not long, f"modules over {MAX_MODULE_LINES} lines: {long}"


def test_the_pairs_file_names_appear_in_one_module() -> None:
    holders = {}
    for path in source_files():
        text = path.read_text(encoding="utf-8")
        found = [name for name in PAIRS_FILE_NAMES if name in text]
        if found:
            holders[str(path.relative_to(REPO_ROOT))] = found
    assert list(holders) == ["instructcv/pairs.py"], holders


def test_one_place_combines_classifier_free_guidance() -> None:
    # the two-way combination: uncond + cfg_text * (text - image) + cfg_image * (image - uncond)
    combination = re.compile(r"cfg_text\s*\*\s*\(|cfg_image\s*\*\s*\(|guidance_scale\s*\*\s*\(")
    places = {str(p.relative_to(REPO_ROOT)): len(combination.findall(p.read_text(encoding="utf-8")))
              for p in source_files()}  # fmt: skip
    places = {k: v for k, v in places.items() if v}
    assert places == {"ldm/sampling.py": 2}, places  # one expression: its text and its image term


def inner_first_party_imports() -> dict[str, int]:
    """Per file, the first-party modules imported inside functions (``import a.b`` / ``from a.b import x``)."""
    counts: dict[str, int] = {}
    for path in source_files():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        n = 0
        for fn in ast.walk(tree):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(fn):
                if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    n += node.module.split(".")[0] in FIRST_PARTY
                elif isinstance(node, ast.Import):
                    n += sum(alias.name.split(".")[0] in FIRST_PARTY for alias in node.names)
        if n:
            counts[str(path.relative_to(REPO_ROOT))] = n
    return counts



# 17 today: each one left keeps a --help fast (torch/diffusers/Lightning take seconds) and says so in a comment
def test_few_first_party_imports_inside_functions() -> None:
    counts = inner_first_party_imports()
    assert sum(counts.values()) <= MAX_INNER_IMPORTS, sorted(counts.items(), key=lambda kv: -kv[1])


def test_training_defaults_live_in_main_defaults_only() -> None:
    # the module and the data module declare their arguments without defaults; main.py's DEFAULTS has them all
    pairs_params = {k: v for k, v in main.data_params().items() if k not in main.SHARDS_ONLY_PARAMS}
    for cls, params, own in ((InstructCVModel, main.model_params(), {"components", "config"}),
                             (PairsDataModule, pairs_params, {"components"})):  # fmt: skip
        args = {n: p for n, p in inspect.signature(cls.__init__).parameters.items() if n != "self"}
        assert set(args) - own == set(params), cls.__name__
        assert all(args[n].default is inspect.Parameter.empty for n in params), cls.__name__
