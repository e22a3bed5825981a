"""Small synthetic raw datasets in the native on-disk formats of COCO, ADE20K, Pets, NYUv2, SUN RGB-D, VOC, ImageNet and Caltech-101.

The pictures are a shapes world (``synthetic_scene``, ``synthetic_depth``): every class has one
consistent look, several instances and classes share an image, some touch or overlap, some objects
and backdrops are blue (answer decoders must not mistake them for drawn boxes); depth frames are
ray-cast rooms whose colours darken and haze with distance. Ground truth is exact: masks, boxes,
label maps and depth come from the same drawing as the pixels. Each dataset lands in its own folder
under ``--out``, laid out exactly as the real download (see ``../shared/realdata``), and that folder
is what ``format_dataset.py --data_root`` takes:

``coco/``      annotations/instances_{train,val}2017.json (polygons; iscrowd=1 regions as RLE, uncompressed
               counts lists as COCO writes them and, for every second crowd, compressed counts strings;
               images without annotations; one grayscale JPEG), train2017/, val2017/ ``<12-digit id>.jpg``.
``ade20k/``    ADEChallengeData2016/images/{training,validation}/ADE_{train,val}_<8 digits>.jpg,
               annotations/... .png (8-bit, 0 = other, 1..150 = ``ade20k_classes.ADE20K_CLASSES``),
               objectInfo150.txt and sceneCategories.txt as the release ships them.
``pets/``      images/<Breed>_<n>.jpg (cats capitalised), annotations/trimaps/*.png
               (1 pet, 2 background, 3 border), annotations/xmls/*.xml head boxes (most trainval images, no
               test image), annotations/{trainval,test,list}.txt ("Image CLASS-ID SPECIES BREED ID", list.txt
               with the release's header and sort order). Quirks kept: a PNG with alpha and a GIF named .jpg in
               each split, and one unlisted GIF whose trimap is all background.
``nyuv2/``     the Monocular-Depth-Estimation-Toolbox ``data/nyu`` root: <scene>/rgb_<5 digits>.jpg and
               sync_depth_<5 digits>.png (uint16 millimetres, 0 = no reading: border, shadows, glass, patches),
               nyu_train.txt ("/scene/rgb_N.jpg /scene/sync_depth_N.png 518.8579", shuffled) and
               nyu_test.txt ("category/rgb_N.jpg ..." without the leading slash), neither with a final newline.
               Train scenes are "<category>_<4 digits>[a-c]", test frames sit in "<category>/", as in BTS.
``sunrgbd/``   the toolbox's SUN RGB-D root: SUNRGBD_val_splits.txt (two columns, CRLF) and
               SUNRGBD/<sensor>/<collection>/.../image/*.jpg + .../depth/*.png, the sensors' own frame sizes and
               path patterns (b3do depth "<name>_abs.png", sun3d depth names that differ from the image's), plus
               kv1/NYUdata entries that the reader must drop. Evaluation only: ``num_train`` is not used.
``voc/``       VOCdevkit/VOC2012/{JPEGImages,Annotations,SegmentationClass,SegmentationObject} and
               ImageSets/{Main,Segmentation}/{train,val,trainval}.txt (+ Main/<class>_<split>.txt). Palette PNGs
               with the VOC colour map, 255 void bands along object borders and over "difficult" (tiny)
               objects; one image in five is not segmented (no PNG, not in the Segmentation lists).
``imagenet/``  train/<wnid>/<wnid>_<n>.JPEG, val/<wnid>/ILSVRC2012_val_<8 digits>.JPEG, LOC_synset_mapping.txt
               (ten Imagenette synsets); one CMYK and one grayscale JPEG, as the real train set has.
``caltech/``   101_ObjectCategories/<class>/image_<4 digits>.jpg for ten classes plus BACKGROUND_Google; no
               official split (``num_train + num_eval`` images in all); some grayscale, as the real set.

SUN RGB-D depth units. SUN RGB-D's depth PNGs hold millimetres rotated left by 3 bits inside 16 bits:
``stored = (mm << 3 | mm >> 13) & 0xFFFF`` (below 8.192 m simply mm x 8, "1/8 mm"). The official
SUNRGBDtoolbox (read3dPoints.m) undoes it with ``bitor(bitshift(d, -3), bitshift(d, 16 - 3)) / 1000``;
Monocular-Depth-Estimation-Toolbox scores SUN RGB-D the same way (``SUNRGBDDataset.pre_eval``: rotate
right by 3, /1000, cap at 8 m), while its config's ``depth_scale=8000`` (``stored / 8000``) is only
used by its ``get_gt_depth_maps`` path and is right only below 8.192 m. The synthetic rooms reach
9.5 m, so values that wrap around are present: a reader must rotate, not divide.
NYUv2 depth is plain millimetres (``depth_scale=1000``). Depth is camera-frame Z, 0.5-10 m.

Same arguments give byte-identical files (every image has its own generator seeded from ``--seed``,
the dataset, the split and its index; no Python ``hash()``). A re-run rewrites only files whose bytes
differ (all writes atomic through ``instructcv.io``) and deletes files a previous run of a dataset
wrote that this run does not (recorded in ``<dataset>/.synthetic.json``).

Example::

    python dataset_creation/synthetic.py --out data/synthetic --datasets coco ade20k pets nyuv2 \\
        --num-train 40 --num-eval 10 --size 256 --seed 0
    python dataset_creation/format_dataset.py --save_root image_pairs --tasks det seg cls \\
        --data_root data/synthetic/coco
"""

from __future__ import annotations

import argparse
import io
import json
import math
import sys
import time
import zlib
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cv2
import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils
from tqdm import tqdm

from dataset_creation.ade20k_classes import object_info_150_text
from dataset_creation.synthetic_classes import (
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
from dataset_creation.synthetic_depth import (
    Camera,
    depth_to_mm,
    random_room,
    render_room,
    sensor_holes,
    sunrgbd_encode,
)
from dataset_creation.synthetic_scene import compose_ade, compose_objects, compose_pet, compose_single
from instructcv.io import atomic_open

DATASETS = ("coco", "ade20k", "pets", "nyuv2", "sunrgbd", "voc", "imagenet", "caltech")
MANIFEST = ".synthetic.json"
NYU_SIZE = (640, 480)
Progress = Callable[[int], Any] | None
Size = int | tuple[int, int]


# ---- determinism and file output ---------------------------------------------------------------------------


def _key(part: str | int) -> int:
    return part if isinstance(part, int) else zlib.crc32(part.encode("utf-8"))


def rng_for(seed: int, *keys: str | int) -> np.random.Generator:
    """A generator that depends only on ``seed`` and ``keys`` (dataset, split, index), never on call order."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), *(_key(k) for k in keys)]))


def image_size(rng: np.random.Generator, size: Size) -> tuple[int, int]:
    """(width, height): ``size`` itself when a pair, else a photo-like aspect with long side ``size``."""
    if not isinstance(size, int):
        return int(size[0]), int(size[1])
    aspect = [(4, 3), (3, 2), (1, 1), (3, 4)][int(rng.choice(4, p=[0.55, 0.15, 0.1, 0.2]))]
    w, h = aspect
    if w >= h:
        return size, max(8, round(size * h / w))
    return max(8, round(size * w / h)), size


class DatasetWriter:
    """Writes one dataset's files: atomically, only when the bytes change; removes what a previous run left over."""

    def __init__(self, root: Path, name: str, params: dict[str, Any]):
        self.root = Path(root)
        self.name = name
        self.params = params
        self.files: dict[str, int] = {}
        self.written = 0
        self.unchanged = 0
        self.images = {"train": 0, "eval": 0}
        self.start = time.perf_counter()

    def put(self, rel: str, data: bytes) -> None:
        if rel in self.files:
            raise ValueError(f"{self.name}: {rel} written twice")
        self.files[rel] = len(data)
        path = self.root / rel
        try:
            if path.stat().st_size == len(data) and path.read_bytes() == data:
                self.unchanged += 1
                return
        except OSError:
            pass
        with atomic_open(path, "wb") as f:
            f.write(data)
        self.written += 1

    def text(self, rel: str, lines: Iterable[str], newline: str = "\n", final_newline: bool = True) -> None:
        body = newline.join(lines)
        self.put(rel, (body + (newline if final_newline and body else "")).encode("utf-8"))

    def finish(self) -> dict[str, Any]:
        """Write the manifest, delete files only the previous run wrote, and return the summary."""
        manifest = self.root / MANIFEST
        removed = 0
        try:
            old = json.loads(manifest.read_text(encoding="utf-8")).get("files", [])
        except (OSError, ValueError, AttributeError):
            old = []
        root = self.root.resolve()
        for rel in sorted(set(old) - set(self.files)):
            path = self.root / rel
            if root in path.resolve().parents and path.is_file():  # never outside the dataset folder
                path.unlink()
                removed += 1
                _remove_empty_parents(path.parent, self.root)
        record = {"generator": "dataset_creation/synthetic.py", "dataset": self.name, "params": self.params,
                  "files": sorted(self.files)}  # fmt: skip
        data = (json.dumps(record, indent=1, sort_keys=True) + "\n").encode("utf-8")
        if not (manifest.is_file() and manifest.read_bytes() == data):
            with atomic_open(manifest, "wb") as f:
                f.write(data)
        return {
            "dataset": self.name, "data_root": str(self.root), "images": dict(self.images),
            "files": len(self.files), "written": self.written, "unchanged": self.unchanged, "removed": removed,
            "bytes": sum(self.files.values()), "seconds": round(time.perf_counter() - self.start, 2),
        }  # fmt: skip

    def tick(self, split: str, progress: Progress) -> None:
        self.images[split] += 1
        if progress is not None:
            progress(1)


def _remove_empty_parents(folder: Path, root: Path) -> None:
    while folder != root and root in folder.parents:
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent


def jpeg_bytes(image: np.ndarray | Image.Image, quality: int = 90) -> bytes:
    img = Image.fromarray(image) if isinstance(image, np.ndarray) else image
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def png_bytes(image: np.ndarray | Image.Image) -> bytes:
    img = Image.fromarray(image) if isinstance(image, np.ndarray) else image
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def gif_bytes(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).quantize(
        colors=128, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE
    ).save(buf, format="GIF")
    return buf.getvalue()


def rgba_png_bytes(image: np.ndarray) -> bytes:
    alpha = np.full(image.shape[:2] + (1,), 255, np.uint8)
    return png_bytes(np.concatenate([image, alpha], axis=2))


def palette_png_bytes(index: np.ndarray, palette: np.ndarray) -> bytes:
    img = Image.frombytes(
        "P", (index.shape[1], index.shape[0]), np.ascontiguousarray(index, np.uint8).tobytes()
    )
    img.putpalette(palette.astype(np.uint8).ravel().tolist())
    return png_bytes(img)


# ---- annotation helpers ------------------------------------------------------------------------------------


def mask_to_polygons(mask: np.ndarray) -> list[list[float]]:
    """COCO polygons of a bool mask that pycocotools rasterises back to exactly the same pixels.

    Contours are traced on the mask upsampled 2x and mapped back to pixel coordinates, so every
    vertex lies a quarter pixel inside the region's outer pixel edges; pycocotools then fills
    exactly the pixels whose centres the outline encloses.
    """
    up = cv2.resize(mask.astype(np.uint8), None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)
    contours, _ = cv2.findContours(up, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    polys = []
    for c in contours:
        pts = (c.reshape(-1, 2).astype(np.float64) + 0.5) / 2.0
        if len(pts) >= 3:
            polys.append([round(float(v), 2) for v in pts.ravel()])
    return polys


def uncompressed_rle(mask: np.ndarray) -> dict[str, Any]:
    """COCO's uncompressed RLE: column-major run lengths starting with a run of zeros."""
    flat = np.asfortranarray(mask.astype(np.uint8)).ravel(order="F")
    change = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    counts = np.diff(bounds).tolist()
    if flat.size and flat[0] == 1:
        counts = [0] + counts
    return {"counts": counts, "size": [int(mask.shape[0]), int(mask.shape[1])]}


def compressed_rle(mask: np.ndarray) -> dict[str, Any]:
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def pixel_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) inclusive pixel indices of a non-empty mask."""
    ys = np.flatnonzero(mask.any(axis=1))
    xs = np.flatnonzero(mask.any(axis=0))
    return int(xs[0]), int(ys[0]), int(xs[-1]), int(ys[-1])


def voc_palette() -> np.ndarray:
    """The PASCAL VOC colour map (256 x 3): bits of the index spread over the channels' high bits."""
    idx = np.arange(256)
    cmap = np.zeros((256, 3), np.uint8)
    for shift in range(8):
        for ch in range(3):
            cmap[:, ch] |= (((idx >> (3 * shift + ch)) & 1) << (7 - shift)).astype(np.uint8)
    return cmap


def _xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


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


def write_pets(root: str | Path, num_train: int = 40, num_eval: int = 10, size: Size = 256, seed: int = 0,
               progress: Progress = None) -> dict[str, Any]:  # fmt: skip
    """Oxford-IIIT Pets under ``root`` (images/ and annotations/ as the two release tarballs unpack)."""
    out = DatasetWriter(
        Path(root), "pets", {"num_train": num_train, "num_eval": num_eval, "size": size, "seed": seed}
    )
    counters = {b[0]: 0 for b in PETS_BREEDS}
    order = rng_for(seed, "pets", "breed-order").permutation(len(PETS_BREEDS))
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
            one(split, i, PETS_BREEDS[int(order[i % len(order)])], listed=True)
    one("unlisted", 0, PETS_BREEDS[int(order[0])], listed=False)

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


# ---- all of them -------------------------------------------------------------------------------------------

WRITERS: dict[str, Callable[..., dict[str, Any]]] = {
    "coco": write_coco, "ade20k": write_ade20k, "pets": write_pets, "nyuv2": write_nyuv2,
    "sunrgbd": write_sunrgbd, "voc": write_voc, "imagenet": write_imagenet, "caltech": write_caltech,
}  # fmt: skip


def image_count(dataset: str, num_train: int, num_eval: int) -> int:
    """How many images ``dataset`` writes (for progress bars)."""
    if dataset == "sunrgbd":
        return num_eval + max(1, num_eval // 5)
    return num_train + num_eval


def write_all(
    out: str | Path,
    datasets: Sequence[str] = DATASETS,
    num_train: int = 40,
    num_eval: int = 10,
    size: Size = 256,
    seed: int = 0,
    nyu_size: tuple[int, int] = NYU_SIZE,
    progress: bool = True,
) -> dict[str, dict[str, Any]]:
    """Write each of ``datasets`` into ``out/<name>``; returns ``{name: summary}``."""
    unknown = [d for d in datasets if d not in WRITERS]
    if unknown:
        raise ValueError(f"unknown dataset(s) {', '.join(unknown)}; choose from {', '.join(DATASETS)}")
    total = sum(image_count(d, num_train, num_eval) for d in datasets)
    summaries = {}
    with tqdm(total=total, unit="img", desc="synthetic", disable=not progress) as bar:
        for name in datasets:
            bar.set_postfix_str(name)
            kwargs: dict[str, Any] = {
                "num_train": num_train,
                "num_eval": num_eval,
                "seed": seed,
                "progress": bar.update,
            }
            kwargs["size"] = nyu_size if name == "nyuv2" else size
            summaries[name] = WRITERS[name](Path(out) / name, **kwargs)
    return summaries


def summary_line(out: str | Path, summaries: dict[str, dict[str, Any]], seconds: float) -> str:
    images = sum(sum(s["images"].values()) for s in summaries.values())
    per = ", ".join(f"{k} {sum(s['images'].values())}" for k, s in summaries.items())
    written = sum(s["written"] for s in summaries.values())
    unchanged = sum(s["unchanged"] for s in summaries.values())
    removed = sum(s["removed"] for s in summaries.values())
    mb = sum(s["bytes"] for s in summaries.values()) / 1e6
    extra = f", {removed} stale removed" if removed else ""
    return (f"synthetic: {images} images in {len(summaries)} datasets under {out} ({per}); {written} files written, "
            f"{unchanged} unchanged{extra}; {mb:.1f} MB in {seconds:.1f} s")  # fmt: skip


def _parse_size(text: str) -> Size:
    try:
        if "x" in text.lower():
            w, h = (int(v) for v in text.lower().split("x"))
            if w < 8 or h < 8:
                raise ValueError
            return (w, h)
        value = int(text)
        if value < 8:
            raise ValueError
        return value
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a pixel count like 256 or a size like 640x480, got {text!r}"
        ) from None


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python dataset_creation/synthetic.py",
        description="Write small synthetic raw datasets (coloured shapes with exact ground truth) in the native "
        "on-disk formats of COCO, ADE20K, Oxford-IIIT Pets, NYUv2, SUN RGB-D, PASCAL VOC, ImageNet and "
        "Caltech-101, one folder per dataset under --out, ready for format_dataset.py --data_root.",
        epilog="example:\n  python dataset_creation/synthetic.py --out data/synthetic --datasets coco ade20k pets "
        "nyuv2 --num-train 40 --num-eval 10 --size 256 --seed 0\n  python dataset_creation/format_dataset.py "
        "--save_root image_pairs --tasks det seg cls --data_root data/synthetic/coco\n\nSame arguments give "
        "byte-identical files; re-running rewrites nothing that is already right.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--out", default="data/synthetic", help="output folder (default: data/synthetic)")
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS, metavar="NAME",
                        help=f"datasets to write (default: all): {' '.join(DATASETS)}")  # fmt: skip
    parser.add_argument(
        "--num-train", type=_non_negative, default=40, help="images in each train split (default 40)"
    )
    parser.add_argument(
        "--num-eval", type=_non_negative, default=10, help="images in each eval split (default 10)"
    )
    parser.add_argument("--size", type=_parse_size, default=256,
                        help="long image side in pixels, aspect varying like photos (default 256), or WxH for a "
                             "fixed size, e.g. 640x480")  # fmt: skip
    parser.add_argument("--nyu-size", type=_parse_size, default=NYU_SIZE, metavar="WxH",
                        help="NYUv2 frame size (default 640x480, the size the Eigen crop assumes)")  # fmt: skip
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    nyu_size = args.nyu_size if isinstance(args.nyu_size, tuple) else (args.nyu_size, args.nyu_size * 3 // 4)
    datasets = list(dict.fromkeys(args.datasets))
    start = time.perf_counter()
    summaries = write_all(args.out, datasets, args.num_train, args.num_eval, args.size, args.seed, nyu_size,
                          progress=not args.no_progress)  # fmt: skip
    print(summary_line(args.out, summaries, time.perf_counter() - start))
    return 0


if __name__ == "__main__":
    from instructcv.cli import run

    run(main)
