"""The synthetic datasets, one writer each, laid out exactly as the real downloads (see the package docstring)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

from dataset_creation.synthetic.ade20k_classes import object_info_150_text
from dataset_creation.synthetic.ade_scene import compose_ade
from dataset_creation.synthetic.classes import (
    CALTECH_DRAWN,
    COCO_CATEGORIES,
    COCO_LICENSES,
    IMAGENET_SYNSETS,
    NYU_CATEGORIES,
    NYU_FOCAL,
    NYU_INTRINSICS,
    PETS_BREEDS,
    PETS_LIST_HEADER,
    VOC_CLASSES,
    VOC_DRAWN,
    VOC_POSES,
)
from dataset_creation.synthetic.depth import (
    Camera,
    depth_to_mm,
    random_room,
    render_room,
    sensor_holes,
    sunrgbd_encode,
)
from dataset_creation.synthetic.files import (
    DatasetWriter,
    Progress,
    Size,
    _xml_escape,
    compressed_rle,
    gif_bytes,
    image_size,
    jpeg_bytes,
    mask_to_polygons,
    palette_png_bytes,
    pixel_box,
    png_bytes,
    rgba_png_bytes,
    rng_for,
    uncompressed_rle,
    voc_palette,
)
from dataset_creation.synthetic.scene import compose_objects, compose_pet, compose_single

NYU_SIZE = (640, 480)


# ---- COCO --------------------------------------------------------------------------------------------------

COCO_SPLITS = (("train", "train2017"), ("eval", "val2017"))
BLUE_BACKDROP = "blue"  # every sixth COCO / VOC picture: blue must not read as a drawn box
CROWD_CLASSES = ("person", "bird", "bottle")


def write_coco(root: str | Path, num_train: int = 40, num_eval: int = 10, size: Size = 256, seed: int = 0,
               progress: Progress = None) -> dict[str, Any]:  # fmt: skip
    """COCO 2017 instances layout under ``root``; returns the summary (see ``DatasetWriter.finish``)."""
    out = DatasetWriter(
        Path(root), "coco", {"num_train": num_train, "num_eval": num_eval, "size": size, "seed": seed}
    )
    names = [c[1] for c in COCO_CATEGORIES]
    cat_id = {c[1]: c[0] for c in COCO_CATEGORIES}
    ids = (
        rng_for(seed, "coco", "image-ids").choice(581929, size=num_train + num_eval, replace=False) + 1
    ).tolist()
    ann_id = 1
    crowd_count = 0
    for (split, folder), image_ids in zip(COCO_SPLITS, (ids[:num_train], ids[num_train:]), strict=True):
        images, anns = [], []
        for i, image_id in enumerate(image_ids):
            rng = rng_for(seed, "coco", split, i)
            w, h = image_size(rng, size)
            empty = i % 12 == 2  # like val2017's 000000000089: listed, no annotation
            crowd = str(rng.choice(CROWD_CLASSES)) if i % 4 == 1 else None
            scene = compose_objects(
                rng, w, h, names, crowd=crowd, empty=empty, backdrop=BLUE_BACKDROP if i % 6 == 3 else None
            )
            file_name = f"{image_id:012d}.jpg"
            pixels = scene.image
            if split == "train" and i % 25 == 4:  # COCO has some grayscale JPEGs
                pixels = Image.fromarray(pixels).convert("L")
            out.put(f"{folder}/{file_name}", jpeg_bytes(pixels))
            images.append({
                "license": int(rng.integers(1, 9)), "file_name": file_name, "coco_url": "", "height": h, "width": w,
                "date_captured": f"2013-11-{int(rng.integers(1, 29)):02d} {int(rng.integers(0, 24)):02d}:"
                                 f"{int(rng.integers(0, 60)):02d}:{int(rng.integers(0, 60)):02d}",
                "flickr_url": "", "id": image_id,
            })  # fmt: skip
            for obj in scene.objects:
                if obj.crowd:
                    seg = uncompressed_rle(obj.mask) if crowd_count % 2 == 0 else compressed_rle(obj.mask)
                    crowd_count += 1
                else:
                    seg = mask_to_polygons(obj.mask)
                x0, y0, x1, y1 = pixel_box(obj.mask)
                anns.append({
                    "segmentation": seg, "area": float(obj.mask.sum()), "iscrowd": int(obj.crowd),
                    "image_id": image_id, "bbox": [float(x0), float(y0), float(x1 - x0 + 1), float(y1 - y0 + 1)],
                    "category_id": cat_id[obj.name], "id": ann_id,
                })  # fmt: skip
                ann_id += 1
            out.tick(split, progress)
        doc = {
            "info": {"description": "COCO 2017 Dataset format: synthetic shapes (instructcv synthetic.py)",
                     "url": "http://cocodataset.org", "version": "1.0", "year": 2017,
                     "contributor": "instructcv synthetic.py", "date_created": "2017/09/01"},
            "licenses": [{"url": url, "id": lid, "name": name} for lid, name, url in COCO_LICENSES],
            "categories": [{"supercategory": sup, "id": cid, "name": name} for cid, name, sup in COCO_CATEGORIES],
            "images": images,
            "annotations": anns,
        }  # fmt: skip
        out.put(f"annotations/instances_{folder}.json", json.dumps(doc).encode("utf-8"))
    return out.finish()


# ---- ADE20K ------------------------------------------------------------------------------------------------


def write_ade20k(root: str | Path, num_train: int = 40, num_eval: int = 10, size: Size = 256, seed: int = 0,
                 progress: Progress = None) -> dict[str, Any]:  # fmt: skip
    """ADEChallengeData2016 under ``root``: jpg + 8-bit label PNG pairs, objectInfo150.txt, sceneCategories.txt."""
    out = DatasetWriter(
        Path(root), "ade20k", {"num_train": num_train, "num_eval": num_eval, "size": size, "seed": seed}
    )
    base = "ADEChallengeData2016"
    scenes = []
    for split, folder, prefix, count in (("train", "training", "ADE_train", num_train),
                                          ("eval", "validation", "ADE_val", num_eval)):  # fmt: skip
        for i in range(count):
            rng = rng_for(seed, "ade20k", split, i)
            w, h = image_size(rng, size)
            scene, category = compose_ade(rng, w, h)
            stem = f"{prefix}_{i + 1:08d}"
            out.put(f"{base}/images/{folder}/{stem}.jpg", jpeg_bytes(scene.image))
            out.put(f"{base}/annotations/{folder}/{stem}.png", png_bytes(scene.labels))
            scenes.append(f"{stem} {category}")
            out.tick(split, progress)
    out.text(f"{base}/sceneCategories.txt", scenes)
    out.put(f"{base}/objectInfo150.txt", object_info_150_text().encode("utf-8"))
    return out.finish()


# ---- Oxford-IIIT Pets --------------------------------------------------------------------------------------


def _pets_sort_key(entry: tuple[str, int, int, int]) -> tuple[int, str]:
    # The release sorts a breed's images as if each name ended in a character above the digits:
    # Abyssinian_109, Abyssinian_10, Abyssinian_110, ..., Abyssinian_19, Abyssinian_1, Abyssinian_201.
    return entry[1], entry[0] + "\x7f"


def _trimap(mask: np.ndarray) -> np.ndarray:
    k = max(1, round(min(mask.shape) / 150))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * k + 1, 2 * k + 1))
    m = mask.astype(np.uint8)
    border = (cv2.dilate(m, kernel) > 0) & ~(cv2.erode(m, kernel) > 0)
    tri = np.where(mask, 1, 2).astype(np.uint8)
    tri[border] = 3
    return tri


def _pets_xml(
    name: str, w: int, h: int, species: str, box: tuple[int, int, int, int], truncated: bool
) -> str:
    x0, y0, x1, y1 = box
    return (
        f"<annotation><folder>OXIIIT</folder><filename>{name}.jpg</filename><source><database>OXFORD-IIIT Pet "
        f"Dataset</database><annotation>OXIIIT</annotation><image>flickr</image></source><size><width>{w}</width>"
        f"<height>{h}</height><depth>3</depth></size><segmented>0</segmented><object><name>{species}</name>"
        f"<pose>Frontal</pose><truncated>{int(truncated)}</truncated><occluded>0</occluded><bndbox><xmin>{x0 + 1}"
        f"</xmin><ymin>{y0 + 1}</ymin><xmax>{x1 + 1}</xmax><ymax>{y1 + 1}</ymax></bndbox><difficult>0</difficult>"
        f"</object></annotation>\n"
    )


# Breeds whose synthetic looks differ most (silhouette, colour, texture), first those of ``--pets-breeds N``:
# black solid cat, white dog, golden spotted cat, blue-and-tan dog, white cat, black dog, ticked cat, spotted dog.
DISTINCT_BREEDS = ("Bombay", "great_pyrenees", "Bengal", "yorkshire_terrier", "Persian", "newfoundland",
                   "Abyssinian", "beagle")


def pets_breeds(count: int = 0) -> tuple[tuple[str, int, int, int], ...]:
    """The breed rows a synthetic Pets draws from: all 37 (``count`` 0), or the ``count`` most distinct looks."""
    if not count:
        return PETS_BREEDS
    if not 2 <= count <= len(DISTINCT_BREEDS):
        raise ValueError(f"pets breeds: 0 (all) or 2 to {len(DISTINCT_BREEDS)}, not {count}")
    wanted = set(DISTINCT_BREEDS[:count])
    return tuple(row for row in PETS_BREEDS if row[0] in wanted)


def write_pets(root: str | Path, num_train: int = 40, num_eval: int = 10, size: Size = 256, seed: int = 0,
               progress: Progress = None, breeds: int = 0) -> dict[str, Any]:  # fmt: skip
    """Oxford-IIIT Pets under ``root`` (images/ and annotations/ as the two release tarballs unpack).

    ``breeds``: 0 draws all 37 breeds in turn; N draws only the N most distinct looks (more images each,
    so that a small model can learn them); the class ids stay the release's.
    """
    settings = {"num_train": num_train, "num_eval": num_eval, "size": size, "seed": seed}
    out = DatasetWriter(Path(root), "pets", {**settings, "breeds": breeds} if breeds else settings)
    drawn = pets_breeds(breeds)
    counters = {b[0]: 0 for b in drawn}
    order = rng_for(seed, "pets", "breed-order").permutation(len(drawn))
    lists: dict[str, list[tuple[str, int, int, int]]] = {"train": [], "eval": []}

    def one(split: str, i: int, breed_row: tuple[str, int, int, int], listed: bool) -> None:
        breed, class_id, species_id, breed_id = breed_row
        counters[breed] += 1
        name = f"{breed}_{counters[breed]}"
        rng = rng_for(seed, "pets", split, i)
        w, h = image_size(rng, size)
        scene = compose_pet(rng, w, h, breed)
        pets = [o for o in scene.objects if o.name == breed]
        mask = pets[0].mask if pets and listed else np.zeros((h, w), bool)
        if not listed:
            data = gif_bytes(scene.image)  # like Abyssinian_34.jpg: a GIF in no list, trimap all background
        elif i == 2:
            data = rgba_png_bytes(scene.image)  # like Abyssinian_5.jpg: an RGBA PNG named .jpg
        elif i == 3:
            data = gif_bytes(scene.image)
        else:
            data = jpeg_bytes(scene.image)
        out.put(f"images/{name}.jpg", data)
        out.put(f"annotations/trimaps/{name}.png", png_bytes(_trimap(mask)))
        if listed:
            lists[split].append((name, class_id, species_id, breed_id))
        head = pets[0].head if pets else None
        if listed and split == "train" and i % 10 != 9 and head is not None and head.any():
            box = pixel_box(head)
            truncated = box[0] == 0 or box[1] == 0 or box[2] == w - 1 or box[3] == h - 1
            xml = _pets_xml(name, w, h, "cat" if species_id == 1 else "dog", box, truncated)
            out.put(f"annotations/xmls/{name}.xml", xml.encode("utf-8"))
        if listed:
            out.tick(split, progress)

    for split, count in (("train", num_train), ("eval", num_eval)):
        for i in range(count):
            one(split, i, drawn[int(order[i % len(order)])], listed=True)
    one("unlisted", 0, drawn[int(order[0])], listed=False)

    def rows(entries: list[tuple[str, int, int, int]]) -> list[str]:
        return [f"{n} {c} {s} {b}" for n, c, s, b in sorted(entries, key=_pets_sort_key)]

    out.text("annotations/trainval.txt", rows(lists["train"]))
    out.text("annotations/test.txt", rows(lists["eval"]))
    out.text("annotations/list.txt", list(PETS_LIST_HEADER) + rows(lists["train"] + lists["eval"]))
    return out.finish()


# ---- NYUv2 and SUN RGB-D -----------------------------------------------------------------------------------


def _rgbd_frame(rng: np.random.Generator, cam: Camera, room_rng: np.random.Generator | None = None):
    room = random_room(room_rng if room_rng is not None else rng)
    rgb, depth, glass = render_room(rng, cam, room, yaw=rng.uniform(-0.3, 0.3), pitch=rng.uniform(-0.15, 0.1))
    valid = sensor_holes(rng, depth, glass)
    return rgb, depth_to_mm(depth, valid)


def write_nyuv2(root: str | Path, num_train: int = 40, num_eval: int = 10, size: tuple[int, int] = NYU_SIZE,
                seed: int = 0, progress: Progress = None) -> dict[str, Any]:  # fmt: skip
    """The toolbox's ``data/nyu`` root: scene folders of rgb/sync_depth pairs plus nyu_train.txt and nyu_test.txt."""
    width, height = size
    out = DatasetWriter(
        Path(root), "nyuv2", {"num_train": num_train, "num_eval": num_eval, "size": list(size), "seed": seed}
    )
    cam = Camera.scaled(width, height, NYU_INTRINSICS, NYU_SIZE)
    focal = NYU_FOCAL if (width, height) == NYU_SIZE else f"{NYU_INTRINSICS[0] * width / NYU_SIZE[0]:.4f}"
    # Train: a few frames per scene, one room per scene seen from different poses (as the sync sequences).
    names_rng = rng_for(seed, "nyuv2", "scene-names")
    n_scenes = max(1, math.ceil(num_train / 5))
    scenes = []
    for s in range(n_scenes):
        category = NYU_CATEGORIES[s % len(NYU_CATEGORIES)]
        scenes.append(
            f"{category}_{s // len(NYU_CATEGORIES) * 7 + int(names_rng.integers(1, 7)):04d}{'abc'[s % 3] if s % 2 else ''}"
        )
    train_lines = []
    frame_no = {s: int(names_rng.integers(1, 40)) for s in scenes}
    for i in range(num_train):
        scene = scenes[i % n_scenes]
        frame_no[scene] += int(names_rng.integers(1, 30))
        rng = rng_for(seed, "nyuv2", "train", i)
        rgb, mm = _rgbd_frame(rng, cam, rng_for(seed, "nyuv2", "room", scene))
        n = frame_no[scene]
        out.put(f"{scene}/rgb_{n:05d}.jpg", jpeg_bytes(rgb))
        out.put(f"{scene}/sync_depth_{n:05d}.png", png_bytes(mm))
        train_lines.append(f"/{scene}/rgb_{n:05d}.jpg /{scene}/sync_depth_{n:05d}.png {focal}")
        out.tick("train", progress)
    names_rng.shuffle(train_lines)
    test_entries = []
    number = 0
    for i in range(num_eval):
        category = NYU_CATEGORIES[i % len(NYU_CATEGORIES)]
        number += int(names_rng.integers(1, 40))
        rng = rng_for(seed, "nyuv2", "eval", i)
        rgb, mm = _rgbd_frame(rng, cam)
        out.put(f"{category}/rgb_{number:05d}.jpg", jpeg_bytes(rgb))
        out.put(f"{category}/sync_depth_{number:05d}.png", png_bytes(mm))
        test_entries.append((category, number))
        out.tick("eval", progress)
    test_lines = [f"{c}/rgb_{n:05d}.jpg {c}/sync_depth_{n:05d}.png {focal}" for c, n in sorted(test_entries)]
    out.text("nyu_train.txt", train_lines, final_newline=False)
    out.text("nyu_test.txt", test_lines, final_newline=False)
    return out.finish()


# SUN RGB-D collections in SUNRGBD_val_splits.txt order: (sensor, collection, frame size, fx, fy, cx, cy).
SUN_COLLECTIONS = (
    ("kv2", "kinect2data", (730, 530), 529.5, 529.5, 365.0, 265.0),
    ("kv2", "align_kv2", (730, 530), 529.5, 529.5, 365.0, 265.0),
    ("kv1", "NYUdata", (561, 427), 518.86, 519.47, 284.58, 208.74),
    ("kv1", "b3dodata", (640, 480), 520.0, 520.0, 320.0, 240.0),
    ("xtion", "sun3ddata", (640, 480), 570.34, 570.34, 320.0, 240.0),
    ("xtion", "xtion_align_data", (640, 480), 570.34, 570.34, 320.0, 240.0),
    ("realsense", "lg", (681, 531), 691.6, 691.6, 340.5, 265.5),
    ("realsense", "sa", (681, 531), 691.6, 691.6, 340.5, 265.5),
)


def _sun_paths(collection: str, k: int) -> tuple[str, str]:
    """(image path, depth path) relative to the SUN RGB-D root, in each collection's own naming."""
    mm, ss, f = 10 + k // 60, k % 60, 40 + 7 * k
    if collection == "kinect2data":
        frame = f"SUNRGBD/kv2/kinect2data/{k + 2:06d}_2014-05-26_14-{mm:02d}-{ss:02d}_260595134347_rgbf{f:06d}-resize"
        return f"{frame}/image/{f:07d}.jpg", f"{frame}/depth/{f:07d}.png"
    if collection == "align_kv2":
        frame = f"SUNRGBD/kv2/align_kv2/2014-12-18_11-{mm:02d}-{ss:02d}_260595134347"
        return f"{frame}/image/{f:07d}.jpg", f"{frame}/depth/{f:07d}.png"
    if collection == "NYUdata":
        frame = f"SUNRGBD/kv1/NYUdata/NYU{k + 1:04d}"
        return f"{frame}/image/NYU{k + 1:04d}.jpg", f"{frame}/depth/NYU{k + 1:04d}.png"
    if collection == "b3dodata":
        frame = f"SUNRGBD/kv1/b3dodata/img_{400 + k:04d}"
        return f"{frame}/image/img_{400 + k:04d}.jpg", f"{frame}/depth/img_{400 + k:04d}_abs.png"
    if collection == "sun3ddata":
        a, b = 8 + 11 * k, 234612 + 9791 * k
        frame = f"SUNRGBD/xtion/sun3ddata/mit_32_d507/d507_{1 + k % 2}/{a:07d}-{b:012d}"
        return f"{frame}/image/{a:07d}-{b:012d}.jpg", f"{frame}/depth/{a - 1:07d}-{b - 9799:012d}.png"
    if collection == "xtion_align_data":
        frame = f"SUNRGBD/xtion/xtion_align_data/2014_12_18_11_{mm:02d}_{ss:02d}"
        return f"{frame}/image/{f:07d}.jpg", f"{frame}/depth/{f:07d}.png"
    day = "2014_10_24-09" if collection == "lg" else "2014_10_21-15"
    frame = f"SUNRGBD/realsense/{collection}/{day}_{mm:02d}_{ss:02d}-1311000073"
    return f"{frame}/image/{f:07d}.jpg", f"{frame}/depth/{f:07d}.png"


def write_sunrgbd(root: str | Path, num_train: int = 0, num_eval: int = 10, size: Size | None = None, seed: int = 0,
                  progress: Progress = None) -> dict[str, Any]:  # fmt: skip
    """The toolbox's SUN RGB-D root (evaluation only): frames at each sensor's size, SUNRGBD_val_splits.txt.

    ``num_eval`` frames outside kv1/NYUdata plus ``max(1, num_eval // 5)`` NYUdata frames (which a reader
    drops, NYUv2 test covering them). ``num_train`` and ``size`` are accepted for a uniform call and unused.
    """
    out = DatasetWriter(Path(root), "sunrgbd", {"num_eval": num_eval, "seed": seed})
    others = [c for c in SUN_COLLECTIONS if c[1] != "NYUdata"]
    nyu = [c for c in SUN_COLLECTIONS if c[1] == "NYUdata"]
    plan = [(others[i % len(others)], i // len(others)) for i in range(num_eval)]
    plan += [(nyu[0], i) for i in range(max(1, num_eval // 5))]
    plan.sort(key=lambda item: (SUN_COLLECTIONS.index(item[0]), item[1]))
    lines = []
    for _n, ((_sensor, collection, (w, h), fx, fy, cx, cy), k) in enumerate(plan):
        rng = rng_for(seed, "sunrgbd", collection, k)
        rgb, mm = _rgbd_frame(rng, Camera(w, h, fx, fy, cx, cy))
        image, depth = _sun_paths(collection, k)
        out.put(image, jpeg_bytes(rgb))
        out.put(depth, png_bytes(sunrgbd_encode(mm)))
        lines.append(f"{image} {depth}")
        out.tick("eval", progress)
    out.text("SUNRGBD_val_splits.txt", lines, newline="\r\n")
    return out.finish()


# ---- PASCAL VOC 2012 ---------------------------------------------------------------------------------------


def _voc_xml(image_id: str, w: int, h: int, segmented: bool, objects: list[dict[str, Any]]) -> str:
    year = image_id.split("_")[0]
    lines = ["<annotation>", "\t<folder>VOC2012</folder>", f"\t<filename>{image_id}.jpg</filename>", "\t<source>",
             f"\t\t<database>The VOC{year} Database</database>", f"\t\t<annotation>PASCAL VOC{year}</annotation>",
             "\t\t<image>flickr</image>", "\t</source>", "\t<size>", f"\t\t<width>{w}</width>",
             f"\t\t<height>{h}</height>", "\t\t<depth>3</depth>", "\t</size>", f"\t<segmented>{int(segmented)}</segmented>"]  # fmt: skip
    for o in objects:
        x0, y0, x1, y1 = o["box"]
        lines += ["\t<object>", f"\t\t<name>{_xml_escape(o['name'])}</name>", f"\t\t<pose>{o['pose']}</pose>",
                  f"\t\t<truncated>{o['truncated']}</truncated>", f"\t\t<difficult>{o['difficult']}</difficult>",
                  "\t\t<bndbox>", f"\t\t\t<xmin>{x0 + 1}</xmin>", f"\t\t\t<ymin>{y0 + 1}</ymin>",
                  f"\t\t\t<xmax>{x1 + 1}</xmax>", f"\t\t\t<ymax>{y1 + 1}</ymax>", "\t\t</bndbox>", "\t</object>"]  # fmt: skip
    lines.append("</annotation>")
    return "\n".join(lines) + "\n"


def _void_border(ids: np.ndarray, width: int) -> np.ndarray:
    """Pixels within ``width`` of a boundary between different objects or object and background (VOC's void band)."""
    edge = np.zeros(ids.shape, np.uint8)
    edge[:, :-1] |= ids[:, :-1] != ids[:, 1:]
    edge[:, 1:] |= ids[:, :-1] != ids[:, 1:]
    edge[:-1, :] |= ids[:-1, :] != ids[1:, :]
    edge[1:, :] |= ids[:-1, :] != ids[1:, :]
    return cv2.dilate(edge, np.ones((width, width), np.uint8)) > 0


def write_voc(root: str | Path, num_train: int = 40, num_eval: int = 10, size: Size = 256, seed: int = 0,
              progress: Progress = None) -> dict[str, Any]:  # fmt: skip
    """VOCdevkit/VOC2012 under ``root``: JPEGs, XMLs, SegmentationClass/Object palette PNGs, ImageSets lists."""
    out = DatasetWriter(
        Path(root), "voc", {"num_train": num_train, "num_eval": num_eval, "size": size, "seed": seed}
    )
    base = "VOCdevkit/VOC2012"
    palette = voc_palette()
    main_sets: dict[str, list[str]] = {"train": [], "val": []}
    seg_sets: dict[str, list[str]] = {"train": [], "val": []}
    presence: dict[str, dict[str, int]] = {}
    serial = 0
    for split, voc_split, count in (("train", "train", num_train), ("eval", "val", num_eval)):
        for i in range(count):
            rng = rng_for(seed, "voc", split, i)
            serial += int(rng.integers(1, 40))
            image_id = f"{2007 + serial % 5}_{serial:06d}"
            w, h = image_size(rng, size)
            scene = compose_objects(
                rng, w, h, VOC_DRAWN, max_objects=5, backdrop=BLUE_BACKDROP if i % 6 == 3 else None
            )
            segmented = i % 5 != 4
            cls_map = np.zeros((h, w), np.uint8)
            obj_map = np.zeros((h, w), np.uint8)
            ids = np.zeros((h, w), np.int32)
            objects = []
            flags = {c: -1 for c in VOC_CLASSES}
            for k, obj in enumerate(scene.objects, 1):
                x0, y0, x1, y1 = pixel_box(obj.mask)
                difficult = int(obj.mask.sum() < 0.004 * w * h)
                truncated = int(
                    x0 == 0 or y0 == 0 or x1 == w - 1 or y1 == h - 1 or obj.mask.sum() < 0.6 * obj.drawn_area
                )
                objects.append({"name": obj.name, "pose": str(rng.choice(VOC_POSES)), "truncated": truncated,
                                "difficult": difficult, "box": (x0, y0, x1, y1)})  # fmt: skip
                flags[obj.name] = max(flags[obj.name], 0 if difficult else 1)
                ids[obj.mask] = k
                cls_map[obj.mask] = 255 if difficult else VOC_CLASSES.index(obj.name) + 1
                obj_map[obj.mask] = 255 if difficult else k
            out.put(f"{base}/JPEGImages/{image_id}.jpg", jpeg_bytes(scene.image))
            out.put(
                f"{base}/Annotations/{image_id}.xml",
                _voc_xml(image_id, w, h, segmented, objects).encode("utf-8"),
            )
            if segmented:
                band = _void_border(ids, max(2, round(min(w, h) / 100)))
                cls_map[band] = 255
                obj_map[band] = 255
                out.put(f"{base}/SegmentationClass/{image_id}.png", palette_png_bytes(cls_map, palette))
                out.put(f"{base}/SegmentationObject/{image_id}.png", palette_png_bytes(obj_map, palette))
                seg_sets[voc_split].append(image_id)
            main_sets[voc_split].append(image_id)
            presence[image_id] = flags
            out.tick(split, progress)
    for sets, folder in ((main_sets, "Main"), (seg_sets, "Segmentation")):
        trainval = sorted(sets["train"] + sets["val"])
        for name, entries in (
            ("train", sorted(sets["train"])),
            ("val", sorted(sets["val"])),
            ("trainval", trainval),
        ):
            out.text(f"{base}/ImageSets/{folder}/{name}.txt", entries)
    for c in VOC_CLASSES:
        for name, entries in (("train", main_sets["train"]), ("val", main_sets["val"]),
                              ("trainval", main_sets["train"] + main_sets["val"])):  # fmt: skip
            out.text(
                f"{base}/ImageSets/Main/{c}_{name}.txt", [f"{i} {presence[i][c]:2d}" for i in sorted(entries)]
            )
    return out.finish()


# ---- ImageNet subset and Caltech-101 -----------------------------------------------------------------------


def write_imagenet(root: str | Path, num_train: int = 40, num_eval: int = 10, size: Size = 256, seed: int = 0,
                   progress: Progress = None) -> dict[str, Any]:  # fmt: skip
    """ImageNet-style folders: train/<wnid>/<wnid>_<n>.JPEG, val/<wnid>/ILSVRC2012_val_<8 digits>.JPEG."""
    out = DatasetWriter(
        Path(root), "imagenet", {"num_train": num_train, "num_eval": num_eval, "size": size, "seed": seed}
    )
    numbers = rng_for(seed, "imagenet", "numbers")
    next_train = {wnid: int(numbers.integers(10, 500)) for wnid, _ in IMAGENET_SYNSETS}
    next_val = 0
    for split, _folder, count in (("train", "train", num_train), ("eval", "val", num_eval)):
        for i in range(count):
            wnid, names = IMAGENET_SYNSETS[i % len(IMAGENET_SYNSETS)]
            rng = rng_for(seed, "imagenet", split, i)
            w, h = image_size(rng, size)
            scene = compose_single(rng, w, h, names.split(",")[0])
            if split == "train":
                next_train[wnid] += int(numbers.integers(1, 300))
                rel = f"train/{wnid}/{wnid}_{next_train[wnid]}.JPEG"
            else:
                next_val += int(numbers.integers(1, 500))
                rel = f"val/{wnid}/ILSVRC2012_val_{next_val:08d}.JPEG"
            pixels: Image.Image | np.ndarray = scene.image
            if split == "train" and i == 3:
                pixels = Image.fromarray(scene.image).convert("CMYK")  # ImageNet train has a few CMYK JPEGs
            elif split == "train" and i == 5:
                pixels = Image.fromarray(scene.image).convert("L")
            out.put(rel, jpeg_bytes(pixels))
            out.tick(split, progress)
    out.text("LOC_synset_mapping.txt", [f"{wnid} {names}" for wnid, names in IMAGENET_SYNSETS])
    return out.finish()


def write_caltech(root: str | Path, num_train: int = 40, num_eval: int = 10, size: Size = 256, seed: int = 0,
                  progress: Progress = None) -> dict[str, Any]:  # fmt: skip
    """101_ObjectCategories/<class>/image_<4 digits>.jpg; no official split, so num_train + num_eval images."""
    out = DatasetWriter(
        Path(root), "caltech", {"num_train": num_train, "num_eval": num_eval, "size": size, "seed": seed}
    )
    folders = ("BACKGROUND_Google",) + CALTECH_DRAWN
    counters = {f: 0 for f in folders}
    for i in range(num_train + num_eval):
        folder = folders[i % len(folders)]
        counters[folder] += 1
        rng = rng_for(seed, "caltech", i)
        w, h = image_size(rng, size)
        scene = compose_single(rng, w, h, None if folder == "BACKGROUND_Google" else folder)
        pixels: Image.Image | np.ndarray = scene.image
        if i % 7 == 6:
            pixels = Image.fromarray(scene.image).convert("L")  # Caltech-101 has many grayscale pictures
        out.put(f"101_ObjectCategories/{folder}/image_{counters[folder]:04d}.jpg", jpeg_bytes(pixels))
        out.tick("train" if i < num_train else "eval", progress)
    return out.finish()


