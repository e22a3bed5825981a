"""Convert PASCAL VOC detection annotations (Annotations/*.xml) to COCO-format json for pycocotools.

One json per ImageSets/Main list (``instances_<list>.json``, e.g. ``instances_val.json``). Categories
are the 20 VOC classes under their COCO names and COCO 2017 ids (``readers.voc.VOC_TO_COCO`` /
``COCO_CATEGORY_IDS``: aeroplane -> airplane 5, tvmonitor -> tv 72, ...), each with its ``voc_name``,
so a COCO-trained detector's category ids score directly. Boxes become 0-based ``[x, y, w, h]``
(``[xmin - 1, ymin - 1, xmax - xmin + 1, ymax - ymin + 1]``), the same boxes the voc reader gives the
pairs. ``difficult`` objects are kept with ``"difficult": 1, "ignore": 1``; pycocotools' COCOeval only
honours ``iscrowd``, so ``--difficult_as_crowd`` also sets ``iscrowd = 1`` for VOC-style scoring.
A listed image whose xml or JPEG is missing, or whose xml is unreadable, is left out and reported
(exit status 2).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

try:  # run as a script from anywhere, with or without the package installed
    import dataset_creation  # noqa: F401
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dataset_creation.readers.base import SampleError
from dataset_creation.readers.voc import (
    COCO_CATEGORY_IDS,
    COCO_SUPERCATEGORIES,
    COCO_TO_VOC,
    VOC_CLASSES,
    VOC_TO_COCO,
    read_list,
    read_objects,
)
from instructcv.cli import EXIT_OK, EXIT_PARTIAL, UsageError, run
from instructcv.io import write_json

LISTS = ("train", "val", "trainval", "test")

EXAMPLES = """\
example:
  python dataset_creation/voc2coco.py --voc_root data/VOCdevkit/VOC2012 --out data/VOCdevkit/VOC2012/data
  # -> data/VOCdevkit/VOC2012/data/instances_{train,val,trainval}.json; then in Python:
  #    from pycocotools.coco import COCO; gt = COCO("data/VOCdevkit/VOC2012/data/instances_val.json")
"""


def categories() -> list[dict[str, Any]]:
    """The 20 COCO-format categories (COCO id and name, VOC name), in VOC palette order."""
    return [
        {"id": COCO_CATEGORY_IDS[VOC_TO_COCO[v]], "name": VOC_TO_COCO[v],
         "supercategory": COCO_SUPERCATEGORIES[VOC_TO_COCO[v]], "voc_name": v}
        for v in VOC_CLASSES
    ]  # fmt: skip


def image_id(voc_id: str) -> int:
    """An integer COCO image id from a VOC id: ``2007_000032`` -> 2007000032, ``000005`` -> 5."""
    digits = "".join(ch for ch in voc_id if ch.isdigit())
    if not digits:
        raise ValueError(f"VOC image id without digits: {voc_id!r}")
    return int(digits)


def convert_list(
    voc_root: Path, list_path: Path, difficult_as_crowd: bool = False
) -> tuple[dict[str, Any], list[SampleError]]:
    """(COCO-format dict, skipped items) of the images in one ImageSets/Main list."""
    images, annotations, errors = [], [], []
    seen: set[int] = set()
    for voc_id in read_list(list_path):
        xml = voc_root / "Annotations" / f"{voc_id}.xml"
        jpg = voc_root / "JPEGImages" / f"{voc_id}.jpg"
        missing = [p for p in (xml, jpg) if not p.is_file()]
        if missing:
            errors.append(SampleError(missing[0], f"listed in {list_path.name} but missing on disk"))
            continue
        try:
            objects, size = read_objects(xml)
        except SampleError as e:
            errors.append(e)
            continue
        if size is None:
            errors.append(SampleError(xml, "no <size> width/height"))
            continue
        iid = image_id(voc_id)
        if iid in seen:
            continue
        seen.add(iid)
        images.append({"id": iid, "file_name": jpg.name, "width": size[0], "height": size[1], "voc_id": voc_id})
        for name, (x0, y0, x1, y1), difficult in objects:
            w, h = x1 - x0, y1 - y0
            annotations.append({
                "id": len(annotations) + 1, "image_id": iid, "category_id": COCO_CATEGORY_IDS[VOC_TO_COCO[name]],
                "bbox": [x0, y0, w, h], "area": w * h, "iscrowd": int(difficult and difficult_as_crowd),
                "ignore": int(difficult), "difficult": int(difficult),
            })  # fmt: skip
    data = {
        "info": {"description": f"PASCAL {voc_root.name} {list_path.stem} in COCO format (dataset_creation/voc2coco.py)"},
        "licenses": [],
        "images": images,
        "annotations": annotations,
        "categories": categories(),
    }
    return data, errors


def convert(
    voc_root: str | Path, out: str | Path, lists: Sequence[str] | None = None, difficult_as_crowd: bool = False
) -> tuple[list[Path], list[SampleError]]:
    """Write ``out/instances_<list>.json`` for each ImageSets/Main list present (or named); (files, skipped)."""
    voc_root, out = Path(voc_root), Path(out)
    main_dir = voc_root / "ImageSets" / "Main"
    if not (voc_root / "Annotations").is_dir() or not main_dir.is_dir():
        raise UsageError(f"--voc_root {voc_root}: not a VOC year folder; expected Annotations/<id>.xml, "
                         "JPEGImages/<id>.jpg and ImageSets/Main/{train,val,trainval}.txt (e.g. data/VOCdevkit/VOC2012)")  # fmt: skip
    names = list(lists) if lists else [n for n in LISTS if (main_dir / f"{n}.txt").is_file()]
    if not names:
        raise UsageError(f"{main_dir}: none of {', '.join(n + '.txt' for n in LISTS)}")
    written, errors = [], []
    for name in names:
        list_path = main_dir / f"{name}.txt"
        if not list_path.is_file():
            raise UsageError(f"{list_path}: no such list")
        data, errs = convert_list(voc_root, list_path, difficult_as_crowd)
        target = out / f"instances_{name}.json"
        write_json(target, data)
        written.append(target)
        errors.extend(errs)
        print(f"{target}: {len(data['images'])} images, {len(data['annotations'])} boxes")
    return written, errors


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="voc2coco.py", description=__doc__.splitlines()[0], epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    p.add_argument("--voc_root", required=True, help="a VOC year folder, e.g. data/VOCdevkit/VOC2012")
    p.add_argument("--out", required=True, help="folder for the instances_<list>.json files")
    p.add_argument("--lists", nargs="+", choices=LISTS, help="ImageSets/Main lists to convert (default: all present)")
    p.add_argument("--difficult_as_crowd", action="store_true",
                   help="mark difficult objects iscrowd=1 so that COCOeval ignores them (VOC's rule)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    _, errors = convert(args.voc_root, args.out, args.lists, args.difficult_as_crowd)
    for e in errors:
        print(f"skipped {e}", file=sys.stderr)
    return EXIT_PARTIAL if errors else EXIT_OK


__all__ = ["COCO_TO_VOC", "categories", "convert", "convert_list", "image_id"]

if __name__ == "__main__":
    run(main)
