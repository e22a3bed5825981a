"""ImageNet subset reader: the three layouts, class names, seeded negatives and the shared split listing."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dataset_creation.readers import guess_dataset, imagenet
from dataset_creation.readers.base import LayoutError, Sample, SampleError, class_slug
from instructcv.images import load_rgb

MAPPING = {
    "n01440764": "tench, Tinca tinca",
    "n02012849": "crane",
    "n02113186": "Cardigan, Cardigan Welsh corgi, Welsh corgi",
    "n03124170": "cardigan",
    "n03126707": "crane",
    "n09999999": "not in any folder",
}
TRAIN = {"n01440764": 5, "n02012849": 3, "n02113186": 4, "n03124170": 2, "n03126707": 3}
VAL = {"n01440764": 2, "n02012849": 1, "n02113186": 1, "n03124170": 1, "n03126707": 1}


def _split(items):
    samples = [i for i in items if isinstance(i, Sample)]
    errors = [i for i in items if isinstance(i, SampleError)]
    assert len(samples) + len(errors) == len(items)
    return samples, errors


def _jpeg(path: Path, value: int = 100) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (10, 8), (value, 50, 200)).save(path, format="JPEG")


def _mapping(root: Path, name: str = "LOC_synset_mapping.txt") -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / name).write_text("".join(f"{s} {n}\n" for s, n in MAPPING.items()))


@pytest.fixture()
def folders_root(tmp_path) -> Path:
    """train/<synset>/ and val/<synset>/ folders."""
    root = tmp_path / "imagenet"
    _mapping(root)
    for split, counts in (("train", TRAIN), ("val", VAL)):
        for synset, n in counts.items():
            for i in range(n):
                name = (
                    f"{synset}_{i + 1}.JPEG" if split == "train" else f"ILSVRC2012_val_{synset[1:]}{i}.JPEG"
                )
                _jpeg(root / split / synset / name)
    return root


def test_class_names_are_readable_and_unique():
    synsets = sorted(TRAIN)
    names = imagenet.readable_names(synsets, {s: [x.strip() for x in MAPPING[s].split(",")] for s in synsets})
    assert names == ["tench", "crane (n02012849)", "Cardigan Welsh corgi", "cardigan", "crane (n03126707)"]
    assert len({class_slug(n) for n in names}) == len(names)


@pytest.mark.parametrize("split,counts", [("train", TRAIN), ("eval", VAL)])
def test_split_folders_give_the_expected_samples(folders_root, split, counts):
    neg = 2
    samples, errors = _split(
        list(imagenet.iter_samples(folders_root, split, ["cls"], {"neg_per_image": neg}))
    )
    assert not errors
    n_images = sum(counts.values())
    assert len(samples) == n_images * (1 + neg)
    assert len({s.name for s in samples}) == len(samples)
    positives = [s for s in samples if s.positive]
    assert len(positives) == n_images == len({s.stem for s in samples})
    names = dict(zip(sorted(TRAIN), imagenet.build_index(folders_root).names, strict=True))
    for s in positives:
        synset = Path(s.source).parent.name
        assert s.class_name == names[synset] and s.source.startswith("train/" if split == "train" else "val/")
        assert " " not in s.stem and s.image == folders_root.resolve() / s.source
    for s in samples:
        if not s.positive:
            assert s.class_name != names[Path(s.source).parent.name]
    if split == "train":
        assert {s.stem for s in positives} >= {"imagenet_n01440764_1", "imagenet_n03126707_3"}
    else:
        assert "imagenet_ILSVRC2012_val_014407640" in {s.stem for s in positives}
    assert load_rgb(positives[0].image).size == (10, 8)


def test_negatives_are_seeded(folders_root):
    def negatives(seed):
        items = imagenet.iter_samples(folders_root, "train", ["cls"], {"neg_per_image": 1, "seed": seed})
        return [(s.stem, s.class_name) for s in items if not s.positive]

    assert negatives(0) == negatives(0) and negatives(0) != negatives(5)
    everything, _ = _split(list(imagenet.iter_samples(folders_root, "eval", ["cls"], {"neg_per_image": -1})))
    assert Counter(s.stem for s in everything) == {stem: 5 for stem in {s.stem for s in everything}}


def test_list_split_is_the_reader_split(folders_root):
    for split in ("train", "eval"):
        items, names = imagenet.list_split(folders_root, split)
        positives = [s for s in imagenet.iter_samples(folders_root, split, ["cls"], {}) if s.positive]
        assert sorted((p, names[lab]) for p, lab in items) == sorted(
            (s.image, s.class_name) for s in positives
        )
        assert all(names[lab] == names[sorted(TRAIN).index(p.parent.name)] for p, lab in items)


def test_file_in_train_and_val_is_eval_only(folders_root):
    _jpeg(folders_root / "val" / "n01440764" / "n01440764_1.JPEG")
    train = {s.image.name for s in imagenet.iter_samples(folders_root, "train", ["cls"], {}) if s.positive}
    test = {s.image.name for s in imagenet.iter_samples(folders_root, "eval", ["cls"], {}) if s.positive}
    assert "n01440764_1.JPEG" in test and "n01440764_1.JPEG" not in train
    assert len(train) == sum(TRAIN.values()) - 1


def test_kaggle_layout_with_flat_val(tmp_path):
    root = tmp_path / "kaggle"
    _mapping(root)
    images = root / "ILSVRC" / "Data" / "CLS-LOC"
    for synset in ("n01440764", "n02012849"):
        _jpeg(images / "train" / synset / f"{synset}_1.JPEG")
    for i in (1, 2, 3, 4):
        _jpeg(images / "val" / f"ILSVRC2012_val_0000000{i}.JPEG")
    (root / "LOC_val_solution.csv").write_text(
        "ImageId,PredictionString\n"
        "ILSVRC2012_val_00000001,n01440764 1 2 3 4 n01440764 5 6 7 8\n"
        "ILSVRC2012_val_00000002,n02012849 1 2 3 4\n"
        "ILSVRC2012_val_00000003,n03124170 1 2 3 4\n"  # a class outside this subset: left out
        "ILSVRC2012_val_00000005,n02012849 1 2 3 4\n"  # no such file
        "ILSVRC2012_val_00000004\n"
    )
    assert imagenet.looks_like(root) and guess_dataset(root) == "imagenet"
    samples, errors = _split(list(imagenet.iter_samples(root, "eval", ["cls"], {"neg_per_image": 0})))
    assert [(s.stem, s.class_name) for s in samples] == [
        ("imagenet_ILSVRC2012_val_00000001", "tench"),
        ("imagenet_ILSVRC2012_val_00000002", "crane"),
    ]
    assert samples[0].source == "ILSVRC/Data/CLS-LOC/val/ILSVRC2012_val_00000001.JPEG"
    assert sorted(e.reason.split()[0] for e in errors) == ["expected", "listed"]
    train, _ = _split(list(imagenet.iter_samples(root, "train", ["cls"], {"neg_per_image": 0})))
    assert len(train) == 2


def test_flat_synset_folders_get_a_fixed_seeded_split(tmp_path):
    root = tmp_path / "flat"
    _mapping(root, "synset_words.txt")
    sizes = {"n01440764": 11, "n02012849": 5, "n02113186": 2, "n03124170": 1}
    for synset, n in sizes.items():
        for i in range(n):
            _jpeg(root / synset / f"img {i}.jpg")  # not ImageNet names, with a space
    train, _ = imagenet.list_split(root, "train")
    test, names = imagenet.list_split(root, "eval")
    assert names == ["tench", "crane", "Cardigan Welsh corgi", "cardigan"]  # one crane here: no suffix
    assert not {p for p, _ in train} & {p for p, _ in test}
    per_class = Counter(lab for _, lab in test)
    assert per_class == {0: 2, 1: 1, 2: 1}  # round(20 %), at least 1; a single image stays in train
    assert len(train) + len(test) == sum(sizes.values())
    # fixed: the same whatever the other classes or the call
    (root / "n03124170" / "img 0.jpg").unlink()
    (root / "n03124170").rmdir()
    assert [p for p, lab in imagenet.list_split(root, "eval")[0] if lab == 0] == [
        p for p, lab in test if lab == 0
    ]
    samples, _ = _split(list(imagenet.iter_samples(root, "eval", ["cls"], {})))
    assert all(" " not in s.stem for s in samples)
    assert {s.stem for s in samples if s.positive} >= {
        "imagenet_n02012849_img_" + p.stem[-1] for p, lab in test if lab == 1
    }


def test_case_only_name_clash_gets_distinct_slugs(tmp_path):
    root = tmp_path / "flat"
    _mapping(root)
    for synset in ("n02113186", "n03124170"):
        for i in range(3):
            _jpeg(root / synset / f"{synset}_{i}.JPEG")
    _, names = imagenet.list_split(root, "train")
    assert names == ["Cardigan Welsh corgi", "cardigan"]
    samples, _ = _split(list(imagenet.iter_samples(root, "train", ["cls"], {"neg_per_image": -1})))
    assert len({s.name for s in samples}) == len(samples) == 2 * 2 * 2


def test_cmyk_and_png_named_jpeg_read_as_rgb(folders_root):
    odd = folders_root / "train" / "n01440764"
    Image.new("CMYK", (10, 8), (0, 255, 255, 0)).save(odd / "n01440764_9.JPEG", format="JPEG")
    Image.new("RGB", (10, 8), (0, 255, 0)).save(odd / "n01440764_10.JPEG", format="PNG")
    samples = {s.stem: s for s in imagenet.iter_samples(folders_root, "train", ["cls"], {}) if s.positive}
    for stem in ("imagenet_n01440764_9", "imagenet_n01440764_10"):
        rgb = np.asarray(load_rgb(samples[stem].image))
        assert rgb.shape == (8, 10, 3)
    assert np.asarray(load_rgb(samples["imagenet_n01440764_10"].image))[0, 0].tolist() == [0, 255, 0]


def test_layout_errors(tmp_path, folders_root, realdata):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert not imagenet.looks_like(empty)
    with pytest.raises(LayoutError, match="LOC_synset_mapping.txt"):
        imagenet.check_layout(empty, "train")
    _mapping(empty)
    with pytest.raises(LayoutError, match="no synset folders"):
        imagenet.check_layout(empty, "train")
    _jpeg(folders_root / "train" / "n01234567" / "n01234567_1.JPEG")
    with pytest.raises(LayoutError, match="n01234567"):
        list(imagenet.iter_samples(folders_root, "train", ["cls"], {}))
    assert not imagenet.looks_like(realdata / "pets" / "oxford-iiit-pet")
    assert not imagenet.looks_like(realdata / "coco")


# --- the synthetic ImageNet folders (dataset_creation/synthetic.py) ---


def test_synthetic_imagenet_counts_labels_and_odd_jpegs(tmp_path):
    from dataset_creation import synthetic

    root = tmp_path / "imagenet"
    synthetic.write_imagenet(root, num_train=12, num_eval=6, size=64, seed=0)
    mapping = {
        ln.split()[0]: ln.split(" ", 1)[1].split(",")[0]
        for ln in (root / "LOC_synset_mapping.txt").read_text().splitlines()
    }
    modes = set()
    for split, folder in (("train", "train"), ("eval", "val")):
        files = sorted((root / folder).glob("n*/*.JPEG"))
        samples, errors = _split(list(imagenet.iter_samples(root, split, ["cls"], {"neg_per_image": 2})))
        positives = [s for s in samples if s.positive]
        assert not errors and len(positives) == len(files) and len(samples) == 3 * len(files)
        assert sorted(s.image for s in positives) == [f.resolve() for f in files]
        for s in positives:
            assert s.class_name == mapping[s.image.parent.name]
            modes.add(Image.open(s.image).mode)
            assert load_rgb(s.image).mode == "RGB"
    assert {"CMYK", "L"} <= modes


# --- end to end: format_dataset writes the pairs, reopened and decoded with tasks/ ---


def test_pairs_built_from_the_synthetic_release(tmp_path):
    import tasks
    from dataset_creation import format_dataset, synthetic, writer

    root = tmp_path / "imagenet"
    synthetic.write_imagenet(root, num_train=8, num_eval=4, size=64, seed=0)
    out = tmp_path / "pairs"
    for split in ("train", "eval"):
        assert not format_dataset.build(
            out, [root], ["cls"], split=split, neg_per_image=2, progress=False
        ).skipped
    rows = writer.read_index(out)
    n_files = {"train": len(list(root.glob("train/*/*.JPEG"))), "eval": len(list(root.glob("val/*/*.JPEG")))}
    assert Counter(r["split"] for r in rows) == {s: 3 * n for s, n in n_files.items()}
    for row in rows:
        target = np.asarray(Image.open(out / row["sample"] / f"{row['stem']}_1.png").convert("RGB"))
        assert tasks.classification.decode(target, *row["colors"])[0] == row["positive"]
        assert Image.open(out / row["sample"] / f"{row['stem']}_0.jpg").mode == "RGB"  # CMYK and L inputs too
