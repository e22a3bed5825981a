"""COCO reader on the real val2017 sample: counts, boxes and masks checked against the json and pycocotools."""

from __future__ import annotations

import json
import shutil
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw
from pycocotools.coco import COCO

from dataset_creation.format_dataset import build
from dataset_creation.readers import coco, guess_dataset
from dataset_creation.readers.base import LayoutError, Sample, SampleError
from instructcv.images import load_rgb
from instructcv.pairs import iter_pairs


@pytest.fixture(scope="module")
def coco_root(realdata: Path) -> Path:
    return realdata / "coco"


@pytest.fixture(scope="module")
def gt(coco_root: Path) -> dict:
    return json.loads((coco_root / "annotations" / "instances_val2017.json").read_text())


def _samples(root: Path, tasks=("det", "seg", "cls"), **options) -> tuple[list[Sample], list[SampleError]]:
    items = list(coco.iter_samples(root, "eval", list(tasks), {"neg_per_image": 1, "seed": 0, **options}))
    return [s for s in items if isinstance(s, Sample)], [e for e in items if isinstance(e, SampleError)]


def test_layout_detection(coco_root: Path, realdata: Path) -> None:
    assert coco.looks_like(coco_root) and guess_dataset(coco_root) == "coco"
    assert not coco.looks_like(realdata / "voc") and not coco.looks_like(realdata / "ade20k")
    coco.check_layout(coco_root, "eval")
    with pytest.raises(LayoutError, match=r"instances_train2017\.json.*use --split eval"):
        coco.check_layout(coco_root, "train")


def test_counts_and_boxes_match_the_json(coco_root: Path, gt: dict) -> None:
    samples, errors = _samples(coco_root)
    assert errors == []
    names = {c["id"]: c["name"] for c in gt["categories"]}
    per_pair = defaultdict(list)  # (file stem, class) -> annotations
    for a in gt["annotations"]:
        per_pair[(next(i["file_name"][:-4] for i in gt["images"] if i["id"] == a["image_id"]), names[a["category_id"]])].append(a)
    with_object = {k for k, anns in per_pair.items() if any(not a["iscrowd"] for a in anns)}

    det = {(s.stem[5:], s.class_name): s for s in samples if s.task == "det"}
    seg = {(s.stem[5:], s.class_name) for s in samples if s.task == "seg"}
    assert set(det) == with_object == seg
    assert len(det) == 9  # 6 images, 36 annotations: 9 (image, category) pairs
    for key, s in det.items():
        anns = per_pair[key]
        want = [[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]] for a in anns]
        np.testing.assert_allclose(s.boxes, want)
        assert s.crowd == [bool(a["iscrowd"]) for a in anns]
        assert s.split == "eval" and s.source == f"val2017/{key[0]}.jpg" and s.image.is_file()
    # the one crowd RLE (image 464689, bottle) is flagged, the other 13 bottles are not
    assert sum(det[("000000464689", "bottle")].crowd) == 1

    cls = [s for s in samples if s.task == "cls"]
    positives = {(s.stem[5:], s.class_name) for s in cls if s.positive}
    assert positives == set(per_pair)
    negatives = [s for s in cls if not s.positive]
    assert len(negatives) == len(gt["images"])  # neg_per_image=1, also for image 89 without annotations
    assert all((s.stem[5:], s.class_name) not in per_pair for s in negatives)
    assert [s.task for s in samples if s.stem == "coco_000000000089"] == ["cls"]


def test_negatives_are_seeded(coco_root: Path) -> None:
    def negs(seed: int, k: int) -> list[str]:
        samples, _ = _samples(coco_root, ("cls",), seed=seed, neg_per_image=k)
        return [s.name for s in samples if not s.positive]

    assert negs(0, 3) == negs(0, 3)
    assert negs(0, 3) != negs(1, 3)
    assert len(negs(0, 3)) == 3 * 6
    samples, _ = _samples(coco_root, ("cls",), neg_per_image=None)
    assert len(samples) == 80 * 6  # every category asked about every image


def test_seg_ground_truth_equals_pycocotools(coco_root: Path) -> None:
    api = COCO(str(coco_root / "annotations" / "instances_val2017.json"))
    samples, _ = _samples(coco_root, ("seg",))
    for s in samples:
        truth = coco.load_ground_truth(coco_root, s)
        cat = api.getCatIds(catNms=[s.class_name])[0]
        img = int(s.stem[5:])
        anns = api.loadAnns(api.getAnnIds(imgIds=[img], catIds=[cat], iscrowd=None))
        objects = np.zeros_like(truth["mask"])
        crowd = np.zeros_like(truth["mask"])
        for a in anns:
            (crowd if a["iscrowd"] else objects)[...] |= api.annToMask(a).astype(bool)
        np.testing.assert_array_equal(truth["mask"], objects & ~crowd)
        np.testing.assert_array_equal(truth["valid"], ~crowd)
        assert truth["mask"].any()
        # the evaluator gets a metadata row (no '_' hints): same answer, read from the json
        row = {"task": "seg", "stem": s.stem, "class": s.class_name, "split": "eval", "gt": s.gt,
               "gt_args": {k: v for k, v in s.gt_args.items() if not k.startswith("_")}}
        again = coco.load_ground_truth(coco_root, row)
        np.testing.assert_array_equal(again["mask"], truth["mask"])
    bottle = next(s for s in samples if s.stem == "coco_000000464689")
    assert not coco.load_ground_truth(coco_root, bottle)["valid"].all()  # the crowd region is ignored


def test_missing_image_and_broken_json_are_reported(coco_root: Path, tmp_path: Path) -> None:
    root = tmp_path / "coco"
    (root / "annotations").mkdir(parents=True)
    shutil.copytree(coco_root / "val2017", root / "val2017")
    (root / "val2017" / "000000194216.jpg").unlink()
    shutil.copy(coco_root / "annotations" / "instances_val2017.json", root / "annotations")
    samples, errors = _samples(root)
    assert [Path(e.path).name for e in errors] == ["000000194216.jpg"]
    assert "missing on disk" in errors[0].reason
    assert not any(s.stem == "coco_000000194216" for s in samples) and samples

    text = (coco_root / "annotations" / "instances_val2017.json").read_text()
    (root / "annotations" / "instances_val2017.json").write_text(text[: len(text) // 2])  # truncated
    samples, errors = _samples(root)
    assert samples == [] and len(errors) == 1 and "cannot read the annotation json" in errors[0].reason


def test_det_line_width_draws_wider_boxes(coco_root: Path, tmp_path: Path) -> None:
    default, _ = _samples(coco_root, tasks=("det",))
    wide, _ = _samples(coco_root, tasks=("det",), det_line_width=8)
    assert all("_line_width" not in (s.gt_args or {}) for s in default)  # the released 4 px unless asked
    assert [s.gt_args["_line_width"] for s in wide] == [8] * len(default)
    build(tmp_path / "pairs", [coco_root], ["det"], split="eval", prompts="fixed", det_line_width=8, progress=False)
    sample = next(iter(iter_pairs([tmp_path / "pairs"])))
    rows = [json.loads(line) for line in (tmp_path / "pairs" / "metadata.jsonl").read_text().splitlines()]
    assert {r["line_width"] for r in rows} == {8}  # the decoder reads these answers at 8 px
    boxes = json.loads(sample.bbox_path.read_text())["bbox"]
    expected = load_rgb(sample.input_path, exif_transpose=False)
    draw = ImageDraw.Draw(expected)
    for x0, y0, x1, y1 in boxes:  # PIL's own 8 px rectangle on the input, corners as stored
        draw.rectangle([x0, y0, x1, y1], outline=(0, 0, 255), width=8)
    assert np.array_equal(np.asarray(Image.open(sample.target_path).convert("RGB")), np.asarray(expected))


def test_absent_per_image_adds_empty_det_and_seg_queries_for_classes_the_image_lacks(coco_root: Path, gt: dict,
                                                                                      tmp_path: Path) -> None:
    """--absent_per_image 2: two categories absent from each image (crowd counts as present), written with
    an empty answer: the input unchanged (det), an all-false mask (seg); rows marked absent."""
    names = {c["id"]: c["name"] for c in gt["categories"]}
    in_image = defaultdict(set)  # file stem -> every category annotated in it, crowd included
    for a in gt["annotations"]:
        in_image[next(i["file_name"][:-4] for i in gt["images"] if i["id"] == a["image_id"])].add(names[a["category_id"]])
    plain, _ = _samples(coco_root, tasks=("det", "seg"))
    samples, errors = _samples(coco_root, tasks=("det", "seg"), absent_per_image=2)
    assert errors == [] and [s for s in samples if not s.absent] == plain
    absent = [s for s in samples if s.absent]
    assert len(absent) == 2 * 2 * len(gt["images"])  # 2 classes x (det, seg) for each of the 6 images
    for s in absent:
        assert s.class_name in names.values() and s.class_name not in in_image[s.stem[5:]]
    assert {(s.stem, s.class_name) for s in absent if s.task == "det"} == \
        {(s.stem, s.class_name) for s in absent if s.task == "seg"}
    again, _ = _samples(coco_root, tasks=("det", "seg"), absent_per_image=2)
    assert [s.name for s in again] == [s.name for s in samples]  # seeded: the same classes every run

    build(tmp_path / "pairs", [coco_root], ["det", "seg"], split="eval", prompts="fixed", absent_per_image=2,
          progress=False)
    written = {p.sample: p for p in iter_pairs([tmp_path / "pairs"])}
    rows = {json.loads(line)["sample"]: json.loads(line)
            for line in (tmp_path / "pairs" / "metadata.jsonl").read_text().splitlines()}
    assert len(written) == len(samples) and set(rows) == set(written)
    for s in absent:
        pair, row = written[s.name], rows[s.name]
        assert row["absent"] is True and row["class"] == s.class_name
        assert read_prompt_edit(pair) == (f"Segment the {s.class_name}." if s.task == "seg" else
                                          f"Detect the {s.class_name}.")
        target = np.asarray(Image.open(pair.target_path).convert("RGB"))
        if s.task == "seg":
            assert not target.any()
        else:
            assert row["bbox"] == [] and row["crowd"] == []
            assert np.array_equal(target, np.asarray(load_rgb(pair.input_path, exif_transpose=False)))
    assert not any(r.get("absent") for name, r in rows.items() if name not in {s.name for s in absent})


def read_prompt_edit(pair) -> str:
    return json.loads(pair.prompt_path.read_text())["edit"]
