"""voc2coco: the json loads in pycocotools, boxes and categories match the xml, COCOeval scores it."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from dataset_creation import voc2coco
from dataset_creation.readers import voc


def test_json_matches_the_xml_and_scores_perfectly(realdata: Path, tmp_path: Path) -> None:
    year = realdata / "voc" / "VOCdevkit" / "VOC2007"
    files, errors = voc2coco.convert(year, tmp_path, ["test"], difficult_as_crowd=True)
    assert [f.name for f in files] == ["instances_test.json"]
    assert [Path(e.path).name for e in errors] == ["000001.jpg"]  # listed, image missing
    api = COCO(str(files[0]))
    assert {c["name"] for c in api.loadCats(api.getCatIds())} == set(voc.CLASSES)
    assert api.loadCats([5])[0] == {"id": 5, "name": "airplane", "supercategory": "vehicle", "voc_name": "aeroplane"}

    n_boxes = 0
    for i in ("000002", "000003", "000004", "000005"):
        objects = ET.parse(year / "Annotations" / f"{i}.xml").getroot().findall("object")
        anns = api.loadAnns(api.getAnnIds(imgIds=[int(i)], iscrowd=None))
        assert len(anns) == len(objects)
        for a, obj in zip(anns, objects, strict=True):
            x0, y0, x1, y1 = (float(obj.find(f"bndbox/{k}").text) for k in ("xmin", "ymin", "xmax", "ymax"))
            np.testing.assert_allclose(a["bbox"], [x0 - 1, y0 - 1, x1 - x0 + 1, y1 - y0 + 1])
            assert api.loadCats([a["category_id"]])[0]["voc_name"] == obj.find("name").text
            assert a["difficult"] == a["iscrowd"] == int(obj.find("difficult").text)
        n_boxes += len(objects)
    assert len(api.getAnnIds(iscrowd=None)) == n_boxes == 15

    # the ground truth as detections scores AP 1: the json is what COCOeval expects
    dets = [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 1.0}
            for a in api.loadAnns(api.getAnnIds(iscrowd=False))]
    ev = COCOeval(api, api.loadRes(dets), "bbox")
    ev.params.useCats = 1
    ev.evaluate(), ev.accumulate()
    assert ev.eval["precision"][0, :, :, 0, -1].max() == 1.0


def test_command_line(realdata: Path, tmp_path: Path, repo_root: Path) -> None:
    out = tmp_path / "data"
    proc = subprocess.run(
        [sys.executable, str(repo_root / "dataset_creation" / "voc2coco.py"),
         "--voc_root", str(realdata / "voc" / "VOCdevkit" / "VOC2012"), "--out", str(out)],
        capture_output=True, text=True, cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr  # 2007_000027.jpg is listed but absent
    assert "2007_000027.jpg" in proc.stderr and "Traceback" not in proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["instances_test.json", "instances_trainval.json"]
    api = COCO(str(out / "instances_test.json"))
    assert sorted(api.getImgIds()) == [2007000032, 2007000033, 2007000039, 2007000042]
    assert api.loadImgs([2007000032])[0]["file_name"] == "2007_000032.jpg"
