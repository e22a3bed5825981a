"""The synthetic raw datasets: reopened with independent tools and compared with the real layouts in ../shared/realdata."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from dataset_creation import synthetic
from dataset_creation.synthetic.ade20k_classes import ADE20K_CLASSES, ADE20K_FULL_NAMES, object_info_150_text
from dataset_creation.synthetic.classes import CALTECH101_FOLDERS, COCO_CATEGORIES, PETS_BREEDS, VOC_CLASSES
from dataset_creation.synthetic.datasets import _pets_sort_key
from dataset_creation.synthetic.scene import compose_objects
from instructcv.images import load_rgb

SEED = 3
ARGS = dict(num_train=6, num_eval=5, size=128, seed=SEED, nyu_size=(160, 120), progress=False)


@pytest.fixture(scope="module")
def syn(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synthetic")
    synthetic.write_all(out, **ARGS)
    return out


@pytest.fixture(scope="module")
def nyu_default(tmp_path_factory) -> Path:
    """NYUv2 at its default 640x480 frame size (the module's other sets are small for speed)."""
    out = tmp_path_factory.mktemp("nyu_default")
    summary = synthetic.write_nyuv2(out, num_train=2, num_eval=2, seed=1)
    assert summary["images"] == {"train": 2, "eval": 2}
    return out


def files_under(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def shape_of(rel: str) -> str:
    """A path with its data-dependent parts generalised: digit runs, pet breeds, NYU scene folders."""
    rel = re.sub(r"\d+", "#", rel)
    rel = re.sub(r"(images|trimaps|xmls)/[A-Za-z_]+?_#\.", r"\1/<breed>_#.", rel)
    rel = re.sub(r"^(data/nyu/)?[a-z_]+(_#[a-z]?)?/(rgb|sync_depth)_", r"<scene>/\3_", rel)
    return rel


# ---- layouts ------------------------------------------------------------------------------------------------


# realdata folder -> (synthetic folder, realdata files not expected in a synthetic set and why)
LAYOUTS = {
    "coco": ("coco", {}),
    "ade20k": ("ade20k", {}),
    "pets/oxford-iiit-pet": ("pets", {"annotations/README": "release text, not reproduced",
                                      "annotations/._trimaps": "macOS AppleDouble stray"}),
    "voc/VOCdevkit/VOC2012": ("voc/VOCdevkit/VOC2012", {"ImageSets/Main/test.txt": "comes with the test tarball"}),
    "nyu/data/nyu": ("nyuv2", {}),
}  # fmt: skip


@pytest.mark.parametrize("real_dir", sorted(LAYOUTS))
def test_layout_has_every_real_path_pattern(syn, realdata, real_dir):
    syn_dir, skipped = LAYOUTS[real_dir]
    real = {shape_of(p.relative_to(realdata / real_dir).as_posix()) for p in (realdata / real_dir).rglob("*")
            if p.is_file() and p.relative_to(realdata / real_dir).as_posix() not in skipped}  # fmt: skip
    ours = {
        shape_of(p.relative_to(syn / syn_dir).as_posix()) for p in (syn / syn_dir).rglob("*") if p.is_file()
    }
    assert real, real_dir
    assert real <= ours, f"missing in synthetic {syn_dir}: {sorted(real - ours)}"


def test_split_lists_have_the_real_line_formats(syn, nyu_default, realdata):
    splits = realdata / "nyu" / "splits"
    cases = [
        (splits / "nyu_train.txt", nyu_default / "nyu_train.txt", r"/[a-z_]+_\d+[a-z]?/rgb_\d{5}\.jpg /[a-z_]+_\d+[a-z]?/sync_depth_\d{5}\.png 518\.8579"),
        (splits / "nyu_test.txt", nyu_default / "nyu_test.txt", r"[a-z_]+/rgb_\d{5}\.jpg [a-z_]+/sync_depth_\d{5}\.png 518\.8579"),
        (splits / "SUNRGBD_val_splits.txt", syn / "sunrgbd" / "SUNRGBD_val_splits.txt", r"SUNRGBD/(kv1|kv2|xtion|realsense)/\S+/image/\S+\.jpg SUNRGBD/\S+/depth/\S+\.png"),
    ]  # fmt: skip
    for real, ours, pattern in cases:
        real_bytes, our_bytes = real.read_bytes(), ours.read_bytes()
        real_lines, our_lines = real_bytes.decode().splitlines(), our_bytes.decode().splitlines()
        assert all(re.fullmatch(pattern, line) for line in real_lines), (
            real
        )  # the pattern describes the real file
        assert our_lines and all(re.fullmatch(pattern, line) for line in our_lines), ours
        assert real_bytes.endswith(b"\n") == our_bytes.endswith(b"\n"), (
            ours
        )  # final newline or not, as the real one
        assert (b"\r\n" in real_bytes) == (b"\r\n" in our_bytes), ours  # SUN RGB-D's list is CRLF


def test_split_lists_reference_existing_files_and_splits_are_disjoint(syn):
    nyu = syn / "nyuv2"
    pairs = {}
    for name in ("nyu_train.txt", "nyu_test.txt"):
        pairs[name] = [line.split() for line in (nyu / name).read_text().splitlines()]
        for rgb, depth, _ in pairs[name]:
            assert (nyu / rgb.lstrip("/")).is_file() and (nyu / depth.lstrip("/")).is_file()
    train = {p[0].lstrip("/") for p in pairs["nyu_train.txt"]}
    test = {p[0] for p in pairs["nyu_test.txt"]}
    assert len(train) == ARGS["num_train"] and len(test) == ARGS["num_eval"] and not train & test
    for line in (syn / "sunrgbd" / "SUNRGBD_val_splits.txt").read_text().splitlines():
        for rel in line.split():
            assert (syn / "sunrgbd" / rel).is_file(), rel
    pets = syn / "pets" / "annotations"
    lists = {n: [line.split()[0] for line in (pets / n).read_text().splitlines() if not line.startswith("#")]
             for n in ("trainval.txt", "test.txt", "list.txt")}  # fmt: skip
    assert not set(lists["trainval.txt"]) & set(lists["test.txt"])
    assert sorted(lists["list.txt"]) == sorted(lists["trainval.txt"] + lists["test.txt"])
    for name in lists["list.txt"]:
        assert (syn / "pets" / "images" / f"{name}.jpg").is_file()
    coco = {
        s: json.loads((syn / "coco" / "annotations" / f"instances_{s}2017.json").read_text())
        for s in ("train", "val")
    }
    ids = {s: {im["id"] for im in coco[s]["images"]} for s in coco}
    assert not ids["train"] & ids["val"]
    ade = syn / "ade20k" / "ADEChallengeData2016"
    for split in ("training", "validation"):
        images = sorted(p.stem for p in (ade / "images" / split).glob("*.jpg"))
        assert images == sorted(p.stem for p in (ade / "annotations" / split).glob("*.png")) and images


# ---- COCO ---------------------------------------------------------------------------------------------------


def test_coco_instances_load_in_pycocotools_and_match_the_drawing(syn, realdata):
    root = syn / "coco"
    real_cats = {c["id"]: (c["name"], c["supercategory"])
                 for c in json.loads((realdata / "coco/annotations/instances_val2017.json").read_text())["categories"]}  # fmt: skip
    crowd_forms = set()
    for folder, count in (("train2017", ARGS["num_train"]), ("val2017", ARGS["num_eval"])):
        coco = COCO(str(root / "annotations" / f"instances_{folder}.json"))
        for c in coco.loadCats(coco.getCatIds()):
            assert real_cats[c["id"]] == (
                c["name"],
                c["supercategory"],
            )  # real COCO ids, names, supercategories
        images = coco.dataset["images"]
        assert len(images) == count
        assert any(not coco.getAnnIds(imgIds=[im["id"]]) for im in images)  # an image without annotations
        for im in images:
            pixels = np.asarray(load_rgb(root / folder / im["file_name"]))
            assert pixels.shape == (im["height"], im["width"], 3)
            anns = coco.loadAnns(coco.getAnnIds(imgIds=[im["id"]], iscrowd=None))
            for ann in anns:
                m = coco.annToMask(ann).astype(bool)
                assert m.sum() == ann["area"] > 0
                x, y, bw, bh = ann["bbox"]
                ys, xs = np.nonzero(m)
                assert xs.min() >= x and xs.max() + 1 <= x + bw and ys.min() >= y and ys.max() + 1 <= y + bh
                assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == (x, y, x + bw, y + bh)  # tight
                if ann["iscrowd"]:
                    seg = ann["segmentation"]
                    crowd_forms.add(type(seg["counts"]).__name__)
                    rle = (
                        mask_utils.frPyObjects(seg, *seg["size"]) if isinstance(seg["counts"], list) else seg
                    )
                    assert np.array_equal(mask_utils.decode(rle).astype(bool), m)
                else:
                    assert isinstance(ann["segmentation"], list) and all(
                        len(p) >= 6 for p in ann["segmentation"]
                    )
    assert crowd_forms == {"list", "str"}  # uncompressed (as COCO writes crowds) and compressed RLE


def test_coco_polygons_reproduce_the_drawn_masks_exactly(syn):
    root = syn / "coco"
    coco = COCO(str(root / "annotations" / "instances_train2017.json"))
    names = [c[1] for c in COCO_CATEGORIES]
    name_of = {c[0]: c[1] for c in COCO_CATEGORIES}
    checked = 0
    for i, im in enumerate(coco.dataset["images"]):
        # The writer's own recipe for image i, drawn again: same generator, same size, same flags.
        rng = synthetic.rng_for(SEED, "coco", "train", i)
        w, h = synthetic.image_size(rng, ARGS["size"])
        crowd = str(rng.choice(synthetic.CROWD_CLASSES)) if i % 4 == 1 else None
        scene = compose_objects(
            rng, w, h, names, crowd=crowd, empty=i % 12 == 2, backdrop="blue" if i % 6 == 3 else None
        )
        anns = coco.loadAnns(coco.getAnnIds(imgIds=[im["id"]], iscrowd=None))
        assert [(name_of[a["category_id"]], bool(a["iscrowd"])) for a in anns] == [
            (o.name, o.crowd) for o in scene.objects
        ]
        for ann, obj in zip(anns, scene.objects, strict=True):
            assert np.array_equal(coco.annToMask(ann).astype(bool), obj.mask)
            checked += 1
        # ... and the JPEG is that drawing (COCO's grayscale pictures: its grey version).
        path = root / "train2017" / im["file_name"]
        drawn = Image.fromarray(scene.image)
        if Image.open(path).mode == "L":
            drawn = drawn.convert("L")
        jpeg = np.asarray(Image.open(path), np.float32)
        assert np.abs(jpeg - np.asarray(drawn, np.float32)).mean() < 6
    assert checked > 10


def test_coco_objects_touch_overlap_and_some_are_blue(syn):
    root = syn / "coco"
    coco = COCO(str(root / "annotations" / "instances_train2017.json"))
    per_image = [coco.loadAnns(coco.getAnnIds(imgIds=[im["id"]])) for im in coco.dataset["images"]]
    assert max(len(a) for a in per_image) >= 3
    assert max(len({x["category_id"] for x in a}) for a in per_image) >= 2
    blue = 0
    for im in coco.dataset["images"]:
        px = np.asarray(load_rgb(root / "train2017" / im["file_name"])).astype(int)
        blue += ((px[..., 2] > 170) & (px[..., 0] < 90) & (px[..., 1] < 140)).mean() > 0.02
    assert blue >= 1


# ---- VOC ----------------------------------------------------------------------------------------------------


def test_voc_xml_palette_pngs_and_imagesets(syn, realdata):
    voc = syn / "voc" / "VOCdevkit" / "VOC2012"
    real_palette = Image.open(
        realdata / "voc/VOCdevkit/VOC2012/SegmentationClass/2007_000032.png"
    ).getpalette()
    sets = {f"{kind}/{s}": (voc / "ImageSets" / kind / f"{s}.txt").read_text().split()
            for kind in ("Main", "Segmentation") for s in ("train", "val", "trainval")}  # fmt: skip
    assert not set(sets["Main/train"]) & set(sets["Main/val"])
    assert sorted(sets["Main/trainval"]) == sorted(sets["Main/train"] + sets["Main/val"])
    assert set(sets["Segmentation/trainval"]) < set(sets["Main/trainval"])  # some images are not segmented
    saw_void = saw_difficult_or_border = False
    for image_id in sets["Main/trainval"]:
        root = ET.parse(voc / "Annotations" / f"{image_id}.xml").getroot()
        w, h = int(root.findtext("size/width")), int(root.findtext("size/height"))
        assert Image.open(voc / "JPEGImages" / f"{image_id}.jpg").size == (w, h)
        objects = root.findall("object")
        assert objects
        for o in objects:
            assert o.findtext("name") in VOC_CLASSES and o.findtext("difficult") in ("0", "1")
            box = [int(o.findtext(f"bndbox/{k}")) for k in ("xmin", "ymin", "xmax", "ymax")]
            assert 1 <= box[0] <= box[2] <= w and 1 <= box[1] <= box[3] <= h  # 1-based inclusive, as VOC
        segmented = root.findtext("segmented") == "1"
        assert segmented == (image_id in sets["Segmentation/trainval"])
        assert segmented == (voc / "SegmentationClass" / f"{image_id}.png").is_file()
        if not segmented:
            continue
        cls_img = Image.open(voc / "SegmentationClass" / f"{image_id}.png")
        obj_img = Image.open(voc / "SegmentationObject" / f"{image_id}.png")
        assert cls_img.mode == obj_img.mode == "P" and cls_img.getpalette() == real_palette
        cls_map, obj_map = np.asarray(cls_img), np.asarray(obj_img)
        values = set(np.unique(cls_map).tolist())
        assert values <= set(range(21)) | {255}
        saw_void |= 255 in values
        easy = {VOC_CLASSES.index(o.findtext("name")) + 1 for o in objects if o.findtext("difficult") == "0"}
        assert values - {0, 255} == easy
        assert set(np.unique(obj_map).tolist()) - {0, 255} <= set(range(1, len(objects) + 1))
        assert np.array_equal(obj_map == 255, cls_map == 255)
        for k, o in enumerate(objects, 1):  # instance k of SegmentationObject lies in its xml box
            ys, xs = np.nonzero(obj_map == k)
            if len(xs):
                x0, y0, x1, y1 = (int(o.findtext(f"bndbox/{c}")) for c in ("xmin", "ymin", "xmax", "ymax"))
                assert xs.min() + 1 >= x0 and xs.max() + 1 <= x1 and ys.min() + 1 >= y0 and ys.max() + 1 <= y1
                assert (cls_map[obj_map == k] == VOC_CLASSES.index(o.findtext("name")) + 1).all()
        saw_difficult_or_border |= (cls_map == 255).mean() > 0
    assert saw_void and saw_difficult_or_border
    lines = (voc / "ImageSets" / "Main" / "cat_trainval.txt").read_text().splitlines()
    assert lines and all(re.fullmatch(r"\d{4}_\d{6} (-1| 0| 1)", line) for line in lines)


# ---- Oxford-IIIT Pets ---------------------------------------------------------------------------------------


def test_pets_breed_table_matches_the_real_list_and_reader(realdata):
    real = {}
    for line in (realdata / "pets/oxford-iiit-pet/annotations/list.txt").read_text().splitlines():
        name, cid, species, breed = line.split()
        real[name.rsplit("_", 1)[0]] = (int(cid), int(species), int(breed))
    ours = {b[0]: b[1:] for b in PETS_BREEDS}
    assert len(ours) == 37 and {k: ours[k] for k in real} == real  # Abyssinian, american_bulldog, Bengal
    assert all(name[0].isupper() == (species == 1) for name, _, species, _ in PETS_BREEDS)
    reader = pytest.importorskip("dataset_creation.readers.pets")
    assert tuple(b[0] for b in sorted(PETS_BREEDS, key=lambda b: b[1])) == reader.BREED_FILE_NAMES


def test_pets_list_order_is_the_releases(realdata):
    real = [
        line.split()
        for line in (realdata / "pets/oxford-iiit-pet/annotations/list.txt").read_text().splitlines()
    ]
    entries = [(n, int(c), int(s), int(b)) for n, c, s, b in real]
    assert sorted(entries, key=_pets_sort_key) == entries


def test_pets_trimaps_xmls_and_quirky_images(syn):
    pets = syn / "pets"
    listed = {line.split()[0]: line.split() for n in ("trainval.txt", "test.txt")
              for line in (pets / "annotations" / n).read_text().splitlines()}  # fmt: skip
    header = (pets / "annotations" / "list.txt").read_text().splitlines()[:6]
    assert header[0] == "#Image CLASS-ID SPECIES BREED ID" and all(h.startswith("#") for h in header)
    formats = {}
    for image in sorted((pets / "images").glob("*.jpg")):
        with Image.open(image) as im:
            formats[image.stem] = (im.format, im.mode)
        rgb = load_rgb(image)
        trimap = np.asarray(Image.open(pets / "annotations" / "trimaps" / f"{image.stem}.png"))
        assert trimap.dtype == np.uint8 and trimap.shape == (rgb.height, rgb.width)
        values = set(np.unique(trimap).tolist())
        if image.stem in listed:
            assert values == {1, 2, 3}
            name, cid, species, breed = listed[image.stem]
            assert PETS_BREEDS[int(cid) - 1][0] == name.rsplit("_", 1)[0] and PETS_BREEDS[int(cid) - 1][
                2:
            ] == (int(species), int(breed))
        else:
            assert values == {2}  # like the release's unlisted Abyssinian_34.jpg
    kinds = set(formats.values())
    assert {("JPEG", "RGB"), ("PNG", "RGBA"), ("GIF", "P")} <= kinds
    assert any(formats[n][0] == "GIF" for n in formats if n not in listed)
    assert {formats[n] for n in listed} >= {("PNG", "RGBA"), ("GIF", "P")}
    test_names = {line.split()[0] for line in (pets / "annotations" / "test.txt").read_text().splitlines()}
    xmls = sorted((pets / "annotations" / "xmls").glob("*.xml"))
    assert xmls and not {x.stem for x in xmls} & test_names  # head boxes for trainval images only
    for x in xmls:
        root = ET.parse(x).getroot()
        box = [int(root.findtext(f"object/bndbox/{k}")) for k in ("xmin", "ymin", "xmax", "ymax")]
        trimap = np.asarray(Image.open(pets / "annotations" / "trimaps" / f"{x.stem}.png"))
        ys, xs = np.nonzero(trimap != 2)
        assert (
            xs.min() + 1 <= box[0] < box[2] <= xs.max() + 1
            and ys.min() + 1 <= box[1] < box[3] <= ys.max() + 1
        )
        assert root.findtext("object/name") == ("cat" if x.stem[0].isupper() else "dog")
        assert root.findtext("filename") == f"{x.stem}.jpg"


# ---- ADE20K -------------------------------------------------------------------------------------------------


def test_ade20k_label_maps_and_release_files(syn, realdata):
    ade = syn / "ade20k" / "ADEChallengeData2016"
    real_mode = Image.open(
        realdata / "ade20k/ADEChallengeData2016/annotations/training/ADE_train_00000036.png"
    ).mode
    seen: set[int] = set()
    for png in sorted(ade.glob("annotations/*/*.png")):
        img = Image.open(png)
        assert img.mode == real_mode == "L"
        labels = np.asarray(img)
        seen |= set(np.unique(labels).tolist())
        split = png.parent.name
        assert Image.open(ade / "images" / split / f"{png.stem}.jpg").size == img.size
    assert 0 in seen and max(seen) <= 150 and len(seen - {0}) >= 5
    info = (ade / "objectInfo150.txt").read_text().splitlines()
    assert len(info) == 151 and info[0].split("\t") == ["Idx", "Ratio", "Train", "Val", "Name"]
    assert [line.split("\t")[4].strip() for line in info[1:]] == list(ADE20K_FULL_NAMES)
    assert (ade / "objectInfo150.txt").read_text() == object_info_150_text()
    reader = pytest.importorskip("dataset_creation.readers.ade20k")
    assert tuple(ADE20K_CLASSES) == tuple(reader.ADE20K_CLASSES)
    scenes = dict(line.split() for line in (ade / "sceneCategories.txt").read_text().splitlines())
    assert set(scenes) == {p.stem for p in ade.glob("images/*/*.jpg")}


# ---- depth --------------------------------------------------------------------------------------------------


def test_nyuv2_depth_is_uint16_millimetres_with_holes(syn):
    nyu = syn / "nyuv2"
    for line in (nyu / "nyu_train.txt").read_text().splitlines() + (
        nyu / "nyu_test.txt"
    ).read_text().splitlines():
        rgb_rel, depth_rel, focal = line.split()
        img = Image.open(nyu / depth_rel.lstrip("/"))
        assert img.mode == "I;16"
        depth = np.asarray(img)
        assert depth.dtype == np.uint16 and depth.shape == (120, 160)
        assert Image.open(nyu / rgb_rel.lstrip("/")).size == (160, 120)
        zero = (depth == 0).mean()
        assert 0.01 < zero < 0.6, zero  # holes and an invalid border, like the real frames
        valid = depth[depth > 0]
        assert valid.min() >= 500 and valid.max() <= 10000 and valid.max() - valid.min() > 1000
        assert (depth[0] == 0).all()  # the unregistered top rows
        assert focal != "518.8579"  # rescaled for 160x120


def test_nyuv2_defaults_to_640x480_and_the_real_focal(nyu_default):
    for name in ("nyu_train.txt", "nyu_test.txt"):
        for line in (nyu_default / name).read_text().splitlines():
            rgb, depth, focal = line.split()
            assert focal == "518.8579" and Image.open(nyu_default / rgb.lstrip("/")).size == (640, 480)
            mm = np.asarray(Image.open(nyu_default / depth.lstrip("/")))
            assert mm.shape == (480, 640) and mm.dtype == np.uint16
            # The invalid border lies outside the Eigen crop (rows 45:471, columns 41:601), as in real frames.
            assert (mm[:6] == 0).all() and (mm[:, :8] == 0).all() and (mm[45:471, 41:601] > 0).mean() > 0.8


def test_sunrgbd_depth_is_rotated_millimetres(syn):
    sun = syn / "sunrgbd"
    lines = (sun / "SUNRGBD_val_splits.txt").read_text().splitlines()
    assert any("/kv1/NYUdata/" in line for line in lines) and any(
        "/kv1/NYUdata/" not in line for line in lines
    )
    wrapped = 0
    for line in lines:
        rgb_rel, depth_rel = line.split()
        stored = np.asarray(Image.open(sun / depth_rel))
        assert stored.dtype == np.uint16 and Image.open(sun / rgb_rel).size == stored.shape[::-1]
        mm = (stored >> 3) | (
            stored << 13
        )  # SUNRGBDtoolbox read3dPoints.m: bitor(bitshift(d,-3), bitshift(d,13))
        valid = mm[mm > 0]
        assert 0 < (mm == 0).mean() < 0.6 and valid.min() >= 500 and valid.max() <= 10000
        below = mm[(mm > 0) & (mm < 8192)]
        assert np.array_equal(stored[(mm > 0) & (mm < 8192)], below * 8)  # "1/8 mm" below 8.192 m
        wrapped += int((mm >= 8192).sum())
    assert wrapped > 0  # far walls: plain stored / 8000 would be wrong there
    reader = pytest.importorskip("dataset_creation.readers.sunrgbd")
    samples = [s for s in reader.iter_samples(sun, "eval", ["depes"], {}) if not isinstance(s, Exception)]
    assert samples and not any("NYUdata" in s.source for s in samples)
    metres = reader.load_ground_truth(sun, samples[0])
    mm0 = np.asarray(Image.open(sun / samples[0].gt))
    assert np.allclose(metres, ((mm0 >> 3) | (mm0 << 13)) / 1000.0, atol=1e-6)


# ---- ImageNet and Caltech-101 --------------------------------------------------------------------------------


def test_imagenet_and_caltech_layouts(syn):
    imagenet = syn / "imagenet"
    mapping = (imagenet / "LOC_synset_mapping.txt").read_text().splitlines()
    assert mapping and all(re.fullmatch(r"n\d{8} \S.*", line) for line in mapping)
    synsets = {line.split()[0] for line in mapping}
    train = sorted((imagenet / "train").glob("*/*.JPEG"))
    val = sorted((imagenet / "val").glob("*/*.JPEG"))
    assert len(train) == ARGS["num_train"] and len(val) == ARGS["num_eval"]
    assert all(p.parent.name in synsets and p.name.startswith(p.parent.name + "_") for p in train)
    assert all(re.fullmatch(r"ILSVRC2012_val_\d{8}\.JPEG", p.name) for p in val)
    modes = {Image.open(p).mode for p in train}
    assert {"RGB", "CMYK", "L"} <= modes and all(load_rgb(p).mode == "RGB" for p in train)
    caltech = syn / "caltech" / "101_ObjectCategories"
    folders = {p.name for p in caltech.iterdir()}
    assert "BACKGROUND_Google" in folders and folders <= set(CALTECH101_FOLDERS)
    images = sorted(caltech.glob("*/*.jpg"))
    assert len(images) == ARGS["num_train"] + ARGS["num_eval"]
    assert all(re.fullmatch(r"image_\d{4}\.jpg", p.name) for p in images)
    assert "L" in {Image.open(p).mode for p in images}


# ---- determinism, idempotence, command line -----------------------------------------------------------------


def test_same_arguments_give_byte_identical_files(syn, tmp_path):
    again = tmp_path / "again"
    synthetic.write_all(again, **ARGS)
    assert files_under(again) == files_under(syn)
    other = tmp_path / "other"
    synthetic.write_all(other, datasets=["coco"], **{**ARGS, "seed": SEED + 1})
    assert files_under(other / "coco") != files_under(syn / "coco")


def test_rerun_rewrites_nothing_and_removes_what_it_no_longer_writes(tmp_path):
    args = dict(datasets=["voc", "pets"], num_train=5, num_eval=4, size=96, seed=0, progress=False)
    first = synthetic.write_all(tmp_path, **args)
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()}
    second = synthetic.write_all(tmp_path, **args)
    assert all(s["written"] == 0 and s["unchanged"] == first[k]["files"] for k, s in second.items())
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()} == before
    (tmp_path / "voc" / "unrelated.txt").write_text("mine")
    smaller = synthetic.write_all(tmp_path, **{**args, "num_train": 2})
    assert smaller["voc"]["removed"] > 0
    reference = tmp_path.parent / f"{tmp_path.name}_fresh"
    synthetic.write_all(reference, **{**args, "num_train": 2})
    left = {k: v for k, v in files_under(tmp_path).items() if k != "voc/unrelated.txt"}
    assert left == files_under(reference)  # exactly what a fresh run writes; other files are left alone
    assert (tmp_path / "voc" / "unrelated.txt").read_text() == "mine"


def test_command_line(tmp_path, repo_root):
    script = repo_root / "dataset_creation" / "synthetic.py"
    helped = subprocess.run(
        [sys.executable, str(script), "--help"], capture_output=True, text=True, check=True
    )
    assert "example:" in helped.stdout and "--num-train" in helped.stdout
    run = subprocess.run(
        [sys.executable, str(script), "--out", str(tmp_path), "--datasets", "coco", "caltech", "--num-train", "3",
         "--num-eval", "2", "--size", "64x48", "--seed", "1"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    lines = run.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("synthetic: 10 images in 2 datasets")
    assert Image.open(next((tmp_path / "coco" / "train2017").glob("*.jpg"))).size == (64, 48)
    bad = subprocess.run([sys.executable, str(script), "--out", str(tmp_path), "--size", "huge"],
                         capture_output=True, text=True)  # fmt: skip
    assert bad.returncode == 2 and "640x480" in bad.stderr and "Traceback" not in bad.stderr
