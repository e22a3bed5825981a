"""instructcv.pairs: the DESIGN.md section 4 layout written and read in one place."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from instructcv import pairs
from instructcv.cli import UsageError
from instructcv.images import ImageReadError

ROWS = [
    {"sample": "coco_1_det_dog", "stem": "coco_1", "task": "det", "dataset": "coco", "class": "dog", "edit": "Detect the dog."},
    {"sample": "nyu_7_depes", "stem": "nyu_7", "task": "depes", "dataset": "nyuv2", "class": None, "edit": "Estimate the depth."},
]  # fmt: skip


def make_folder(root: Path, rows: list[dict]) -> Path:
    """Sample folders (input, target, prompt) for ``rows`` and their index, written through the module."""
    for row in rows:
        folder = root / row["sample"]
        folder.mkdir(parents=True)
        Image.new("RGB", (8, 6), (10, 20, 30)).save(folder / pairs.input_name(row["stem"]))
        Image.new("L", (8, 6), 255).save(folder / pairs.target_name(row["stem"]))
        entry = pairs.prompt_entry(row["edit"], row["task"], row["class"], row["dataset"])
        (folder / pairs.PROMPT_FILE).write_text(json.dumps(entry))
    pairs.write_index(root, rows)
    return root


def test_the_layout_is_design_section_4(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "p", ROWS)
    assert json.loads((root / "seeds.json").read_text()) == [["coco_1_det_dog", ["coco_1"]], ["nyu_7_depes", ["nyu_7"]]]
    lines = (root / "metadata.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == ROWS
    assert sorted(p.name for p in (root / "coco_1_det_dog").iterdir()) == ["coco_1_0.jpg", "coco_1_1.png", "prompt.json"]
    assert json.loads((root / "nyu_7_depes" / "prompt.json").read_text()) == {
        "edit": "Estimate the depth.", "task": "depes", "class": None, "dataset": "nyuv2"}
    assert pairs.sample_name("coco_1", "seg", "Traffic Light") == "coco_1_seg_traffic_light"
    assert pairs.sample_name("nyu_7", "depes") == "nyu_7_depes"
    assert pairs.bbox_entry([[1, 2, 3, 4]], (8, 6)) == {"bbox": [[1, 2, 3, 4]], "image_size": [8, 6]}


def test_an_unchanged_index_is_not_rewritten(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "p", ROWS)
    before = {name: (root / name).stat().st_mtime_ns for name in ("seeds.json", "metadata.jsonl")}
    assert pairs.write_index(root, ROWS) == 0
    assert {name: (root / name).stat().st_mtime_ns for name in before} == before
    assert pairs.write_index(root, ROWS[:1]) > 0 and len(pairs.read_index(root)) == 1


def test_reading_samples_of_several_folders(tmp_path: Path) -> None:
    a = make_folder(tmp_path / "a", ROWS[:1])
    b = make_folder(tmp_path / "b", ROWS[1:])
    samples = list(pairs.iter_pairs([a, b]))
    assert [(s.root, s.sample, s.stem) for s in samples] == [(a, "coco_1_det_dog", "coco_1"), (b, "nyu_7_depes", "nyu_7")]
    assert samples[0].input_path == a / "coco_1_det_dog" / "coco_1_0.jpg"
    assert samples[1].target_path == b / "nyu_7_depes" / "nyu_7_1.png"
    assert [pairs.read_prompt(s) for s in samples] == ["Detect the dog.", "Estimate the depth."]
    samples[1].target_path.unlink()
    kept, problems = pairs.scan_pairs([a, b])
    assert kept == samples[:1] and len(problems) == 1 and "nyu_7_1.png: missing" in problems[0]
    samples[0].prompt_path.write_text("{not json")
    with pytest.raises(ImageReadError, match="prompt.json"):
        pairs.read_prompt(samples[0])
    with pytest.raises(UsageError, match="seeds.json: not found"):
        pairs.read_seeds(tmp_path)


def test_bad_index_lines_are_reported_and_left_out(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "p", ROWS)
    with open(root / "metadata.jsonl", "a") as f:
        f.write("{broken\n[1, 2]\n{\"stem\": \"x\"}\n")
    problems: list[str] = []
    rows = pairs.read_index(root, problems)
    assert list(rows) == ["coco_1_det_dog", "nyu_7_depes"]
    assert [p.split(": ", 1)[0].rsplit(":", 1)[1] for p in problems] == ["3", "4", "5"]
    assert pairs.read_index(tmp_path) is None  # no index at all


def test_old_layouts_are_read_from_the_sample_folders(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "p", ROWS)
    (root / "seeds.json").unlink()
    (root / "metadata.jsonl").unlink()
    old = root / "coco_1_det_dog"
    (old / "coco_1_0.jpg").rename(old / "coco_1_0.png")  # the original project wrote other extensions too
    (old / "bbox.json").write_text(json.dumps({"bbox": [[1, 1, 4, 4]]}))
    problems: list[str] = []
    found = pairs.folder_rows(root, problems)
    assert not problems and [where for where, _ in found] == [str(root / r["sample"] / "prompt.json") for r in ROWS]
    det = found[0][1]
    assert {k: det[k] for k in ("sample", "stem", "task", "class", "bbox")} == {
        "sample": "coco_1_det_dog", "stem": "coco_1", "task": "det", "class": "dog", "bbox": [[1, 1, 4, 4]]}
    assert pairs.find_input(old, "coco_1") == old / "coco_1_0.png"
    assert pairs.find_target(old, "coco_1") == old / "coco_1_1.png"
