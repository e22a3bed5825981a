"""Structure rules of the non-test code that anyone can run (issue 12): each is one scan, one rule."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import pytest

import main
from ldm.data import PairsDataModule
from ldm.model import InstructCVModel

ROOT = Path(__file__).resolve().parents[1]
FIRST_PARTY = {"instructcv", "tasks", "dataset_creation", "ldm", "evaluation", "baselines"}
PAIRS_FILE_NAMES = ("seeds.json", "metadata.jsonl", "prompt.json", "_0.jpg", "_1.png", "bbox.json")
MAX_INNER_IMPORTS = 30


def source_files() -> list[Path]:
    """Every Python file of the project outside tests/ and the virtual environment."""
    skip = {"tests", ".venv", "build", "outputs", "logs", "data"}
    return sorted(p for p in ROOT.rglob("*.py") if not skip & set(p.relative_to(ROOT).parts[:1])
                  and "site-packages" not in p.parts)  # fmt: skip


def test_the_pairs_file_names_appear_in_one_module() -> None:
    holders = {}
    for path in source_files():
        text = path.read_text(encoding="utf-8")
        found = [name for name in PAIRS_FILE_NAMES if name in text]
        if found:
            holders[str(path.relative_to(ROOT))] = found
    assert list(holders) == ["instructcv/pairs.py"], holders


def test_one_place_combines_classifier_free_guidance() -> None:
    # the two-way combination: uncond + cfg_text * (text - image) + cfg_image * (image - uncond)
    combination = re.compile(r"cfg_text\s*\*\s*\(|cfg_image\s*\*\s*\(|guidance_scale\s*\*\s*\(")
    places = {str(p.relative_to(ROOT)): len(combination.findall(p.read_text(encoding="utf-8")))
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
            counts[str(path.relative_to(ROOT))] = n
    return counts


# 86 today: main.py 13, edit_cli.py 1 and app.py's loader 1 keep --help fast (torch/diffusers, seconds;
# a comment says so); evaluate.py 11, baselines/ 27, benchmarks 10 and the task-side files of issue 12's
# other half hold the rest. Remove the mark once they are hoisted: strict, so it cannot be forgotten.
@pytest.mark.xfail(strict=True, reason="inner imports of files outside this branch remain (see the comment)")
def test_few_first_party_imports_inside_functions() -> None:
    counts = inner_first_party_imports()
    assert sum(counts.values()) <= MAX_INNER_IMPORTS, sorted(counts.items(), key=lambda kv: -kv[1])


def test_training_defaults_live_in_main_defaults_only() -> None:
    # the module and the data module declare their arguments without defaults; main.py's DEFAULTS has them all
    for cls, params, own in ((InstructCVModel, main.model_params(), {"components", "config"}),
                             (PairsDataModule, main.data_params(), {"components"})):  # fmt: skip
        args = {n: p for n, p in inspect.signature(cls.__init__).parameters.items() if n != "self"}
        assert set(args) - own == set(params), cls.__name__
        assert all(args[n].default is inspect.Parameter.empty for n in params), cls.__name__
