"""The pairs folder layout (DESIGN.md section 4) in one place: file names, paths, the index, reading samples.

::

    <root>/
      seeds.json                [["<sample>", ["<stem>"]], ...], sorted by sample name
      metadata.jsonl            one JSON row per sample (DESIGN.md section 4 lists the keys)
      <sample>/                 "<stem>_<task>" or "<stem>_<task>_<class_slug>"
        <stem>_0.jpg            input image
        <stem>_1.png            target image
        prompt.json             {"edit", "task", "class", "dataset"}
        bbox.json               det only: {"bbox": [[x0, y0, x1, y1], ...], "image_size": [w, h]}
        .meta.json              the sample's metadata row (the writer rebuilds the index from these)

The writer (dataset_creation/writer.py) writes it, training (ldm/data.py, ldm/latent_cache.py),
evaluation (evaluation/pairs.py) and the demo read it; none of them spells a file name itself.
Reading is plain: ``iter_pairs(roots)`` yields ``PairSample`` (root, sample, stem, the paths) and
``read_prompt`` gives its instruction; ``read_index`` gives the metadata rows.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from instructcv.cli import UsageError
from instructcv.images import ImageReadError
from instructcv.io import write_text

SEEDS_FILE = "seeds.json"
METADATA_FILE = "metadata.jsonl"
PROMPT_FILE = "prompt.json"
BBOX_FILE = "bbox.json"
RECORD_FILE = ".meta.json"
INPUT_MARK, INPUT_EXT = "_0", ".jpg"
TARGET_MARK, TARGET_EXT = "_1", ".png"


def class_slug(name: str) -> str:
    """Class names in folder names: lower case, spaces (and slashes) turned into ``_``."""
    return "_".join(name.strip().lower().replace("/", " ").split())


def sample_name(stem: str, task: str, class_name: str | None = None) -> str:
    """Sample folder name: ``<stem>_<task>`` or ``<stem>_<task>_<class_slug>``."""
    return f"{stem}_{task}" if class_name is None else f"{stem}_{task}_{class_slug(class_name)}"


def input_name(stem: str) -> str:
    """File name of a sample's input image."""
    return f"{stem}{INPUT_MARK}{INPUT_EXT}"


def target_name(stem: str) -> str:
    """File name of a sample's target image."""
    return f"{stem}{TARGET_MARK}{TARGET_EXT}"


def is_input_file(name: str) -> bool:
    """Whether a file name is an input image of this layout."""
    return name.endswith(INPUT_MARK + INPUT_EXT)


def is_target_file(name: str) -> bool:
    """Whether a file name is a target image of this layout."""
    return name.endswith(TARGET_MARK + TARGET_EXT)


def prompt_entry(edit: str, task: str, class_name: str | None, dataset: str) -> dict[str, Any]:
    """The content of a sample's prompt file."""
    return {"edit": edit, "task": task, "class": class_name, "dataset": dataset}


def bbox_entry(boxes: list, size: tuple[int, int]) -> dict[str, Any]:
    """The content of a det sample's box file: the drawn boxes and the image size ``(w, h)``."""
    return {"bbox": boxes, "image_size": [int(size[0]), int(size[1])]}


@dataclass(frozen=True)
class PairSample:
    """One sample of a pairs folder: ``<root>/<sample>/`` holding the files of raw image ``stem``."""

    root: Path
    sample: str
    stem: str

    @property
    def folder(self) -> Path:
        return self.root / self.sample

    @property
    def input_path(self) -> Path:
        return self.folder / input_name(self.stem)

    @property
    def target_path(self) -> Path:
        return self.folder / target_name(self.stem)

    @property
    def prompt_path(self) -> Path:
        return self.folder / PROMPT_FILE

    @property
    def bbox_path(self) -> Path:
        return self.folder / BBOX_FILE

    @property
    def files(self) -> tuple[Path, Path, Path]:
        """Input, target and prompt: what training needs."""
        return self.input_path, self.target_path, self.prompt_path

    @property
    def key(self) -> str:
        """Unique within its pairs folder."""
        return f"{self.sample}/{self.stem}"


def read_prompt(sample: PairSample) -> str:
    """The instruction (``edit``) of a sample; ``ImageReadError`` naming the file when it cannot be read."""
    try:
        prompt = json.loads(sample.prompt_path.read_text(encoding="utf-8"))["edit"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ImageReadError(sample.prompt_path, f"no readable 'edit' instruction ({type(e).__name__})") from None
    if not isinstance(prompt, str):
        raise ImageReadError(sample.prompt_path, "'edit' is not a string")
    return prompt


def sample_tasks(samples: Sequence[PairSample]) -> list[str | None]:
    """The task of each sample: its metadata row's, else its prompt file's; None when neither says."""
    rows = {root: read_index(root) or {} for root in {s.root for s in samples}}
    out: list[str | None] = []
    for s in samples:
        task = rows[s.root].get(s.sample, {}).get("task")
        if task is None:
            try:
                task = json.loads(s.prompt_path.read_text(encoding="utf-8")).get("task")
            except (OSError, ValueError, AttributeError):
                task = None
        out.append(task if isinstance(task, str) else None)
    return out


def read_seeds(root: str | os.PathLike) -> list[PairSample]:
    """The samples listed in ``<root>``'s seeds file, in file order; ``UsageError`` when it is absent or bad."""
    root = Path(root)
    seeds = root / SEEDS_FILE
    if not seeds.is_file():
        raise UsageError(f"{seeds}: not found; is {root} a pairs folder written by format_dataset.py?")
    try:
        entries = json.loads(seeds.read_text())
        return [PairSample(root, str(sample), str(stem)) for sample, stems in entries for stem in stems]
    except (ValueError, TypeError) as e:
        raise UsageError(f"{seeds}: not a list of [sample, [stem, ...]] entries ({e})") from None


def iter_pairs(roots: Sequence[str | os.PathLike]) -> Iterator[PairSample]:
    """Every sample listed by each of ``roots``, root by root, in file order."""
    for root in roots:
        yield from read_seeds(root)


def scan_pairs(roots: Sequence[str | os.PathLike]) -> tuple[list[PairSample], list[str]]:
    """Pool the samples of ``roots``; those with a missing file are left out and reported (one line each)."""
    samples: list[PairSample] = []
    problems: list[str] = []
    for sample in iter_pairs(roots):
        missing = [p for p in sample.files if not p.is_file()]
        if missing:
            problems.append(f"{missing[0]}: missing; pair {sample.key} skipped")
        else:
            samples.append(sample)
    return samples, problems


# ----------------------------------------------------------------------------------------------
# The index: metadata rows


def has_index(root: str | os.PathLike) -> bool:
    """Whether ``root`` has a metadata index (old layouts have sample folders only)."""
    return (Path(root) / METADATA_FILE).is_file()


def index_lines(root: str | os.PathLike, problems: list[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(``<file>:<line>``, row) of every JSON object line of ``root``'s metadata index.

    Lines that are not JSON objects go to ``problems`` (one line each, naming file and line).
    """
    index = Path(root) / METADATA_FILE
    with open(index, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as e:
                problems.append(f"{index}:{lineno}: not JSON ({e})")
                continue
            if not isinstance(row, dict):
                problems.append(f"{index}:{lineno}: not a JSON object")
                continue
            yield f"{index}:{lineno}", row


def read_index(root: str | os.PathLike, problems: list[str] | None = None) -> dict[str, dict[str, Any]] | None:
    """The metadata rows of ``root`` by sample name; None when there is no index.

    Lines without a sample name are reported in ``problems`` and left out.
    """
    if not has_index(root):
        return None
    problems = problems if problems is not None else []
    rows: dict[str, dict[str, Any]] = {}
    try:
        for where, row in index_lines(root, problems):
            if isinstance(row.get("sample"), str) and row["sample"]:
                rows[row["sample"]] = row
            else:
                problems.append(f"{where}: no 'sample'")
    except OSError as e:
        problems.append(f"{Path(root) / METADATA_FILE}: unreadable ({e})")
    return rows


def index_texts(rows: Iterable[dict[str, Any]]) -> dict[str, str]:
    """The index files' contents (file name -> text) listing ``rows`` in the order given."""
    rows = list(rows)
    return {
        METADATA_FILE: "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
        SEEDS_FILE: json.dumps([[r["sample"], [r["stem"]]] for r in rows]) + "\n",
    }


def write_index(root: str | os.PathLike, rows: Iterable[dict[str, Any]]) -> int:
    """Write the index of ``rows`` (sorted by sample name by the caller); files whose content is unchanged are
    left alone. Returns the bytes written (0: nothing changed)."""
    written = 0
    for name, text in index_texts(rows).items():
        path = Path(root) / name
        try:
            same = path.read_text(encoding="utf-8") == text
        except OSError:
            same = False
        if not same:
            write_text(path, text)
            written += len(text.encode("utf-8"))
    return written


def read_record(folder: str | os.PathLike) -> dict[str, Any]:
    """The metadata row a sample folder keeps of itself; ``OSError``/``ValueError`` when it has none."""
    return json.loads((Path(folder) / RECORD_FILE).read_text(encoding="utf-8"))


def sample_folders(root: str | os.PathLike) -> list[str]:
    """Names of the sample folders under ``root`` (hidden folders are the writer's own), sorted."""
    with os.scandir(root) as it:
        return sorted(e.name for e in it if e.is_dir() and not e.name.startswith("."))


# ----------------------------------------------------------------------------------------------
# Reading sample folders without an index (the original project's layout)


def _marked_files(folder: Path, mark: str) -> list[Path]:
    return sorted(p for p in folder.glob(f"*{mark}.*") if p.is_file() and not p.name.startswith("."))


def _find(folder: Path, name: str, mark: str) -> Path:
    path = folder / name
    if path.is_file():
        return path
    found = _marked_files(folder, mark)
    return found[0] if found else path


def find_input(folder: str | os.PathLike, stem: str) -> Path:
    """A sample's input image: this layout's name, else any ``*_0.<ext>`` of old layouts (the name when none)."""
    return _find(Path(folder), input_name(stem), INPUT_MARK)


def find_target(folder: str | os.PathLike, stem: str) -> Path:
    """A sample's target image: this layout's name, else any ``*_1.<ext>`` of old layouts (the name when none)."""
    return _find(Path(folder), target_name(stem), TARGET_MARK)


def folder_rows(root: str | os.PathLike, problems: list[str]) -> list[tuple[str, dict[str, Any]]]:
    """(prompt file, metadata-like row) per sample folder, rebuilt from its prompt and box files (no index).

    Rows carry ``sample``, ``stem``, ``task``, ``dataset``, ``class``, ``edit`` (+ ``bbox`` for det);
    unreadable files go to ``problems``.
    """
    rows = []
    for name in sample_folders(root):
        folder = Path(root) / name
        prompt = folder / PROMPT_FILE
        inputs = _marked_files(folder, INPUT_MARK)
        if not prompt.is_file() or not inputs:
            continue
        try:
            meta = json.loads(prompt.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            problems.append(f"{prompt}: unreadable ({e})")
            continue
        row: dict[str, Any] = {"sample": name, "stem": inputs[0].name.rsplit(INPUT_MARK + ".", 1)[0],
                               "task": meta.get("task"), "dataset": meta.get("dataset") or "unknown",
                               "class": meta.get("class"), "edit": meta.get("edit", "")}  # fmt: skip
        boxes = folder / BBOX_FILE
        if row["task"] == "det" and boxes.is_file():
            try:
                row["bbox"] = json.loads(boxes.read_text(encoding="utf-8")).get("bbox", [])
            except (OSError, ValueError) as e:
                problems.append(f"{boxes}: unreadable ({e})")
        rows.append((str(prompt), row))
    return rows
