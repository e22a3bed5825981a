"""Small synthetic raw datasets in the native on-disk formats of COCO, ADE20K, Pets, NYUv2, SUN RGB-D, VOC, ImageNet and Caltech-101.

The pictures are a shapes world (``scene``, ``ade_scene``, ``depth``, ``shapes`` in this package): every class has one
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
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

from dataset_creation.synthetic.datasets import (
    CROWD_CLASSES,
    NYU_SIZE,
    write_ade20k,
    write_caltech,
    write_coco,
    write_imagenet,
    write_nyuv2,
    write_pets,
    write_sunrgbd,
    write_voc,
)
from dataset_creation.synthetic.files import Size, image_size, rng_for
from instructcv.cli import UsageError

__all__ = ["CROWD_CLASSES", "DATASETS", "NYU_SIZE", "image_size", "main", "rng_for", "summary_line", "write_ade20k",
           "write_all", "write_caltech", "write_coco", "write_imagenet", "write_nyuv2", "write_pets",
           "write_sunrgbd", "write_voc"]

DATASETS = ("coco", "ade20k", "pets", "nyuv2", "sunrgbd", "voc", "imagenet", "caltech")


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
    pets_breeds: int = 0,
) -> dict[str, dict[str, Any]]:
    """Write each of ``datasets`` into ``out/<name>``; returns ``{name: summary}`` (``pets_breeds``: write_pets')."""
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
            if name == "pets" and pets_breeds:
                kwargs["breeds"] = pets_breeds
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
    parser.add_argument("--pets-breeds", type=_non_negative, default=0, metavar="N",
                        help="Pets: only the N (2-8) most distinct breeds, more images each (default 0: all 37)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    nyu_size = args.nyu_size if isinstance(args.nyu_size, tuple) else (args.nyu_size, args.nyu_size * 3 // 4)
    datasets = list(dict.fromkeys(args.datasets))
    start = time.perf_counter()
    if args.pets_breeds == 1 or args.pets_breeds > 8:
        raise UsageError(f"--pets-breeds {args.pets_breeds}: 0 (all 37) or 2 to 8")
    summaries = write_all(args.out, datasets, args.num_train, args.num_eval, args.size, args.seed, nyu_size,
                          progress=not args.no_progress, pets_breeds=args.pets_breeds)  # fmt: skip
    print(summary_line(args.out, summaries, time.perf_counter() - start))
    return 0
