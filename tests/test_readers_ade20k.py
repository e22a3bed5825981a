"""ADE20K reader on the real training pair: one seg sample per class in the label map, label 0 ignored."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dataset_creation.readers import ade20k, guess_dataset
from dataset_creation.readers.base import LayoutError, Sample, SampleError


@pytest.fixture(scope="module")
def ade_root(realdata: Path) -> Path:
    return realdata / "ade20k"


def test_layout(ade_root: Path, realdata: Path) -> None:
    assert len(ade20k.ADE20K_CLASSES) == 150 and len(set(ade20k.ADE20K_CLASSES)) == 150
    assert guess_dataset(ade_root) == "ade20k"
    assert ade20k.looks_like(ade_root / "ADEChallengeData2016")  # the folder itself or its parent
    assert not ade20k.looks_like(realdata / "coco")
    ade20k.check_layout(ade_root, "train")
    with pytest.raises(LayoutError, match="validation"):
        ade20k.check_layout(ade_root, "eval")


def test_one_sample_per_present_class(ade_root: Path) -> None:
    items = list(ade20k.iter_samples(ade_root, "train", ["seg"], {}))
    assert all(isinstance(s, Sample) for s in items)
    labels = np.asarray(Image.open(ade_root / "ADEChallengeData2016/annotations/training/ADE_train_00000036.png"))
    present = [int(k) for k in np.unique(labels) if 0 < k <= 150]
    assert [s.gt_args["label"] for s in items] == present
    # provenance: 1 wall, 4 floor, 6 ceiling, 9 window(pane), 38 bathtub, 48 sink, 66 toilet, 82 towel
    names = {s.gt_args["label"]: s.class_name for s in items}
    assert {1: "wall", 4: "floor", 6: "ceiling", 9: "windowpane", 38: "bathtub", 48: "sink", 66: "toilet",
            82: "towel"}.items() <= names.items()
    for s in items:
        assert s.stem == "ADE_train_00000036" and s.split == "train" and s.image.is_file()
        truth = ade20k.load_ground_truth(ade_root, s)
        np.testing.assert_array_equal(truth["mask"], labels == s.gt_args["label"])
        np.testing.assert_array_equal(truth["valid"], labels != 0)
        row = {"task": "seg", "class": s.class_name, "gt": s.gt}  # a metadata row without gt_args
        np.testing.assert_array_equal(ade20k.load_ground_truth(ade_root, row)["mask"], truth["mask"])
    assert list(ade20k.iter_samples(ade_root, "train", ["det"], {})) == []


def test_missing_or_broken_label_map(ade_root: Path, tmp_path: Path) -> None:
    src = ade_root / "ADEChallengeData2016"
    root = tmp_path / "ADEChallengeData2016"
    for sub in ("images/training", "annotations/training"):
        (root / sub).mkdir(parents=True)
    shutil.copy(src / "images/training/ADE_train_00000036.jpg", root / "images/training/ADE_train_00000001.jpg")
    shutil.copy(src / "images/training/ADE_train_00000036.jpg", root / "images/training/ADE_train_00000002.jpg")
    data = (src / "annotations/training/ADE_train_00000036.png").read_bytes()
    (root / "annotations/training/ADE_train_00000002.png").write_bytes(data[: len(data) // 2])
    errors = list(ade20k.iter_samples(tmp_path, "train", ["seg"], {}))
    assert all(isinstance(e, SampleError) for e in errors) and len(errors) == 2
    assert Path(errors[0].path).name == "ADE_train_00000001.png" and "missing" in errors[0].reason
    assert Path(errors[1].path).name == "ADE_train_00000002.png"


def test_absent_per_image_asks_classes_the_label_map_lacks_with_empty_masks(ade_root: Path) -> None:
    labels = np.asarray(Image.open(ade_root / "ADEChallengeData2016/annotations/training/ADE_train_00000036.png"))
    present = {int(k) for k in np.unique(labels) if 0 < k <= 150}
    plain = list(ade20k.iter_samples(ade_root, "train", ["seg"], {}))
    items = list(ade20k.iter_samples(ade_root, "train", ["seg"], {"absent_per_image": 3, "seed": 0}))
    assert [s for s in items if not s.absent] == plain
    absent = [s for s in items if s.absent]
    assert len(absent) == 3 and len({s.class_name for s in absent}) == 3
    for s in absent:
        assert s.gt_args["label"] not in present and ade20k.ADE20K_CLASSES[s.gt_args["label"] - 1] == s.class_name
        truth = ade20k.load_ground_truth(ade_root, s)
        assert not truth["mask"].any()
        np.testing.assert_array_equal(truth["valid"], labels != 0)
    again = list(ade20k.iter_samples(ade_root, "train", ["seg"], {"absent_per_image": 3, "seed": 0}))
    assert [s.class_name for s in again if s.absent] == [s.class_name for s in absent]
    # neg_from listed: only classes the split's label maps show; this one-image split shows none it lacks
    listed = list(ade20k.iter_samples(ade_root, "train", ["seg"], {"absent_per_image": 3, "neg_from": "listed"}))
    assert listed == plain
