"""Caltech-101 reader: background left out, the fixed 30-per-class split, readable names, safe negatives."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dataset_creation.readers import caltech, guess_dataset
from dataset_creation.readers.base import LayoutError, Sample
from instructcv.images import load_rgb

SIZES = {
    "BACKGROUND_Google": 4,
    "Faces": 33,
    "Faces_easy": 31,
    "accordion": 40,
    "chair": 31,
    "windsor_chair": 31,
    "tiny": 2,
}


@pytest.fixture(scope="module")
def caltech_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("caltech") / "caltech-101"
    for folder, n in SIZES.items():
        d = root / "101_ObjectCategories" / folder
        d.mkdir(parents=True)
        for i in range(1, n + 1):
            Image.new("L" if i == 1 else "RGB", (12, 9), 128).save(
                d / f"image_{i:04d}.jpg"
            )  # some are greyscale
    (root / "101_ObjectCategories" / "accordion" / "Thumbs.db").write_bytes(b"not an image")
    return root


def _positives(root, split, options=None):
    return [s for s in caltech.iter_samples(root, split, ["cls"], options or {}) if s.positive]


def test_split_is_30_per_class_and_disjoint(caltech_root):
    train, names = caltech.list_split(caltech_root, "train")
    test, names_eval = caltech.list_split(caltech_root, "eval")
    assert names == names_eval == ["face", "close-up face", "accordion", "chair", "tiny", "windsor chair"]
    classes = sorted(f for f in SIZES if f != "BACKGROUND_Google")
    assert [caltech.readable_name(f) for f in classes] == names
    train_counts, test_counts = Counter(lab for _, lab in train), Counter(lab for _, lab in test)
    for label, folder in enumerate(classes):
        n = SIZES[folder]
        assert train_counts[label] == min(30, n - 1) and test_counts[label] == n - min(30, n - 1)
    assert not {p for p, _ in train} & {p for p, _ in test}
    assert all("BACKGROUND_Google" not in str(p) and p.suffix == ".jpg" for p, _ in train + test)
    assert all(p.parent.name == classes[lab] for p, lab in train + test)
    # shuffled, not the first 30 file names
    assert [p.name for p, lab in train if lab == classes.index("accordion")] != [
        f"image_{i:04d}.jpg" for i in range(1, 31)
    ]


def test_split_is_fixed(caltech_root, tmp_path):
    train, _ = caltech.list_split(caltech_root, "train")
    assert caltech.list_split(caltech_root, "train")[0] == train
    # a class's split depends only on its own files, not on the other classes or on --seed
    lone = tmp_path / "101_ObjectCategories"
    (lone / "accordion").mkdir(parents=True)
    for p in (caltech_root / "101_ObjectCategories" / "accordion").iterdir():
        (lone / "accordion" / p.name).symlink_to(p)
    lone_train = [p.name for p, _ in caltech.list_split(lone, "train")[0]]
    assert lone_train == [p.name for p, lab in train if p.parent.name == "accordion"]
    a = {s.stem for s in _positives(caltech_root, "train", {"seed": 0})}
    assert a == {s.stem for s in _positives(caltech_root, "train", {"seed": 7})}


def test_samples_match_list_split(caltech_root):
    for split in ("train", "eval"):
        items, names = caltech.list_split(caltech_root, split)
        positives = _positives(caltech_root, split, {"neg_per_image": 1})
        assert [(s.image, s.class_name) for s in positives] == [(p, names[lab]) for p, lab in items]
        for s in positives:
            assert s.stem == f"caltech_{s.image.parent.name}_{s.image.stem}" and s.split == split
            assert s.source == f"101_ObjectCategories/{s.image.parent.name}/{s.image.name}"
    samples = list(caltech.iter_samples(caltech_root, "eval", ["cls"], {"neg_per_image": 2}))
    assert all(isinstance(s, Sample) for s in samples)
    assert len(samples) == 3 * len(caltech.list_split(caltech_root, "eval")[0])
    assert len({s.name for s in samples}) == len(samples)
    assert load_rgb(samples[0].image).mode == "RGB"


def test_confusable_classes_are_never_negatives(caltech_root):
    samples = list(caltech.iter_samples(caltech_root, "eval", ["cls"], {"neg_per_image": -1}))
    negatives = {}
    for s in samples:
        if not s.positive:
            negatives.setdefault(s.image.parent.name, set()).add(s.class_name)
    assert negatives["Faces"] == {"accordion", "chair", "tiny", "windsor chair"}
    assert negatives["chair"] == {"face", "close-up face", "accordion", "tiny"}
    assert negatives["accordion"] == {"face", "close-up face", "chair", "tiny", "windsor chair"}


def test_negatives_are_seeded(caltech_root):
    def negatives(seed):
        return [(s.stem, s.class_name) for s in caltech.iter_samples(caltech_root, "train", ["cls"], {"seed": seed})
                if not s.positive]  # fmt: skip

    assert negatives(1) == negatives(1) and negatives(1) != negatives(2)


def test_data_root_may_be_the_categories_folder(caltech_root):
    inner = caltech_root / "101_ObjectCategories"
    assert caltech.looks_like(caltech_root) and caltech.looks_like(inner)
    assert guess_dataset(caltech_root) == "caltech"
    a = [(s.image, s.class_name) for s in _positives(caltech_root, "eval")]
    b = _positives(inner, "eval")
    assert a == [(s.image, s.class_name) for s in b]
    assert b[0].source.count("/") == 1


def test_layout_errors(tmp_path, realdata):
    assert not caltech.looks_like(tmp_path)
    with pytest.raises(LayoutError, match="101_ObjectCategories"):
        caltech.check_layout(tmp_path, "train")
    (tmp_path / "101_ObjectCategories" / "BACKGROUND_Google").mkdir(parents=True)
    with pytest.raises(LayoutError):
        list(caltech.iter_samples(tmp_path, "train", ["cls"], {}))
    assert not caltech.looks_like(realdata / "pets" / "oxford-iiit-pet")
    assert np.all([not caltech.looks_like(realdata / d) for d in ("coco", "voc", "ade20k")])


# --- the synthetic Caltech-101 folders (dataset_creation/synthetic.py) ---


def test_synthetic_caltech_counts(tmp_path):
    from dataset_creation import synthetic

    root = tmp_path / "caltech"
    synthetic.write_caltech(root, num_train=20, num_eval=10, size=64, seed=0)
    cats = root / "101_ObjectCategories"
    per_class = {
        d.name: len(list(d.glob("*.jpg")))
        for d in cats.iterdir()
        if d.is_dir() and d.name != "BACKGROUND_Google"
    }
    assert (cats / "BACKGROUND_Google").is_dir()
    train, names = caltech.list_split(root, "train")
    test, _ = caltech.list_split(root, "eval")
    assert len(names) == len(per_class)
    assert len(train) == sum(min(30, n - 1) for n in per_class.values())
    assert len(train) + len(test) == sum(per_class.values())
    samples = list(caltech.iter_samples(root, "eval", ["cls"], {"neg_per_image": 1}))
    assert len(samples) == 2 * len(test)
    assert all(load_rgb(s.image).mode == "RGB" for s in samples if s.positive)


# --- end to end: format_dataset writes the pairs, reopened and decoded with tasks/ ---


def test_pairs_built_from_the_synthetic_release(tmp_path):
    import tasks
    from dataset_creation import format_dataset, synthetic, writer

    root = tmp_path / "caltech"
    synthetic.write_caltech(root, num_train=12, num_eval=8, size=64, seed=0)
    out = tmp_path / "pairs"
    for split in ("train", "eval"):
        assert not format_dataset.build(out, [root], ["cls"], split=split, progress=False).skipped
    rows = writer.read_index(out)
    for split in ("train", "eval"):
        items, _ = caltech.list_split(root, split)
        assert sorted(r["source"] for r in rows if r["split"] == split and r["positive"]) == sorted(
            p.relative_to(root.resolve()).as_posix() for p, _ in items
        )
    assert len(rows) == 2 * (
        len(caltech.list_split(root, "train")[0]) + len(caltech.list_split(root, "eval")[0])
    )
    for row in rows:
        target = np.asarray(Image.open(out / row["sample"] / f"{row['stem']}_1.png").convert("RGB"))
        assert tasks.classification.decode(target, *row["colors"])[0] == row["positive"]
