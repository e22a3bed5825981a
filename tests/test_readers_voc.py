"""VOC reader on the real VOC2007/VOC2012 samples: eval-only seg and det, difficult flags, missing images."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dataset_creation.readers import guess_dataset, voc
from dataset_creation.readers.base import LayoutError, Sample, SampleError


@pytest.fixture(scope="module")
def voc_root(realdata: Path) -> Path:
    return realdata / "voc"


@pytest.fixture(scope="module")
def items(voc_root: Path) -> list:
    return list(voc.iter_samples(voc_root, "eval", ["det", "seg"], {}))


def test_layout_and_splits(voc_root: Path, realdata: Path) -> None:
    assert guess_dataset(voc_root) == "voc"
    assert [p.name for p in voc.year_dirs(voc_root)] == ["VOC2007", "VOC2012"]
    assert voc.year_dirs(voc_root / "VOCdevkit" / "VOC2012") == [voc_root / "VOCdevkit" / "VOC2012"]
    assert not voc.looks_like(realdata / "coco")
    with pytest.raises(LayoutError, match="evaluation-only"):
        voc.check_layout(voc_root, "train")
    with pytest.raises(LayoutError, match="not a PASCAL VOC root"):
        voc.check_layout(realdata / "coco", "eval")


def test_class_names_map_to_coco() -> None:
    assert len(voc.CLASSES) == 20 and len(set(voc.COCO_CATEGORY_IDS.values())) == 20
    assert voc.VOC_TO_COCO["tvmonitor"] == "tv" and voc.VOC_TO_COCO["diningtable"] == "dining table"
    assert voc.COCO_TO_VOC["couch"] == "sofa" and voc.VOC_TO_COCO["dog"] == "dog"
    assert set(voc.CLASSES) == set(voc.COCO_CATEGORY_IDS)


def test_missing_listed_images_are_reported(items: list) -> None:
    errors = [e for e in items if isinstance(e, SampleError)]
    assert sorted(Path(e.path).name for e in errors) == ["000001.jpg", "2007_000027.jpg"]
    assert all("missing on disk" in e.reason for e in errors)


def test_seg_samples_match_the_palette_maps(voc_root: Path, items: list) -> None:
    seg = [s for s in items if isinstance(s, Sample) and s.task == "seg"]
    year = voc_root / "VOCdevkit" / "VOC2012"
    ids = (year / "ImageSets/Segmentation/val.txt").read_text().split()
    expected = []
    for i in ids:
        labels = np.asarray(Image.open(year / "SegmentationClass" / f"{i}.png"))
        expected += [(f"voc2012_{i}", voc.CLASSES[k - 1]) for k in np.unique(labels) if 0 < k < 255]
    assert [(s.stem, s.class_name) for s in seg] == expected == [("voc2012_2007_000033", "airplane"),
                                                                 ("voc2012_2007_000042", "train")]
    for s in seg:
        labels = np.asarray(Image.open(year / "SegmentationClass" / f"{s.stem[8:]}.png"))
        truth = voc.load_ground_truth(voc_root, s)
        np.testing.assert_array_equal(truth["mask"], labels == voc.CLASSES.index(s.class_name) + 1)
        np.testing.assert_array_equal(truth["valid"], labels != 255)
        assert not truth["valid"].all()  # the 255 borders are ignored


def test_det_boxes_and_difficult_flags_match_the_xml(voc_root: Path, items: list) -> None:
    det = [s for s in items if isinstance(s, Sample) and s.task == "det"]
    expected = {}
    for year, list_name in (("VOC2007", "test"), ("VOC2012", "test")):  # realdata has no Main/val.txt
        d = voc_root / "VOCdevkit" / year
        for i in (d / f"ImageSets/Main/{list_name}.txt").read_text().split():
            if not (d / "JPEGImages" / f"{i}.jpg").is_file():
                continue
            for obj in ET.parse(d / "Annotations" / f"{i}.xml").getroot().iter("object"):
                b = [float(obj.find(f"bndbox/{k}").text) for k in ("xmin", "ymin", "xmax", "ymax")]
                key = (f"{year.lower()}_{i}", voc.VOC_TO_COCO[obj.find("name").text])
                expected.setdefault(key, []).append(([b[0] - 1, b[1] - 1, b[2], b[3]], obj.find("difficult").text == "1"))
    assert {(s.stem, s.class_name) for s in det} == set(expected)
    for s in det:
        assert s.boxes == [b for b, _ in expected[(s.stem, s.class_name)]]
        assert s.crowd == [d for _, d in expected[(s.stem, s.class_name)]]
        truth = voc.load_ground_truth(voc_root, {"task": "det", "class": s.class_name, "gt": s.gt})
        np.testing.assert_allclose(truth["boxes"], s.boxes)
    chairs = next(s for s in det if s.stem == "voc2007_000005")
    assert chairs.crowd == [False, False, True, False, True]  # two difficult chairs kept, flagged
