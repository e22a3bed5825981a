"""Oxford-IIIT Pets reader on the real sample files: counts, trimap borders, odd image files, splits."""

from __future__ import annotations

import re
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dataset_creation.readers import guess_dataset, pets
from dataset_creation.readers.base import LayoutError, Sample, SampleError
from instructcv.images import load_rgb

TASKS = ["cls", "seg", "det"]


@pytest.fixture(scope="module")
def pets_root(realdata) -> Path:
    return realdata / "pets" / "oxford-iiit-pet"


def _split(items):
    samples = [i for i in items if isinstance(i, Sample)]
    errors = [i for i in items if isinstance(i, SampleError)]
    assert len(samples) + len(errors) == len(items)
    return samples, errors


def _listed(root: Path, list_name: str) -> list[str]:
    """Image names of a list file, read independently of the reader."""
    return [
        line.split()[0]
        for line in (root / "annotations" / list_name).read_text().splitlines()
        if line.strip()
    ]


def _linked_root(src: Path, dst: Path, trainval: str | None = None, test: str | None = None) -> Path:
    """A writable Pets root made of symlinks to ``src`` files, with optional replacement list files."""
    for sub in ("images", "annotations/trimaps", "annotations/xmls"):
        (dst / sub).mkdir(parents=True)
        for f in (src / sub).iterdir():
            (dst / sub / f.name).symlink_to(f)
    for name, text in (("trainval.txt", trainval), ("test.txt", test)):
        if text is None:
            shutil.copy(src / "annotations" / name, dst / "annotations" / name)
        else:
            (dst / "annotations" / name).write_text(text)
    return dst


@pytest.mark.parametrize("split,list_name", [("train", "trainval.txt"), ("eval", "test.txt")])
def test_counts_follow_the_list_files(pets_root, split, list_name):
    neg = 2
    samples, errors = _split(
        list(pets.iter_samples(pets_root, split, TASKS, {"neg_per_image": neg, "seed": 3}))
    )
    listed = _listed(pets_root, list_name)
    present = [n for n in listed if (pets_root / "images" / f"{n}.jpg").is_file()]
    with_xml = [n for n in present if (pets_root / "annotations" / "xmls" / f"{n}.xml").is_file()]
    assert len(present) == 4  # the real sample: 4 images of each list are on disk
    # every listed image absent on disk is reported once, naming the file
    assert len(errors) == len(listed) - len(present)
    assert all("missing on disk" in str(e) and e.path.endswith(".jpg") for e in errors)

    by_task = {t: [s for s in samples if s.task == t] for t in TASKS}
    per_image_cls = (2 + 1 + neg) if split == "train" else (1 + neg)  # eval: breed queries only by default
    assert len(by_task["cls"]) == per_image_cls * len(present)
    assert len(by_task["seg"]) == len(present)
    assert len(by_task["det"]) == len(with_xml) == (4 if split == "train" else 0)
    assert {s.stem for s in samples} == {f"pets_{n}" for n in present}
    assert len({s.name for s in samples}) == len(samples)
    for s in samples:
        assert s.split == split and s.dataset == "pets" and " " not in s.stem
        assert (pets_root / s.source).resolve() == s.image and s.image.is_absolute()
    # exactly one positive breed per image, and it is the breed of the file name
    breeds = [s for s in by_task["cls"] if s.class_name not in ("cat", "dog")]
    for stem in {s.stem for s in samples}:
        pos = [s.class_name for s in breeds if s.stem == stem and s.positive]
        assert len(pos) == 1 and pos[0].replace(" ", "_") == stem[len("pets_") :].rsplit("_", 1)[0]


def test_species_and_breed_queries(pets_root):
    samples, _ = _split(list(pets.iter_samples(pets_root, "train", ["cls"], {"neg_per_image": 1})))
    dog = {s.class_name: s.positive for s in samples if s.stem == "pets_american_bulldog_10"}
    assert dog["dog"] is True and dog["cat"] is False and dog["american bulldog"] is True
    assert sum(1 for v in dog.values() if not v) == 2  # "cat" and one negative breed
    only_species, _ = _split(list(pets.iter_samples(pets_root, "eval", ["cls"], {"pets_cls": "species"})))
    assert sorted({s.class_name for s in only_species}) == ["cat", "dog"]
    all_neg, _ = _split(list(pets.iter_samples(pets_root, "eval", ["cls"], {"neg_per_image": -1})))
    assert len(all_neg) == 4 * 37  # every breed queried: top-1 over 37 classes is possible


def test_negatives_are_seeded(pets_root):
    def negatives(seed):
        items = pets.iter_samples(pets_root, "train", ["cls"], {"neg_per_image": 3, "seed": seed})
        return [(s.stem, s.class_name) for s in items if isinstance(s, Sample) and not s.positive]

    assert negatives(0) == negatives(0)
    assert negatives(0) != negatives(1)


def test_trimap_border_is_ignored_and_not_pet(pets_root):
    samples, _ = _split(list(pets.iter_samples(pets_root, "train", ["seg"], {})))
    assert {s.class_name for s in samples} == {"cat", "dog"}
    for s in samples:
        raw = np.asarray(Image.open(pets_root / s.gt))
        truth = pets.load_ground_truth(pets_root, s)
        assert truth["mask"].dtype == bool and truth["mask"].shape == raw.shape
        assert np.array_equal(truth["mask"], raw == 1)
        assert np.array_equal(truth["valid"], raw != 3)
        border = raw == 3
        assert border.any() and not truth["mask"][border].any()  # border: not pet in the target
        assert (raw == 1).any() and (raw == 2).any()
    # a metadata.jsonl row (class, gt, source keys) loads the same truth
    s = samples[0]
    row = {"task": "seg", "class": s.class_name, "gt": s.gt, "source": s.source}
    assert np.array_equal(
        pets.load_ground_truth(pets_root, row)["mask"], pets.load_ground_truth(pets_root, s)["mask"]
    )


def test_head_boxes_equal_the_xml(pets_root):
    samples, _ = _split(list(pets.iter_samples(pets_root, "train", ["det"], {})))
    for s in samples:
        text = (pets_root / s.gt).read_text()
        expected = [[float(v) for v in m] for m in re.findall(
            r"<xmin>(\d+)</xmin><ymin>(\d+)</ymin><xmax>(\d+)</xmax><ymax>(\d+)</ymax>", text)]  # fmt: skip
        assert s.boxes == expected
        species = re.search(r"<name>(\w+)</name>", text).group(1)
        assert s.class_name == f"{species} head"
        assert np.array_equal(pets.load_ground_truth(pets_root, s)["boxes"], np.array(expected))


def test_png_gif_rgba_named_jpg_are_read(pets_root, tmp_path):
    # Abyssinian_34 (a GIF) is in neither real list; list it to see it through the reader
    trainval = (pets_root / "annotations" / "trainval.txt").read_text() + "Abyssinian_34 1 1 1\n"
    root = _linked_root(pets_root, tmp_path / "pets", trainval=trainval)
    samples = [s for s in pets.iter_samples(root, "train", ["seg"], {}) if isinstance(s, Sample)]
    samples += [s for s in pets.iter_samples(root, "eval", ["seg"], {}) if isinstance(s, Sample)]
    formats = {}
    for s in samples:
        raw = Image.open(s.image)
        formats[s.stem] = (raw.format, raw.mode)
        img = load_rgb(s.image)
        truth = pets.load_ground_truth(root, s)
        assert img.mode == "RGB" and img.size[::-1] == truth["mask"].shape
    assert formats["pets_Abyssinian_5"] == ("PNG", "RGBA")
    assert formats["pets_Abyssinian_34"] == ("GIF", "P")
    gif = np.asarray(load_rgb(root / "images" / "Abyssinian_34.jpg"))
    assert np.array_equal(
        gif, np.asarray(Image.open(pets_root / "images" / "Abyssinian_34.jpg").convert("RGB"))
    )
    assert gif.std() > 10  # a real picture, not a blank canvas
    # its trimap is all background: an empty mask, not an error
    gif_seg = next(s for s in samples if s.stem == "pets_Abyssinian_34")
    assert not pets.load_ground_truth(root, gif_seg)["mask"].any()


def test_no_image_in_both_splits(pets_root, tmp_path):
    train = {s.source for s in pets.iter_samples(pets_root, "train", TASKS, {}) if isinstance(s, Sample)}
    test = {s.source for s in pets.iter_samples(pets_root, "eval", TASKS, {}) if isinstance(s, Sample)}
    assert train and test and not train & test
    # an image listed in both lists is used for eval only
    root = _linked_root(pets_root, tmp_path / "pets", trainval="Abyssinian_1 1 1 1\nAbyssinian_201 1 1 1\n")
    train = {s.stem for s in pets.iter_samples(root, "train", ["cls"], {}) if isinstance(s, Sample)}
    assert train == {"pets_Abyssinian_1"}
    eval_items, _ = pets.list_split(root, "eval")
    assert root / "images" / "Abyssinian_201.jpg" in [p for p, _ in eval_items]


def test_bad_items_are_reported_and_the_rest_is_built(pets_root, tmp_path):
    trainval = "Abyssinian_1 1 1 1\nAbyssinian_101 one 1 1\nBengal_100 2 1 1\namerican_bulldog_10 2 2 1\n"
    root = _linked_root(pets_root, tmp_path / "pets", trainval=trainval)
    (root / "annotations" / "xmls" / "american_bulldog_10.xml").unlink()
    (root / "annotations" / "xmls" / "american_bulldog_10.xml").write_text("<annotation><object>")
    samples, errors = _split(list(pets.iter_samples(root, "train", TASKS, {})))
    messages = sorted(str(e) for e in errors)
    assert len(errors) == 3, messages
    assert any("trainval.txt:2" in m for m in messages)  # non-numeric class id
    assert any("trainval.txt:3" in m and "Bengal_100" in m for m in messages)  # class id 2 is not Bengal
    assert any("american_bulldog_10.xml" in m and "cannot parse" in m for m in messages)
    assert {s.stem for s in samples} == {"pets_Abyssinian_1", "pets_american_bulldog_10"}
    assert not [s for s in samples if s.stem == "pets_american_bulldog_10" and s.task == "det"]


def test_broken_trimaps_raise_sample_error(pets_root, tmp_path):
    root = _linked_root(pets_root, tmp_path / "pets", trainval="Abyssinian_1 1 1 1\nAbyssinian_101 1 1 1\n")
    trimaps = root / "annotations" / "trimaps"
    (trimaps / "Abyssinian_1.png").unlink()
    Image.fromarray(np.full((400, 600), 255, np.uint8)).save(trimaps / "Abyssinian_1.png")  # a 0/255 picture
    (trimaps / "Abyssinian_101.png").unlink()
    Image.fromarray(np.ones((10, 10), np.uint8)).save(trimaps / "Abyssinian_101.png")  # wrong size
    for s in pets.iter_samples(root, "train", ["seg"], {}):
        with pytest.raises(SampleError) as err:
            pets.load_ground_truth(root, s)
        assert ("found [255]" if s.stem == "pets_Abyssinian_1" else "10x10") in str(err.value)


def test_layout_detection(pets_root, realdata, tmp_path):
    assert pets.looks_like(pets_root)
    assert guess_dataset(pets_root) == "pets"
    assert not pets.looks_like(realdata / "nyu" / "data" / "nyu")
    assert not pets.looks_like(realdata / "coco")
    with pytest.raises(LayoutError) as err:
        pets.check_layout(tmp_path, "train")
    assert "annotations/trainval.txt" in str(err.value) and "images" in str(err.value)
    with pytest.raises(LayoutError):
        list(pets.iter_samples(tmp_path, "eval", TASKS, {}))


def test_list_split_matches_the_list_files(pets_root):
    for split, list_name in (("train", "trainval.txt"), ("eval", "test.txt")):
        items, names = pets.list_split(pets_root, split)
        assert len(names) == 37 and names[0] == "Abyssinian" and names[-1] == "yorkshire terrier"
        lines = {
            ln.split()[0]: int(ln.split()[1])
            for ln in (pets_root / "annotations" / list_name).read_text().splitlines()
        }
        assert len(items) == 4
        for path, label in items:
            assert label == lines[path.stem] - 1
        species_items, species = pets.list_split(pets_root, split, labels="species")
        assert species == ["cat", "dog"]
        assert [lab for _, lab in species_items] == [
            0 if p.stem[0].isupper() else 1 for p, _ in species_items
        ]


# --- the synthetic Pets release (dataset_creation/synthetic.py): every listed image is on disk ---


@pytest.fixture(scope="module")
def syn_pets(tmp_path_factory) -> Path:
    from dataset_creation import synthetic

    root = tmp_path_factory.mktemp("syn") / "pets"
    synthetic.write_pets(root, num_train=10, num_eval=6, size=96, seed=0)
    return root


def test_synthetic_pets_counts_and_ground_truth(syn_pets):
    import xml.etree.ElementTree as ET

    seen = {}
    formats = set()
    for split, list_name in (("train", "trainval.txt"), ("eval", "test.txt")):
        listed = _listed(syn_pets, list_name)
        samples, errors = _split(list(pets.iter_samples(syn_pets, split, TASKS, {"neg_per_image": 1})))
        assert not errors and listed
        xmls = [n for n in listed if (syn_pets / "annotations" / "xmls" / f"{n}.xml").is_file()]
        by_task = {t: [s for s in samples if s.task == t] for t in TASKS}
        assert len(by_task["cls"]) == len(listed) * (4 if split == "train" else 2)
        assert len(by_task["seg"]) == len(listed) and len(by_task["det"]) == len(xmls)
        assert (len(xmls) > 0) == (split == "train")
        seen[split] = {s.source for s in samples}
        for s in by_task["seg"]:
            raw = np.asarray(Image.open(syn_pets / s.gt))
            truth = pets.load_ground_truth(syn_pets, s)
            assert np.array_equal(truth["mask"], raw == 1) and np.array_equal(truth["valid"], raw != 3)
            raw_image = Image.open(s.image)
            formats.add((raw_image.format, raw_image.mode))
            assert load_rgb(s.image).size[::-1] == raw.shape
        for s in by_task["det"]:
            tree = ET.parse(syn_pets / s.gt)
            boxes = [[float(o.find("bndbox").findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax")]
                     for o in tree.getroot().iter("object")]  # fmt: skip
            assert s.boxes == boxes and s.class_name == f"{tree.getroot().findtext('object/name')} head"
    assert not seen["train"] & seen["eval"]
    assert {("PNG", "RGBA"), ("GIF", "P")} <= formats  # the release's quirky files, read as RGB
    unlisted = {p.stem for p in (syn_pets / "images").glob("*.jpg")} - set(
        _listed(syn_pets, "trainval.txt") + _listed(syn_pets, "test.txt")
    )
    assert unlisted and not {f"images/{n}.jpg" for n in unlisted} & (seen["train"] | seen["eval"])


# --- end to end: format_dataset writes the pairs, reopened and decoded with tasks/ ---


def test_pairs_built_from_the_real_pets_files(pets_root, tmp_path):
    import json

    import tasks
    from dataset_creation import format_dataset, writer

    out = tmp_path / "pairs"
    reports = {
        split: format_dataset.build(out, [pets_root], TASKS, split=split, progress=False)
        for split in ("train", "eval")
    }
    rows = writer.read_index(out)
    for split, list_name in (("train", "trainval.txt"), ("eval", "test.txt")):
        listed = _listed(pets_root, list_name)
        present = [n for n in listed if (pets_root / "images" / f"{n}.jpg").is_file()]
        xmls = [n for n in present if (pets_root / "annotations" / "xmls" / f"{n}.xml").is_file()]
        per_image_cls = (
            4 if split == "train" else 2
        )  # species x2 + breed + 1 negative; eval: breed + 1 negative
        expected = {"cls": per_image_cls * len(present), "seg": len(present)} | (
            {"det": len(xmls)} if xmls else {}
        )
        assert dict(Counter(r["task"] for r in rows if r["split"] == split)) == expected
        assert len(reports[split].skipped) == len(listed) - len(present)
    train = {r["source"] for r in rows if r["split"] == "train"}
    assert not train & {r["source"] for r in rows if r["split"] == "eval"}
    for row in rows:
        folder = out / row["sample"]
        raw = Image.open(pets_root / row["source"])
        stored = Image.open(folder / f"{row['stem']}_0.jpg")
        target = np.asarray(Image.open(folder / f"{row['stem']}_1.png").convert("RGB"))
        assert stored.mode == "RGB" and stored.size == raw.size  # RGBA PNG named .jpg stored as RGB JPEG
        if row["task"] == "seg":
            trimap = np.asarray(Image.open(pets_root / row["gt"]))
            assert np.array_equal(tasks.segmentation.decode(target, raw.size), trimap == 1)
        elif row["task"] == "det":
            boxes = json.loads((folder / "bbox.json").read_text())["bbox"]
            xml = (pets_root / "annotations" / "xmls" / f"{row['stem'][5:]}.xml").read_text()
            expected = [
                [float(v) for v in m]
                for m in re.findall(
                    r"<xmin>(\d+)</xmin><ymin>(\d+)</ymin><xmax>(\d+)</xmax><ymax>(\d+)</ymax>", xml
                )
            ]
            assert boxes == expected
            decoded = tasks.detection.decode(target, raw.size, np.asarray(stored))
            assert len(decoded) == 1 and np.allclose(decoded[0, :4], expected[0], atol=3)
        else:
            present, _ = tasks.classification.decode(target, *row["colors"])
            assert present == row["positive"]


def test_synthetic_breed_subset_with_listed_negatives(tmp_path):
    from dataset_creation.synthetic.datasets import DISTINCT_BREEDS, write_pets

    write_pets(tmp_path, num_train=16, num_eval=4, size=48, seed=0, progress=None, breeds=4)
    listed = {line.split()[0].rsplit("_", 1)[0] for line in _listed(tmp_path, "list.txt") if not line.startswith("#")}
    assert listed == set(DISTINCT_BREEDS[:4])  # read from the list file, not the writer
    names = {b.replace("_", " ") for b in listed}
    options = {"neg_per_image": 1, "neg_from": "listed"}
    samples, errors = _split(list(pets.iter_samples(tmp_path, "train", ["cls"], options)))
    assert not errors
    breed_queries = [s for s in samples if s.class_name not in ("cat", "dog")]
    assert {s.class_name for s in breed_queries} == names  # no query names a breed the data never show
    assert sum(s.positive for s in breed_queries) == 16 == len(breed_queries) / 2  # balanced: chance is 50 %
    default, _ = _split(list(pets.iter_samples(tmp_path, "train", ["cls"], {"neg_per_image": 1})))
    assert {s.class_name for s in default if not s.positive} - names - {"cat", "dog"}  # all 37 without it
