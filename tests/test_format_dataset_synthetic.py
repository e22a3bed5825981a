"""format_dataset on synthetic COCO, ADE20K and VOC (dataset_creation/synthetic.py), both official splits.

Counts are recomputed from the written json / png / xml with pycocotools, numpy and ElementTree, targets
are decoded with tasks/ and compared with that independent ground truth, and no raw image may end up in
both the train and the eval pairs. The original project's command line runs as a real subprocess.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO

import tasks
from dataset_creation import format_dataset, synthetic, writer
from dataset_creation.readers import ade20k, voc

SPLIT_DIRS = {"train": "train2017", "eval": "val2017"}


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synthetic")
    for name in ("coco", "ade20k", "voc"):
        getattr(synthetic, f"write_{name}")(root / name, num_train=6, num_eval=3, size=160, seed=3)
    return root


@pytest.fixture(scope="module")
def pairs(raw: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Path]:
    out = {}
    for name, tasks_, splits in (("coco", ["det", "seg", "cls"], ("train", "eval")),
                                 ("ade20k", ["seg"], ("train", "eval")), ("voc", ["det", "seg"], ("eval",))):  # fmt: skip
        for split in splits:
            folder = tmp_path_factory.mktemp(f"{name}_{split}")
            report = format_dataset.build(folder, [raw / name], tasks_, split=split, workers=2 if name == "coco" else 1,
                                          neg_per_image=2, progress=False)  # fmt: skip
            assert report.skipped == [], report.skipped
            out[(name, split)] = folder
    return out


def _rows(folder: Path) -> list[dict]:
    return writer.read_index(folder)


def _decode_image(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


@pytest.mark.parametrize("split", ["train", "eval"])
def test_coco(raw: Path, pairs, split: str) -> None:
    folder = pairs[("coco", split)]
    api = COCO(str(raw / "coco" / "annotations" / f"instances_{SPLIT_DIRS[split]}.json"))
    names = {c["id"]: c["name"] for c in api.loadCats(api.getCatIds())}
    want: dict[tuple[str, str], list[dict]] = {}
    for a in api.loadAnns(api.getAnnIds(iscrowd=None)):
        stem = "coco_" + api.loadImgs([a["image_id"]])[0]["file_name"][:-4]
        want.setdefault((stem, names[a["category_id"]]), []).append(a)
    objects = {k for k, anns in want.items() if any(not a["iscrowd"] for a in anns)}
    n_images = len(api.getImgIds())
    rows = _rows(folder)
    by = {t: {(r["stem"], r["class"]): r for r in rows if r["task"] == t} for t in ("det", "seg", "cls")}
    assert set(by["det"]) == set(by["seg"]) == objects
    assert {k for k, r in by["cls"].items() if r["positive"]} == set(want)
    assert sum(not r["positive"] for r in by["cls"].values()) == 2 * n_images  # --neg_per_image 2
    assert {r["split"] for r in rows} == {split}

    det, seg, cls = tasks.get_task("det"), tasks.get_task("seg"), tasks.get_task("cls")
    for (stem, name), row in by["det"].items():
        anns = want[(stem, name)]
        boxes = [[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]] for a in anns]
        np.testing.assert_allclose(row["bbox"], boxes, atol=0.01)
        assert row["crowd"] == [bool(a["iscrowd"]) for a in anns]
        sample = folder / row["sample"]
        drawn = boxes  # crowd regions are drawn too, as the released model was taught
        np.testing.assert_allclose(json.loads((sample / "bbox.json").read_text())["bbox"], drawn, atol=0.01)
        image = _decode_image(sample / f"{stem}_0.jpg")
        np.testing.assert_array_equal(np.asarray(Image.open(sample / f"{stem}_1.png")), det.encode(image, drawn))
    for (stem, name), row in by["seg"].items():
        anns = want[(stem, name)]
        obj = np.any([api.annToMask(a) for a in anns if not a["iscrowd"]], axis=0)
        crowd = np.any([api.annToMask(a) for a in anns if a["iscrowd"]] or [np.zeros_like(obj)], axis=0)
        target = Image.open(folder / row["sample"] / f"{stem}_1.png")
        assert target.mode == "1"
        np.testing.assert_array_equal(seg.decode(target, target.size), obj & ~crowd)
    for row in by["cls"].values():
        present, score = cls.decode(Image.open(folder / row["sample"] / f"{row['stem']}_1.png"), *row["colors"])
        assert present == row["positive"] and (score > 0.5) == row["positive"]
    # every stored input is a full-size RGB JPEG (also the synthetic set's grayscale one)
    for row in rows:
        with Image.open(folder / ".images" / "coco" / f"{row['stem']}.jpg") as im:
            img = api.loadImgs([int(row["stem"][5:])])[0]
            assert (im.format, im.mode, im.size) == ("JPEG", "RGB", (img["width"], img["height"]))


@pytest.mark.parametrize("split", ["train", "eval"])
def test_ade20k(raw: Path, pairs, split: str) -> None:
    folder = pairs[("ade20k", split)]
    ann_dir = raw / "ade20k" / "ADEChallengeData2016" / "annotations" / ade20k.SPLIT_DIRS[split]
    want = {}
    for png in sorted(ann_dir.glob("*.png")):
        labels = np.asarray(Image.open(png))
        for k in np.unique(labels):
            if k:
                want[(png.stem, ade20k.ADE20K_CLASSES[k - 1])] = labels == k
    rows = _rows(folder)
    assert {(r["stem"], r["class"]) for r in rows} == set(want)
    seg = tasks.get_task("seg")
    for row in rows:
        target = Image.open(folder / row["sample"] / f"{row['stem']}_1.png")
        np.testing.assert_array_equal(seg.decode(target, target.size), want[(row["stem"], row["class"])])


def test_voc(raw: Path, pairs) -> None:
    folder = pairs[("voc", "eval")]
    year = raw / "voc" / "VOCdevkit" / "VOC2012"
    want_seg, want_det = {}, {}
    for i in (year / "ImageSets/Segmentation/val.txt").read_text().split():
        labels = np.asarray(Image.open(year / "SegmentationClass" / f"{i}.png"))
        for k in np.unique(labels):
            if 0 < k < 255:
                want_seg[(f"voc2012_{i}", voc.CLASSES[k - 1])] = labels == k
    for i in (year / "ImageSets/Main/val.txt").read_text().split():
        for obj in ET.parse(year / "Annotations" / f"{i}.xml").getroot().iter("object"):
            box = [float(obj.findtext(f"bndbox/{k}")) for k in ("xmin", "ymin", "xmax", "ymax")]
            key = (f"voc2012_{i}", voc.VOC_TO_COCO[obj.findtext("name")])
            want_det.setdefault(key, []).append(([box[0] - 1, box[1] - 1, box[2], box[3]], obj.findtext("difficult") == "1"))
    want_det = {k: v for k, v in want_det.items() if not all(d for _, d in v)}
    rows = _rows(folder)
    assert {(r["stem"], r["class"]) for r in rows if r["task"] == "seg"} == set(want_seg)
    assert {(r["stem"], r["class"]) for r in rows if r["task"] == "det"} == set(want_det)
    seg = tasks.get_task("seg")
    for row in rows:
        target = Image.open(folder / row["sample"] / f"{row['stem']}_1.png")
        if row["task"] == "seg":
            np.testing.assert_array_equal(seg.decode(target, target.size), want_seg[(row["stem"], row["class"])])
        else:
            boxes = want_det[(row["stem"], row["class"])]
            assert row["bbox"] == [b for b, _ in boxes] and row["crowd"] == [d for _, d in boxes]


@pytest.mark.parametrize("name", ["coco", "ade20k"])
def test_no_raw_image_in_both_splits(raw: Path, pairs, name: str) -> None:
    def raw_images(split: str) -> tuple[set[str], set[str]]:
        rows = _rows(pairs[(name, split)])
        return {r["source"] for r in rows}, {hashlib.sha256((raw / name / r["source"]).read_bytes()).hexdigest() for r in rows}

    train_sources, train_hashes = raw_images("train")
    eval_sources, eval_hashes = raw_images("eval")
    assert train_sources and eval_sources
    assert not train_sources & eval_sources and not train_hashes & eval_hashes


def test_seed_command_line_in_a_shell(raw: Path, repo_root: Path, tmp_path: Path) -> None:
    # the original README's command, typed into a shell, in a project folder with data/coco
    shutil.copytree(raw / "coco", tmp_path / "data" / "coco")
    images = sorted((tmp_path / "data/coco/train2017").iterdir())
    broken = images[0]
    broken.write_bytes(broken.read_bytes()[:600])  # truncated JPEG
    command = f"{sys.executable} {repo_root / 'dataset_creation/format_dataset.py'} --save_root ./image_pairs --tasks ['det'] --data_root ./data/coco"
    proc = subprocess.run(command, shell=True, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert f"{broken}: " in proc.stdout  # the skipped file is named, with the reason
    rows = writer.read_index(tmp_path / "image_pairs")
    assert rows and {r["task"] for r in rows} == {"det"} and {r["split"] for r in rows} == {"train"}
    api = COCO(str(tmp_path / "data/coco/annotations/instances_train2017.json"))
    expected = {(img["file_name"][:-4], a["category_id"]) for img in api.loadImgs(api.getImgIds())
                for a in api.loadAnns(api.getAnnIds(imgIds=[img["id"]], iscrowd=False))
                if img["file_name"] != broken.name}  # fmt: skip
    assert len(rows) == len(expected)
    assert not any(r["stem"] == "coco_" + broken.stem for r in rows)
    assert "done:" in proc.stdout.strip().splitlines()[-1]
