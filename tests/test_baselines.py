"""Baselines: the specialist-model scripts run offline with tiny models and score through tasks/ metrics.

The scoring paths are checked with oracle models (predictions = the ground truth, or a known
corruption of it) whose numbers are known in advance; the real scripts are run on the real samples
in ../shared/realdata with random tiny models, and their files reopened.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[1]


def _run_script(script: str, *args: str, env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", **(env_extra or {})}
    return subprocess.run([sys.executable, str(REPO / script), *args], capture_output=True, text=True, env=env,
                          cwd=REPO, timeout=300)


def _tag_paths(monkeypatch):
    """Make load_rgb remember which file an image came from (oracle models look their truth up by it)."""
    import instructcv.images as images

    real = images.load_rgb

    def load_rgb(path, exif_transpose=True):
        img = real(path, exif_transpose=exif_transpose)
        img.info["path"] = str(path)
        return img

    monkeypatch.setattr(images, "load_rgb", load_rgb)
    for cli in ("detection.det", "segmentation.seg", "depth.depth"):  # the CLIs import it at module level
        monkeypatch.setattr(f"baselines.{cli}.load_rgb", load_rgb)


# ---------------------------------------------------------------------------------------------- common
def test_offline_hub_id_fails_at_once_with_one_line(realdata, tmp_path):
    proc = _run_script("baselines/detection/det.py", "--model", "detr", "--dataset", "coco",
                       "--data_root", str(realdata / "coco"), "--out", str(tmp_path / "r.json"),
                       env_extra={"HF_HOME": str(tmp_path / "hf")})  # an empty cache
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: model 'facebook/detr-resnet-50' is not in the local Hugging Face cache")
    assert "--model <folder>" in lines[0] and "--revision no_timm" in lines[0]
    assert not (tmp_path / "r.json").exists()


def test_resolve_model_kinds(tmp_path, monkeypatch):
    from baselines.common import HubModel, resolve_model
    from instructcv.cli import UsageError

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    aliases = {"x": HubModel("owner/x", "X")}
    assert resolve_model("x", aliases, tiny=True).kind == "tiny"
    with pytest.raises(UsageError, match="not in the local Hugging Face cache"):
        resolve_model("x", aliases)
    with pytest.raises(UsageError, match="no config.json"):
        resolve_model(str(tmp_path), aliases)
    (tmp_path / "config.json").write_text("{}")
    src = resolve_model(str(tmp_path), aliases)
    assert src.kind == "local" and src.location == str(tmp_path.resolve())
    with pytest.raises(UsageError, match="no such folder"):
        resolve_model("./missing-folder", aliases)


# ---------------------------------------------------------------------------------------------- classification
def test_eval_transform_and_seeded_train_crop():
    from baselines.classification.transforms import Preprocess, random_crop_box

    pre = Preprocess(size=32, crop_pct=0.875, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    ramp = np.tile(np.arange(100, dtype=np.uint8)[None, :, None], (50, 1, 3))  # 100 x 50, brightness = x
    x = pre.eval(Image.fromarray(ramp))
    assert x.shape == (3, 32, 32) and x.dtype == np.float32
    # short side 50 -> 37 (32 / 0.875), long side 100 -> 74; centre crop keeps x in [21, 53) of 74
    # i.e. source columns ~28..72: the middle of the ramp, left-right order kept
    cols = (x[0, 16] * 0.5 + 0.5) * 255
    assert 25 < cols[0] < 33 and 67 < cols[-1] < 75 and np.all(np.diff(cols) > 0)
    a = pre.train(Image.fromarray(ramp), np.random.default_rng([0, 1, 2]))
    b = pre.train(Image.fromarray(ramp), np.random.default_rng([0, 1, 2]))
    assert np.array_equal(a, b)
    rng = np.random.default_rng(0)
    for _ in range(50):
        x0, y0, w, h = random_crop_box((100, 50), rng, (0.08, 1.0), (3 / 4, 4 / 3))
        assert 0 <= x0 and 0 <= y0 and x0 + w <= 100 and y0 + h <= 50 and w > 0 and h > 0


def test_hold_out_is_per_class_and_seeded():
    from baselines.classification.data import hold_out

    items = [(Path(f"{c}_{i}.jpg"), c) for c in range(3) for i in range(20)] + [(Path("lonely.jpg"), 3)]
    train, val = hold_out(items, 0.1, seed=0)
    assert sorted(train + val) == sorted(items)
    assert [sum(1 for _, c in val if c == k) for k in range(4)] == [2, 2, 2, 0]  # a one-image class stays in train
    assert hold_out(items, 0.1, seed=0) == (train, val)
    assert hold_out(items, 0.1, seed=1)[1] != val


def test_cls_trains_writes_checkpoint_and_result(realdata, tmp_path, capsys):
    """cls.py as the README runs it (tiny model, 2 epochs) on the real Pets sample; reopen what it wrote."""
    from transformers import AutoModelForImageClassification

    from baselines.classification import cls
    from baselines.classification.transforms import Preprocess
    from dataset_creation.readers import pets
    from instructcv.images import load_rgb

    root = realdata / "pets" / "oxford-iiit-pet"
    out, ckpt = tmp_path / "cls.json", tmp_path / "ckpt"
    rc = cls.main(["--model", "supervised", "--tiny", "--dataset", "pets", "--steps", "2", "--batch_size", "2",
                   "--workers", "0", "--data_root", str(root), "--out", str(out), "--ckpt_dir", str(ckpt),
                   "--no_progress"])
    assert rc == 0
    summary = capsys.readouterr().out.strip().splitlines()
    assert len(summary) == 1 and summary[0].startswith("cls tiny-supervised on pets: top-1 ")

    result = json.loads(out.read_text())
    assert set(result) == {"cls", "model", "meta"}
    metrics = result["cls"]["pets"]
    test_items, classes = pets.list_split(root, "eval")
    assert len(classes) == 37 and len(test_items) == 4
    assert metrics["n"] == 4 * 37  # every test image asked about every breed: top-1 over the class list
    assert result["meta"]["images"]["test_scored"] == 4
    assert result["meta"]["best_epoch"] in (1, 2) and result["meta"]["checkpoint"] == str(ckpt / "best")
    history = json.loads((ckpt / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2] and all(np.isfinite(h["loss"]) for h in history)

    # the checkpoint is safetensors with the 37 breeds as its head, and reproduces the reported accuracy
    assert (ckpt / "best" / "model.safetensors").is_file()
    model = AutoModelForImageClassification.from_pretrained(ckpt / "best").eval()
    assert [model.config.id2label[i] for i in range(37)] == classes
    pre = Preprocess(size=32, crop_pct=0.875)  # the tiny ResNet's processor: 32 px, ImageNet statistics
    with torch.no_grad():
        x = torch.from_numpy(np.stack([pre.eval(load_rgb(p)) for p, _ in test_items]))
        predicted = model(pixel_values=x).logits.argmax(-1).numpy()
    expected = 100.0 * np.mean(predicted == np.array([label for _, label in test_items]))
    assert metrics["accuracy"] == pytest.approx(expected)


def test_cls_scores_a_saved_checkpoint_without_training(realdata, tmp_path):
    """--steps 0 with a local folder: the checkpoint is scored as it is; a truncated test image is
    skipped and named, the others scored, exit status 2."""
    from baselines.classification import cls
    from baselines.classification.models import build_tiny
    from dataset_creation.readers import pets

    real = realdata / "pets" / "oxford-iiit-pet"
    root = tmp_path / "pets"  # the real sample, linked, with one test image cut short
    (root / "images").mkdir(parents=True)
    (root / "annotations").symlink_to(real / "annotations")
    for image in (real / "images").iterdir():
        (root / "images" / image.name).symlink_to(image)
    (root / "images" / "Bengal_1.jpg").unlink()
    (root / "images" / "Bengal_1.jpg").write_bytes((real / "images" / "Bengal_1.jpg").read_bytes()[:3000])
    _, classes = pets.list_split(root, "eval")
    clf = build_tiny("vit", classes, seed=3)
    clf.model.save_pretrained(tmp_path / "vit")
    clf.processor.save_pretrained(tmp_path / "vit")
    out = tmp_path / "r.json"
    rc = cls.main(["--model", str(tmp_path / "vit"), "--dataset", "pets", "--steps", "0", "--data_root", str(root),
                   "--out", str(out), "--workers", "0", "--no_progress"])
    assert rc == 2
    result = json.loads(out.read_text())
    assert result["cls"]["pets"]["n"] == 3 * 37 and result["meta"]["model"]["source"] == "local"
    assert result["meta"]["training"] is None
    assert [item["path"] for item in result["meta"]["skipped_items"]] == [str(root / "images" / "Bengal_1.jpg")]


# ---------------------------------------------------------------------------------------------- segmentation
def test_voc_to_ade20k_class_map():
    from baselines.segmentation import class_maps

    groups, missing = class_maps.label_groups("voc", class_maps.dataset_classes("voc"), class_maps.ADE20K_CLASSES)
    assert sorted(missing) == sorted(class_maps.VOC_NOT_IN_ADE20K)
    names = {c: [class_maps.ADE20K_CLASSES[i] for i in ids] for c, ids in groups.items()}
    assert names["airplane"] == ["airplane"] and names["tv"] == ["television receiver", "crt screen", "monitor"]
    assert names["motorcycle"] == ["minibike"] and names["couch"] == ["sofa"] and names["dining table"] == ["table"]
    groups, missing = class_maps.label_groups("ade20k", class_maps.ADE20K_CLASSES, class_maps.ADE20K_CLASSES)
    assert not missing and groups["wall"] == [0] and groups["flag"] == [149]


def test_sliding_windows_cover_the_image():
    from baselines.common import ModelSource
    from baselines.segmentation.models import _starts, load_segmenter

    for length, crop, stride in [(100, 64, 42), (64, 64, 42), (65, 64, 42), (300, 64, 21)]:
        starts = _starts(length, crop, stride)
        covered = np.zeros(length, bool)
        for s in starts:
            covered[s:s + crop] = True
        assert covered.all() and starts[-1] == length - crop and starts[0] == 0
    img = Image.fromarray(np.random.default_rng(0).integers(0, 255, (50, 90, 3), dtype=np.uint8))
    for mode in ("whole", "slide"):
        seg = load_segmenter(ModelSource("tiny", "segformer", "t"), mode=mode, short_side=40, crop=32, stride=16)
        seg.to(torch.device("cpu"), torch.float32)
        pred = seg.predict(img)
        assert pred.shape == (50, 90) and pred.min() >= 0 and pred.max() < 150


def _voc_oracle(monkeypatch, shift_airplane: bool = False):
    """Segmenter.predict replaced by the ground truth of the image, written in ADE20K labels."""
    from baselines.segmentation import class_maps
    from baselines.segmentation.models import Segmenter
    from instructcv.images import load_array

    groups, _ = class_maps.label_groups("voc", class_maps.dataset_classes("voc"), class_maps.ADE20K_CLASSES)
    table = np.zeros(256, np.int32)  # background, 255 and uncovered VOC classes -> "wall" (not a VOC class)
    for k, cls in enumerate(class_maps.dataset_classes("voc"), start=1):
        if cls in groups:
            table[k] = groups[cls][-1]  # the last ADE class of the group: the group must be honoured

    def predict(self, image):
        path = Path(image.info["path"])
        labels = load_array(path.parents[1] / "SegmentationClass" / f"{path.stem}.png")
        out = table[labels]
        if shift_airplane:  # the aeroplane moved 10 px right: its IoU drops below 1
            plane = labels == 1
            out[plane] = 0
            out[:, 10:][plane[:, :-10]] = table[1]
        return out

    _tag_paths(monkeypatch)
    monkeypatch.setattr(Segmenter, "predict", predict)


def test_seg_voc_oracle_scores_100_and_a_shift_scores_less(realdata, tmp_path, monkeypatch):
    from baselines.segmentation import seg

    args = ["--model", "segformer", "--tiny", "--dataset", "voc", "--data_root", str(realdata / "voc"), "--no_progress"]
    _voc_oracle(monkeypatch)
    assert seg.main([*args, "--out", str(tmp_path / "perfect.json")]) == 0
    perfect = json.loads((tmp_path / "perfect.json").read_text())
    assert perfect["seg"]["voc"]["mIoU"] == pytest.approx(100.0)
    assert sorted(perfect["meta"]["classes_not_covered"]) == ["bird", "cat", "cow", "dog", "horse", "sheep", "train"]
    _voc_oracle(monkeypatch, shift_airplane=True)
    assert seg.main([*args, "--out", str(tmp_path / "shifted.json")]) == 0
    shifted = json.loads((tmp_path / "shifted.json").read_text())
    assert shifted["seg"]["voc"]["mIoU"] < 99.0


@pytest.mark.parametrize("family", ["segformer", "mask2former"])
def test_seg_tiny_on_real_voc(realdata, tmp_path, family):
    pytest.importorskip("scipy")  # transformers builds Mask2Former's matching loss, which needs scipy
    from baselines.segmentation import seg

    out = tmp_path / "seg.json"
    rc = seg.main(["--model", family, "--tiny", "--dataset", "voc", "--data_root", str(realdata / "voc"),
                   "--out", str(out), "--no_progress", "--mode", "slide" if family == "segformer" else "whole"])
    assert rc == 0
    result = json.loads(out.read_text())
    metrics = result["seg"]["voc"]
    assert {"mIoU", "pixel_acc", "n"} <= set(metrics) and metrics["n"] > 0
    assert result["meta"]["images"] == 2 and result["meta"]["model"]["family"] == family


# ---------------------------------------------------------------------------------------------- detection
def _det_oracle(monkeypatch, dataset: str, data_root: Path, drop: str | None = None):
    """Detector.predict replaced by the ground-truth boxes (score 1) under the model's COCO label ids."""
    from baselines.common import Skipped
    from baselines.detection.class_maps import COCO_CLASSES
    from baselines.detection.models import Detector
    from baselines.eval_data import eval_images, load_truth

    truth = {}
    for item in eval_images(dataset, data_root, "det", Skipped()):
        truth[str(item.image)] = {s.class_name: load_truth(dataset, data_root, s) for s in item.samples}

    def predict(self, images):
        out = []
        for im in images:
            by_label = {}
            for cls, t in truth[im.info["path"]].items():
                if cls == drop:
                    continue
                boxes = np.asarray(t["boxes"], float).reshape(-1, 4)
                by_label[COCO_CLASSES.index(cls)] = np.concatenate([boxes, np.ones((len(boxes), 1))], axis=1)
            out.append(by_label)
        return out

    _tag_paths(monkeypatch)
    monkeypatch.setattr(Detector, "predict", predict)


def test_det_voc_oracle_counts_airplane_and_tv(realdata, tmp_path, monkeypatch):
    """VOC's aeroplane/tvmonitor reach the score under their COCO names: dropping them costs AP."""
    from baselines.detection import det

    root = realdata / "voc"
    args = ["--model", "rtdetr", "--tiny", "--dataset", "voc", "--data_root", str(root), "--no_progress"]
    _det_oracle(monkeypatch, "voc", root)
    assert det.main([*args, "--out", str(tmp_path / "perfect.json")]) == 2  # two listed images are missing
    perfect = json.loads((tmp_path / "perfect.json").read_text())
    assert perfect["det"]["voc"]["mAP"] == pytest.approx(100.0)
    assert perfect["meta"]["skipped"] == 2 and perfect["meta"]["classes_not_covered"] == []
    _det_oracle(monkeypatch, "voc", root, drop="tv")
    det.main([*args, "--out", str(tmp_path / "no_tv.json")])
    assert json.loads((tmp_path / "no_tv.json").read_text())["det"]["voc"]["mAP"] < 100.0


@pytest.mark.parametrize("family", ["detr", "rtdetr"])
def test_det_tiny_on_real_coco_from_a_local_folder(realdata, tmp_path, family):
    from baselines.detection import det
    from baselines.detection.models import build_tiny

    model, processor = build_tiny(family, seed=1)
    model.save_pretrained(tmp_path / family)
    processor.save_pretrained(tmp_path / family)
    out = tmp_path / "det.json"
    rc = det.main(["--model", str(tmp_path / family), "--dataset", "coco", "--data_root", str(realdata / "coco"),
                   "--out", str(out), "--batch_size", "2", "--no_progress"])
    assert rc == 0
    result = json.loads(out.read_text())
    assert {"mAP", "AP50", "AP75", "n"} <= set(result["det"]["coco"])
    assert result["meta"]["images"] == 5  # 000000000089 has no annotation: no det sample, not scored
    assert result["meta"]["model"] == {"source": "local", "location": str((tmp_path / family).resolve()),
                                       "name": family, "family": family}


# ---------------------------------------------------------------------------------------------- depth
def test_align_to_ground_truth_recovers_scale():
    from baselines.depth.models import align_to_ground_truth

    gt = np.random.default_rng(0).uniform(0.5, 8.0, (20, 30)).astype(np.float32)
    valid = np.ones_like(gt, bool)
    depth, scale = align_to_ground_truth(3.0 / gt, gt, valid)  # disparity up to the scale 3
    np.testing.assert_allclose(depth, gt, rtol=1e-5)
    assert scale == pytest.approx(3.0)


@pytest.fixture()
def nyu_eval_root(realdata, tmp_path):
    """The real NYU pair as a one-image eval split (linked, not copied; the sample is in nyu_train.txt)."""
    root = tmp_path / "nyu"
    root.mkdir()
    (root / "bookstore_0001d").symlink_to(realdata / "nyu" / "data" / "nyu" / "bookstore_0001d")
    (root / "nyu_test.txt").write_text("/bookstore_0001d/rgb_00001.jpg /bookstore_0001d/sync_depth_00001.png 518.8579\n")
    (root / "nyu_train.txt").write_text("")
    return root


@pytest.mark.parametrize("family", ["glpn", "dpt", "depth-anything"])
def test_depth_tiny_on_real_nyu(nyu_eval_root, tmp_path, family):
    from baselines.depth import depth

    out = tmp_path / "depth.json"
    assert depth.main(["--model", family, "--tiny", "--dataset", "nyuv2", "--data_root", str(nyu_eval_root),
                       "--out", str(out), "--no_progress"]) == 0
    result = json.loads(out.read_text())
    metrics = result["depes"]["nyuv2"]
    assert {"rmse", "abs_rel", "log10", "delta1", "delta2", "delta3", "n"} <= set(metrics) and metrics["n"] == 1
    assert result["meta"]["median_scaled"] is (family == "dpt")
    assert ("median-scaled" in result["model"]) is (family == "dpt")


def test_depth_oracle_disparity_is_median_scaled_to_zero_error(nyu_eval_root, tmp_path, monkeypatch):
    from baselines.depth import depth
    from baselines.depth.models import DepthEstimator
    from dataset_creation.readers import nyuv2

    gt = nyuv2.load_ground_truth(nyu_eval_root, {"gt": "bookstore_0001d/sync_depth_00001.png",
                                                 "source": "bookstore_0001d/rgb_00001.jpg"})
    disparity = np.where(gt > 0, 7.0 / np.maximum(gt, 1e-6), 0.0).astype(np.float32)  # 0 where there is no depth
    monkeypatch.setattr(DepthEstimator, "predict", lambda self, image: disparity)
    out = tmp_path / "oracle.json"
    assert depth.main(["--model", "dpt", "--tiny", "--dataset", "nyuv2", "--data_root", str(nyu_eval_root),
                       "--out", str(out), "--no_progress"]) == 0
    result = json.loads(out.read_text())
    assert result["depes"]["nyuv2"]["rmse"] == pytest.approx(0.0, abs=1e-3)
    assert result["depes"]["nyuv2"]["delta1"] == pytest.approx(1.0)
    assert result["meta"]["median_scale"]["median"] == pytest.approx(7.0, rel=1e-4)  # 1 / disparity = gt / 7


# ---------------------------------------------------------------------------------------------- synthetic releases
@pytest.fixture(scope="module")
def synthetic_root(tmp_path_factory):
    """Small synthetic ADE20K, SUN RGB-D and Caltech-101 in their native layouts (seconds to write)."""
    from dataset_creation import synthetic

    root = tmp_path_factory.mktemp("synthetic")
    synthetic.write_all(root, ["ade20k", "sunrgbd"], num_train=6, num_eval=3, size=64, seed=0, progress=False)
    synthetic.write_caltech(root / "caltech", num_train=30, num_eval=3, size=48, seed=0)  # ~3 per class
    return root


def test_seg_ade20k_oracle_and_tiny_model(synthetic_root, tmp_path, monkeypatch):
    """ADE20K: model label i is ADE label i + 1; the ground truth read back that way scores 100 mIoU."""
    from baselines.segmentation import seg
    from baselines.segmentation.models import Segmenter
    from instructcv.images import load_array

    root = synthetic_root / "ade20k"
    args = ["--model", "segformer", "--tiny", "--dataset", "ade20k", "--data_root", str(root), "--no_progress"]
    assert seg.main([*args, "--out", str(tmp_path / "tiny.json")]) == 0
    tiny = json.loads((tmp_path / "tiny.json").read_text())
    assert {"mIoU", "pixel_acc", "n"} <= set(tiny["seg"]["ade20k"]) and tiny["meta"]["images"] == 3

    def oracle(self, image):
        path = Path(image.info["path"])
        labels = load_array(path.parents[2] / "annotations" / "validation" / f"{path.stem}.png").astype(np.int32)
        return np.where(labels > 0, labels - 1, 0)  # label 0 ("other") is ignored whatever is predicted there

    _tag_paths(monkeypatch)
    monkeypatch.setattr(Segmenter, "predict", oracle)
    assert seg.main([*args, "--out", str(tmp_path / "oracle.json")]) == 0
    assert json.loads((tmp_path / "oracle.json").read_text())["seg"]["ade20k"]["mIoU"] == pytest.approx(100.0)


def test_depth_tiny_on_synthetic_sunrgbd(synthetic_root, tmp_path):
    from baselines.depth import depth
    from dataset_creation.readers import sunrgbd

    out = tmp_path / "sun.json"
    assert depth.main(["--model", "glpn", "--tiny", "--dataset", "sunrgbd", "--data_root", str(synthetic_root / "sunrgbd"),
                       "--out", str(out), "--no_progress", "--limit", "2"]) == 0
    result = json.loads(out.read_text())
    n_eval = sum(1 for s in sunrgbd.iter_samples(synthetic_root / "sunrgbd", "eval", ["depes"]) if hasattr(s, "stem"))
    assert n_eval > 2 and result["depes"]["sunrgbd"]["n"] == 2 == result["meta"]["images"]  # a seeded subset
    assert 0 < result["depes"]["sunrgbd"]["rmse"] < 10 and result["meta"]["median_scaled"] is False


def test_cls_caltech_split_and_top1(synthetic_root, tmp_path):
    """Caltech-101 file names repeat across class folders: every test image is still scored on its own."""
    from baselines.classification import cls
    from dataset_creation.readers import caltech

    root = synthetic_root / "caltech"
    out = tmp_path / "caltech.json"
    assert cls.main(["--model", "ViT-16", "--tiny", "--dataset", "caltech", "--steps", "1", "--batch_size", "8",
                     "--data_root", str(root), "--out", str(out), "--ckpt_dir", str(tmp_path / "ck"),
                     "--workers", "0", "--no_progress"]) == 0
    test_items, classes = caltech.list_split(root, "eval")
    result = json.loads(out.read_text())
    assert result["cls"]["caltech"]["n"] == len(test_items) * len(classes)
    assert result["meta"]["images"]["test_scored"] == len(test_items)
    assert 0.0 <= result["cls"]["caltech"]["accuracy"] <= 100.0


def test_result_files_merge_into_the_table(realdata, nyu_eval_root, tmp_path):
    """evaluate.py --table reads the baselines' files: one row per model, values as written."""
    from baselines.depth import depth
    from baselines.segmentation import seg
    from evaluation.table import merge

    seg_out, depth_out = tmp_path / "seg.json", tmp_path / "depth.json"
    assert seg.main(["--model", "segformer", "--tiny", "--dataset", "voc", "--data_root", str(realdata / "voc"),
                     "--out", str(seg_out), "--no_progress"]) == 0
    assert depth.main(["--model", "dpt", "--tiny", "--dataset", "nyuv2", "--data_root", str(nyu_eval_root),
                       "--out", str(depth_out), "--no_progress"]) == 0
    table = merge([seg_out, depth_out])
    assert not table.skipped and table.n_files == 2
    rows = {row.model: row for row in table.rows}
    assert set(rows) == {"tiny random segformer", "tiny random dpt, median-scaled"}
    seg_result = json.loads(seg_out.read_text())["seg"]["voc"]
    assert rows["tiny random segformer"].cells["seg_voc_mIoU"].value == pytest.approx(seg_result["mIoU"])
    depth_result = json.loads(depth_out.read_text())["depes"]["nyuv2"]
    assert rows["tiny random dpt, median-scaled"].cells["depes_nyuv2_rmse"].value == pytest.approx(depth_result["rmse"])
