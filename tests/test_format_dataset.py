"""format_dataset / writer on the real COCO, VOC and ADE20K samples: reopen what was written and check it.

Counts are recomputed from the raw json / xml / png here, targets are decoded with tasks/ and compared
with the ground truth, re-runs must write nothing, interrupted samples must never appear.
"""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import tasks
from dataset_creation import format_dataset, writer
from dataset_creation.readers import coco, voc
from instructcv.cli import UsageError


def _iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def _folders(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_mtime_ns, p.stat().st_size) for p in root.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def coco_pairs(realdata: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, writer.BuildReport]:
    out = tmp_path_factory.mktemp("coco_pairs")
    report = format_dataset.build(out, [realdata / "coco"], ["det", "seg", "cls"], split="eval", progress=False)
    return out, report


def test_parse_tasks() -> None:
    assert format_dataset.parse_tasks(["det", "seg"]) == ["det", "seg"]
    assert format_dataset.parse_tasks(["det,seg"]) == ["det", "seg"]
    assert format_dataset.parse_tasks(["['det','seg']"]) == ["det", "seg"]
    assert format_dataset.parse_tasks(["['det',", "'seg']"]) == ["det", "seg"]  # "['det', 'seg']" split by the shell
    assert format_dataset.parse_tasks(["[det]"]) == ["det"]  # what bash leaves of ['det']
    assert format_dataset.parse_tasks(["depth", "cls"]) == ["depes", "cls"]
    assert format_dataset.parse_tasks(None) is None
    with pytest.raises(UsageError, match="unknown task 'box'"):
        format_dataset.parse_tasks(["det", "box"])


def test_coco_counts_equal_what_the_json_implies(coco_pairs, realdata: Path) -> None:
    out, report = coco_pairs
    gt = json.loads((realdata / "coco/annotations/instances_val2017.json").read_text())
    pairs = Counter((a["image_id"], a["category_id"], bool(a["iscrowd"])) for a in gt["annotations"])
    with_object = {(i, c) for i, c, crowd in pairs if not crowd}
    present = {(i, c) for i, c, _ in pairs}
    expected = {"det": len(with_object), "seg": len(with_object), "cls": len(present) + len(gt["images"])}
    assert dict(Counter(task for _, _, task in report.written.elements())) == expected
    assert report.skipped == [] and report.n_present == 0
    rows = writer.read_index(out)
    assert Counter(r["task"] for r in rows) == expected
    assert [r["sample"] for r in rows] == _folders(out) == sorted(r["sample"] for r in rows)
    seeds = json.loads((out / "seeds.json").read_text())
    assert seeds == [[r["sample"], [r["stem"]]] for r in rows]
    assert {r["data_root"] for r in rows} == {str((realdata / "coco").resolve())}


def test_coco_sample_folders_are_the_seed_layout(coco_pairs, realdata: Path) -> None:
    out, _ = coco_pairs
    for row in writer.read_index(out):
        folder, stem = out / row["sample"], row["stem"]
        names = {p.name for p in folder.iterdir()}
        expected = {f"{stem}_0.jpg", f"{stem}_1.png", "prompt.json", writer.RECORD_FILE}
        assert names == expected | ({"bbox.json"} if row["task"] == "det" else set())
        prompt = json.loads((folder / "prompt.json").read_text())
        assert prompt == {"edit": row["edit"], "task": row["task"], "class": row["class"], "dataset": "coco"}
        assert row["class"] in row["edit"] and not any(m in row["edit"] for m in "%*#")
        # the input is the one stored copy, hard-linked, byte-identical to the raw RGB JPEG
        stored = out / ".images" / "coco" / f"{stem}.jpg"
        assert os.path.samefile(folder / f"{stem}_0.jpg", stored)
        assert stored.read_bytes() == (realdata / "coco" / row["source"]).read_bytes()
        assert set(row) >= {"sample", "stem", "task", "dataset", "split", "class", "source", "edit", "data_root"}
    nlinks = Counter(r["stem"] for r in writer.read_index(out))
    for stem, n in nlinks.items():
        assert (out / ".images" / "coco" / f"{stem}.jpg").stat().st_nlink == n + 1


def test_coco_targets_decode_to_the_ground_truth(coco_pairs, realdata: Path) -> None:
    out, _ = coco_pairs
    root = realdata / "coco"
    det = tasks.get_task("det")
    seg = tasks.get_task("seg")
    cls = tasks.get_task("cls")
    checked = 0
    for row in writer.read_index(out):
        folder, stem = out / row["sample"], row["stem"]
        image = np.asarray(Image.open(folder / f"{stem}_0.jpg").convert("RGB"))
        target = Image.open(folder / f"{stem}_1.png")
        assert target.size == (image.shape[1], image.shape[0])
        if row["task"] == "det":
            bbox = json.loads((folder / "bbox.json").read_text())
            drawn = row["bbox"]  # crowd regions are drawn too, as the released model was taught
            assert bbox == {"bbox": drawn, "image_size": list(target.size)}
            # the target is the stored input with the frames drawn, pixel for pixel
            np.testing.assert_array_equal(np.asarray(target), det.encode(image, drawn))
            # and reads back as the boxes where they can be read: apart, and at least 20 px a side
            # (crowds of overlapping or tiny boxes are a limit of the box encoding, not of the pairs)
            apart = all(_iou(a, b) == 0 for i, a in enumerate(drawn) for b in drawn[i + 1 :])
            if apart and all(min(b[2] - b[0], b[3] - b[1]) >= 20 for b in drawn):
                found = det.decode(target, target.size, image=image)
                checked += 1
                for box in drawn:
                    assert max((_iou(box, f[:4]) for f in found), default=0) > 0.8, (row["sample"], box)
        elif row["task"] == "seg":
            assert target.mode == "1"  # 1-bit mask PNG
            truth = coco.load_ground_truth(root, row)
            np.testing.assert_array_equal(seg.decode(target, target.size), truth["mask"])
        else:
            present, _ = cls.decode(target, *row["colors"])
            assert present == row["positive"]
            assert cls.encode(target.size, row["positive"], *row["colors"]).shape[:2] == image.shape[:2]
    assert checked >= 4  # bus, motorcycle, person, skateboard (car: 14x12 px)


def test_rerun_writes_nothing(coco_pairs, realdata: Path, capsys) -> None:
    out, report = coco_pairs
    before = _snapshot(out)
    rc = format_dataset.main(["--save_root", str(out), "--tasks", "det", "seg", "cls", "--data_root",
                              str(realdata / "coco"), "--split", "eval"])  # fmt: skip
    assert rc == 0
    assert _snapshot(out) == before
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("done: nothing new to write") and f"{report.n_written} sample(s) already present" in last


def test_voc_missing_images_are_reported_and_the_rest_built(realdata: Path, tmp_path: Path, capsys) -> None:
    rc = format_dataset.main(["--save_root", str(tmp_path), "--data_root", str(realdata / "voc"), "--no_progress"])
    assert rc == 2
    out = capsys.readouterr().out
    assert "VOC2007/JPEGImages/000001.jpg: listed in" in out and "VOC2012/JPEGImages/2007_000027.jpg" in out
    rows = writer.read_index(tmp_path)
    assert {r["split"] for r in rows} == {"eval"}  # the default split of an eval-only dataset
    items = [s for s in voc.iter_samples(realdata / "voc", "eval", ["det", "seg"], {}) if hasattr(s, "task")]
    assert sorted(r["sample"] for r in rows) == sorted(s.name for s in items)
    for row in rows:
        if row["task"] == "seg":
            target = Image.open(tmp_path / row["sample"] / f"{row['stem']}_1.png")
            truth = voc.load_ground_truth(realdata / "voc", row)
            np.testing.assert_array_equal(np.asarray(target), truth["mask"])
            assert row["gt_args"] == {"label": voc.CLASSES.index(row["class"]) + 1}
        else:
            assert any(row["crowd"]) == (row["stem"] == "voc2007_000005")


def test_datasets_pool_into_one_folder(realdata: Path, tmp_path: Path) -> None:
    # one run with two roots, then a third dataset in another run: the index lists all of them
    r1 = format_dataset.build(tmp_path, [realdata / "coco", realdata / "voc"], ["seg"], split="eval", progress=False)
    r2 = format_dataset.build(tmp_path, [realdata / "ade20k"], ["seg"], progress=False)
    rows = writer.read_index(tmp_path)
    assert Counter((r["dataset"], r["split"]) for r in rows) == {
        ("coco", "eval"): 9, ("voc", "eval"): 2, ("ade20k", "train"): 15}
    assert r1.index.samples == 11 and r2.index.samples == 26 and r2.index.changed
    assert len(_folders(tmp_path)) == 26
    roots = {r["dataset"]: r["data_root"] for r in rows}
    assert roots["ade20k"] == str((realdata / "ade20k").resolve())


def test_shards_then_merge_equal_one_build(coco_pairs, realdata: Path, tmp_path: Path) -> None:
    single, _ = coco_pairs
    args = dict(tasks=["det", "seg", "cls"], split="eval", progress=False, num_shards=2)
    a = format_dataset.build(tmp_path, [realdata / "coco"], shard=0, workers=2, **args)
    b = format_dataset.build(tmp_path, [realdata / "coco"], shard=1, **args)
    assert a.index is None and b.index is None and not (tmp_path / "metadata.jsonl").exists()
    assert a.n_written > 0 and b.n_written > 0
    index = format_dataset.merge(tmp_path)
    assert index.samples == a.n_written + b.n_written
    strip = [{k: v for k, v in r.items() if k != "data_root"} for r in writer.read_index(tmp_path)]
    assert strip == [{k: v for k, v in r.items() if k != "data_root"} for r in writer.read_index(single)]


def test_interrupted_sample_never_appears(realdata: Path, tmp_path: Path, monkeypatch) -> None:
    real = writer.encode_png
    calls = {"n": 0}

    def dies_on_third(target, photo=False):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(target, photo)

    monkeypatch.setattr(writer, "encode_png", dies_on_third)
    with pytest.raises(KeyboardInterrupt):
        format_dataset.build(tmp_path, [realdata / "coco"], ["det"], split="eval", progress=False)
    assert len(_folders(tmp_path)) == 2  # two finished, the third never renamed into place
    assert not any((tmp_path / writer.TMP_DIR).iterdir())
    monkeypatch.setattr(writer, "encode_png", real)
    report = format_dataset.build(tmp_path, [realdata / "coco"], ["det"], split="eval", progress=False)
    assert report.n_present == 2 and report.n_written == 7 and report.index.samples == 9


def test_bad_layouts_are_one_clear_error(realdata: Path, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"not a dataset layout.*coco: annotations/instances_"):
        format_dataset.build(tmp_path, [realdata / "photos"], ["det"])
    with pytest.raises(UsageError, match="use --split eval"):
        format_dataset.build(tmp_path, [realdata / "coco"], ["det"], split="train")
    with pytest.raises(UsageError, match="no such folder"):
        format_dataset.build(tmp_path, [tmp_path / "nowhere"], ["det"])
    with pytest.raises(UsageError, match="ade20k .* has no det pairs"):
        format_dataset.build(tmp_path, [realdata / "ade20k"], ["det"])
    with pytest.raises(UsageError, match="evaluation-only"):
        format_dataset.build(tmp_path, [realdata / "voc"], ["det"], split="train")
    assert not (tmp_path / "metadata.jsonl").exists()


def test_non_jpeg_input_is_stored_once_as_full_size_jpeg(realdata: Path, tmp_path: Path) -> None:
    # a PNG named .jpg (as in Oxford-IIIT Pets) inside a COCO layout: re-encoded once, target aligned
    root = tmp_path / "coco"
    shutil.copytree(realdata / "coco", root)
    src = root / "val2017" / "000000194216.jpg"
    rgba = Image.open(src).convert("RGBA")
    os.chmod(src, 0o644)
    rgba.save(src, format="PNG")
    out = tmp_path / "pairs"
    format_dataset.build(out, [root], ["det"], split="eval", progress=False)
    stored = out / ".images" / "coco" / "coco_000000194216.jpg"
    with Image.open(stored) as im:
        assert im.format == "JPEG" and im.size == rgba.size
        pixels = np.asarray(im.convert("RGB"))
    assert np.abs(pixels.astype(int) - np.asarray(rgba.convert("RGB"), dtype=int)).mean() < 2.0  # quality 95
    target = np.asarray(Image.open(out / "coco_000000194216_det_bear" / "coco_000000194216_1.png"))
    assert np.array_equal(target[0, :50], pixels[0, :50])  # drawn on the stored pixels


def test_exif_rotation_follows_the_annotation(realdata: Path, tmp_path: Path) -> None:
    # a photo stored sideways with EXIF orientation 6, annotated (json width/height) as displayed
    root = tmp_path / "coco"
    shutil.copytree(realdata / "coco", root)
    src = root / "val2017" / "000000343934.jpg"
    upright = Image.open(src).convert("RGB")  # 640x480, as the json says
    sideways = upright.transpose(Image.Transpose.ROTATE_90)  # 480x640 on disk
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    os.chmod(src, 0o644)
    sideways.save(src, quality=95, exif=exif)
    out = tmp_path / "pairs"
    report = format_dataset.build(out, [root], ["det"], split="eval", progress=False)
    assert report.skipped == []
    with Image.open(out / ".images" / "coco" / "coco_000000343934.jpg") as im:
        assert im.size == upright.size and im.getexif().get(0x0112, 1) == 1  # upright, no tag left to re-apply
        stored = np.asarray(im.convert("RGB"), dtype=int)
    diff = np.abs(stored - np.asarray(upright, dtype=int)).mean()  # two JPEG generations of a noisy photo
    wrong = np.abs(stored - np.asarray(upright.transpose(Image.Transpose.ROTATE_180), dtype=int)).mean()
    assert diff < 6.0 and wrong > 5 * diff
