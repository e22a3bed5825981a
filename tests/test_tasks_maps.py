"""Segmentation, classification and depth targets: round trips, damage, hand-worked metrics."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image

from tasks import classification as cls
from tasks import depth as dep
from tasks import segmentation as seg

SIZES = [(640, 480), (480, 640), (500, 375), (427, 640)]


def jpeg(a: np.ndarray, quality: int = 75) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, "JPEG", quality=quality)
    return np.asarray(Image.open(buf))


def damage(a: np.ndarray) -> np.ndarray:
    """DESIGN.md section 5: JPEG quality 75, resize to 256x256 and back."""
    rgb = np.repeat(a[:, :, None], 3, axis=2) if a.ndim == 2 else a
    h, w = rgb.shape[:2]
    small = cv2.resize(jpeg(rgb), (256, 256), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def random_mask(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """A few ellipses and polygons, some touching the border, some with holes."""
    m = np.zeros((h, w), np.uint8)
    for _ in range(int(rng.integers(1, 5))):
        centre = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        axes = (int(rng.integers(15, w // 3)), int(rng.integers(15, h // 3)))
        cv2.ellipse(m, centre, axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
    pts = rng.integers(0, [w, h], size=(6, 2)).astype(np.int32)
    cv2.fillPoly(m, [cv2.convexHull(pts)], 1)
    if rng.random() < 0.5:
        cv2.circle(m, (int(rng.integers(0, w)), int(rng.integers(0, h))), int(rng.integers(10, 40)), 0, -1)
    return m.astype(bool)


def random_depth(rng: np.random.Generator, w: int, h: int, holes: bool = True) -> np.ndarray:
    """A room-like depth map: a sloping floor and walls, boxes in front, invalid patches (0).

    ``holes=False`` leaves out the invalid patches: resizing an answer blends their black into the
    pixels around them (a round trip with them reads about 0.08 m rmse instead of 0.02 m).
    """
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    d = rng.uniform(2, 4) + rng.uniform(2, 5) * (1 - yy / h) + rng.uniform(-1, 1) * xx / w
    for _ in range(3):
        x0, y0 = int(rng.integers(0, w - 60)), int(rng.integers(0, h - 60))
        d[y0:y0 + int(rng.integers(30, 120)), x0:x0 + int(rng.integers(30, 120))] = rng.uniform(0.8, 2.5)
    d = cv2.GaussianBlur(d, (0, 0), 2)
    if holes:
        d[int(rng.integers(0, h - 30)):][:20, int(rng.integers(0, w - 30)):][:, :25] = 0  # no readings
        d[:, :8] = 0  # the unmeasured border of a Kinect frame
    return np.clip(d, 0, 9.5)


# ---------------------------------------------------------------------------------- segmentation


def test_seg_encode_and_exact_decode():
    m = np.zeros((30, 40), bool)
    m[5:20, 10:30] = True
    target = seg.encode(m)
    assert target.dtype == np.uint8 and set(np.unique(target)) == {0, 255}
    assert (seg.decode(target, (40, 30)) == m).all()
    assert (seg.decode(Image.fromarray(target).resize((80, 60)), (40, 30)) == m).all()


def test_seg_round_trip_after_jpeg_and_256px():
    rng = np.random.default_rng(0)
    metric = seg.SegmentationMetric()
    for i in range(24):
        w, h = SIZES[i % len(SIZES)]
        m = random_mask(rng, w, h)
        metric.add(f"class{i % 5}", seg.decode(damage(seg.encode(m)), (w, h)), m)
    result = metric.compute()
    assert result["mIoU"] >= 97.0 and result["pixel_acc"] >= 99.0, result
    assert result["n"] == 24


def test_seg_reads_dim_tinted_answers_and_blank_ones():
    m = np.zeros((100, 100), bool)
    m[20:70, 30:80] = True
    dim = np.where(m, 150, 40).astype(np.uint8)  # a washed-out model answer
    tinted = np.stack([dim, dim + 10, dim - 20], axis=2)
    assert (seg.decode(tinted, (100, 100)) == m).mean() > 0.99
    noise = np.random.default_rng(0).integers(0, 30, (100, 100)).astype(np.uint8)
    assert not seg.decode(noise, (100, 100)).any()  # black with noise: nothing, not half of the noise
    assert seg.decode(255 - noise, (100, 100)).all()


def test_seg_blank_and_inverted_answers_score_low():
    rng = np.random.default_rng(1)
    blank, inverted = seg.SegmentationMetric(), seg.SegmentationMetric()
    for i in range(8):
        w, h = SIZES[i % len(SIZES)]
        m = random_mask(rng, w, h)
        blank.add("c", seg.decode(np.zeros((h, w), np.uint8), (w, h)), m)
        inverted.add("c", seg.decode(damage(255 - seg.encode(m)), (w, h)), m)
    assert blank.compute()["mIoU"] == 0.0
    assert inverted.compute()["mIoU"] <= 10.0


def test_seg_miou_hand_worked():
    metric = seg.SegmentationMetric()
    # class a, image 1: gt 4 pixels, pred 4 pixels, 2 in common -> I 2, U 6
    gt = np.zeros((4, 4), bool)
    gt[0, :] = True
    pred = np.zeros((4, 4), bool)
    pred[0, :2] = True
    pred[1, :2] = True
    metric.add("a", pred, gt)
    # class a, image 2: gt 2, pred 2, both the same -> I 2, U 2; split total for a: I 4 / U 8 = 0.5
    gt2 = np.zeros((4, 4), bool)
    gt2[3, 2:] = True
    metric.add("a", gt2, gt2)
    # class b: gt 3 pixels, one of them void; pred covers the two valid ones and one more -> I 2, U 3
    gt3 = np.zeros((4, 4), bool)
    gt3[2, :3] = True
    valid = np.ones((4, 4), bool)
    valid[2, 0] = False
    pred3 = np.zeros((4, 4), bool)
    pred3[2, :2] = True  # the void pixel is ignored whatever it says
    pred3[2, 1:4] = True
    metric.add("b", pred3, gt3, valid)
    # class c: never predicted, never present: not in the mean
    metric.add("c", np.zeros((4, 4), bool), np.zeros((4, 4), bool))
    result = metric.compute()
    assert metric.per_class_iou() == pytest.approx({"a": 50.0, "b": 100 * 2 / 3})
    assert result["mIoU"] == pytest.approx((50.0 + 200 / 3) / 2)
    # pixel accuracy: image 1 wrong at 4 pixels (0,2),(0,3),(1,0),(1,1) -> 12/16; image 2 16/16;
    # image 3 wrong at (2,3) of 15 valid -> 14/15; image 4 16/16: (12 + 16 + 14 + 16) / 63
    assert result["pixel_acc"] == pytest.approx(100 * 58 / 63)
    assert result["n"] == 4
    assert seg.SegmentationMetric().compute() == {"mIoU": None, "pixel_acc": None, "n": 0}


def test_seg_add_answer():
    m = np.zeros((60, 80), bool)
    m[10:40, 20:60] = True
    metric = seg.new_metric("ade20k")
    metric.add_answer({"sample": "x_seg_sky", "class": "sky"}, Image.fromarray(seg.encode(m)).resize((256, 256)),
                      {"mask": m, "valid": None})
    assert metric.compute()["mIoU"] > 97.0


# -------------------------------------------------------------------------------- classification


def test_cls_encode_fills_with_the_named_colour():
    target = cls.encode((50, 30), True, "cyan", "red")
    assert target.shape == (30, 50, 3) and (target == (0, 255, 255)).all()
    assert (cls.encode((50, 30), False, "cyan", "red") == (255, 0, 0)).all()


def test_cls_round_trip_every_colour_pair():
    metric = cls.ClassificationMetric()
    names = list(cls.COLORS)
    for i, positive in enumerate(names):
        for negative in names:
            if positive == negative:
                continue
            for present in (True, False):
                w, h = SIZES[i % len(SIZES)]
                answer = damage(cls.encode((w, h), present, positive, negative))
                predicted, score = cls.decode(answer, positive, negative)
                assert predicted == present and (score > 0.9 if present else score < 0.1)
                metric.add(f"{positive}{negative}", "thing", present, *cls.read(answer, positive, negative))
    assert metric.compute() == {"verification_accuracy": 100.0, "n": len(names) * (len(names) - 1) * 2}


def test_cls_off_colour_answers_and_unreadable_ones():
    rng = np.random.default_rng(0)
    off = np.clip(np.array([215, 40, 30]) + rng.normal(0, 12, (64, 64, 3)), 0, 255).astype(np.uint8)
    assert cls.decode(off, "red", "green")[0] is True
    assert cls.read(off, "green", "red")[0] is False
    for blank in (np.zeros((32, 32, 3), np.uint8), np.full((32, 32, 3), 128, np.uint8)):
        predicted, score = cls.read(blank, "red", "green")
        assert predicted is None and score == pytest.approx(0.5)
    # half red, half green: readable, undecided
    half = cls.encode((40, 40), True, "red", "green")
    half[:, 20:] = (0, 255, 0)
    assert cls.decode(half, "red", "green")[1] == pytest.approx(0.5, abs=0.02)
    with pytest.raises(ValueError, match="unknown colour"):
        cls.decode(off, "red", "chartreuse")


def test_cls_blank_and_swapped_answers_score_low():
    blank, swapped = cls.ClassificationMetric(), cls.ClassificationMetric()
    for i in range(20):
        present = i % 2 == 0
        positive, negative = cls.choose_colors(f"img{i}", 0)
        grey = np.full((48, 64, 3), 127, np.uint8)
        blank.add(f"img{i}", "cat", present, *cls.read(grey, positive, negative))
        answer = damage(cls.encode((64, 48), not present, positive, negative))
        swapped.add(f"img{i}", "cat", present, *cls.read(answer, positive, negative))
    assert blank.compute()["verification_accuracy"] == 0.0
    assert swapped.compute()["verification_accuracy"] == 0.0


def test_cls_top1_when_every_class_was_asked_else_verification():
    metric = cls.ClassificationMetric()
    # three images, each asked about all three breeds: argmax of score against the present breed
    scores = {"i1": {"abyssinian": 0.9, "bengal": 0.2, "pug": 0.1},  # truth abyssinian: right
              "i2": {"abyssinian": 0.6, "bengal": 0.7, "pug": 0.1},  # truth abyssinian: wrong
              "i3": {"abyssinian": 0.1, "bengal": 0.1, "pug": 0.8}}  # truth pug: right
    truth = {"i1": "abyssinian", "i2": "abyssinian", "i3": "pug"}
    for image, by_class in scores.items():
        for name, s in by_class.items():
            metric.add(image, name, name == truth[image], s > 0.5, s)
    result = metric.compute()
    assert result == {"accuracy": pytest.approx(200 / 3), "n": 9}
    # verification of the same queries: 8 of 9 answered right (i2 bengal said present wrongly, i2
    # abyssinian said present rightly)
    metric.add("i4", "abyssinian", True, None, 0.5)  # i4 was not asked about all breeds
    result = metric.compute()
    assert set(result) == {"verification_accuracy", "n"}
    assert result["verification_accuracy"] == pytest.approx(100 * 8 / 10)


def test_cls_add_answer_takes_colours_from_the_record_or_the_instruction():
    metric = cls.new_metric("pets")
    answer = cls.encode((32, 32), True, "yellow", "blue")
    metric.add_answer({"stem": "a", "class": "cat", "colors": ["yellow", "blue"]}, answer, True)
    edit = "Show yellow if there is a cat in the picture, otherwise show blue."
    metric.add_answer({"stem": "b", "class": "cat", "edit": edit}, Image.fromarray(answer), False)
    assert metric.compute() == {"verification_accuracy": 50.0, "n": 2}
    with pytest.raises(ValueError, match="no answer colours"):
        metric.add_answer({"stem": "c", "class": "cat", "edit": "Detect the cat."}, answer, True)


# ---------------------------------------------------------------------------------------- depth


def test_depth_encode_values_and_no_data():
    d = np.array([[0.0, 0.01, 1.0, 2.0], [9.99, 10.0, 12.0, np.nan]])
    g = dep.encode(d)
    assert g.dtype == np.uint8
    # floor(m * 25.5) as the released model was taught; no-data pixels take the nearest valid code
    assert g[0, 0] in (g[0, 1], g[1, 0])  # two nearest valid pixels, either may fill it
    assert g[1, 3] in (g[0, 3], g[1, 2])
    assert g[:, 1:3].tolist() == [[1, 25], [255, 255]] and g[0, 3] == 51 and g[1, 0] == 254
    back = dep.decode(g, (4, 2))
    assert back.dtype == np.float32 and back[0, 2] == pytest.approx(25.5 / 25.5)  # bin centre (25 + 0.5) / 25.5
    assert (dep.decode(np.zeros((2, 4), np.uint8), (4, 2)) == 0).all()  # black: no data
    assert (dep.encode(np.zeros((3, 3))) == 0).all()  # nothing to fill from
    rgb = np.repeat(g[:, :, None], 3, axis=2)
    rgb[:, :, 0] = np.clip(rgb[:, :, 0].astype(int) + 6, 0, 255)  # a tint
    rgb[:, :, 2] = np.clip(rgb[:, :, 2].astype(int) - 6, 0, 255)
    assert np.abs(dep.decode(rgb, (4, 2)) - back)[(g > 5) & (g < 250)].max() < 0.01  # the mean of the channels


def test_depth_round_trip_after_jpeg_and_256px():
    rng = np.random.default_rng(0)
    metric = dep.DepthMetric()
    for i in range(8):
        w, h = SIZES[i % len(SIZES)]
        d = random_depth(rng, w, h, holes=False)
        metric.add(dep.decode(damage(dep.encode(d)), (w, h)), d)
    result = metric.compute()
    assert result["rmse"] <= 0.05 and result["delta1"] >= 0.99 and result["abs_rel"] <= 0.02, result


def test_depth_exact_target_with_holes_decodes_to_its_steps():
    rng = np.random.default_rng(2)
    d = random_depth(rng, 640, 480)
    assert (d == 0).mean() > 0.01
    back = dep.decode(dep.encode(d), (640, 480))
    valid = d > 0
    assert (back > 0).all()  # dense: holes are filled with the nearest measured depth
    assert np.abs(back[valid] - d[valid]).max() <= 0.5 / dep.SCALE + 1e-6
    metric = dep.DepthMetric()
    metric.add(back, d)
    assert metric.compute()["rmse"] == pytest.approx(np.sqrt(np.mean((back[valid] - d[valid]) ** 2)))


def test_depth_blank_and_inverted_answers_score_low():
    rng = np.random.default_rng(1)
    blank, inverted = dep.DepthMetric(), dep.DepthMetric()
    for i in range(4):
        w, h = SIZES[i]
        d = random_depth(rng, w, h)
        blank.add(dep.decode(np.zeros((h, w), np.uint8), (w, h)), d)
        inverted.add(dep.decode(255 - dep.encode(d), (w, h)), d)
    assert blank.compute()["delta1"] == 0.0 and blank.compute()["rmse"] > 2.0
    assert inverted.compute()["delta1"] < 0.4 and inverted.compute()["rmse"] > 2.0


def test_depth_metrics_hand_worked():
    gt = np.array([[1.0, 2.0], [4.0, 0.0]])  # one pixel without a reading
    pred = np.array([[1.0, 2.5], [2.0, 7.0]])
    metric = dep.DepthMetric()
    metric.add(pred, gt)
    r = metric.compute()
    # errors 0, 0.5, 2 on the three valid pixels
    assert r["rmse"] == pytest.approx(np.sqrt((0 + 0.25 + 4) / 3))
    assert r["abs_rel"] == pytest.approx((0 + 0.25 + 0.5) / 3)
    assert r["log10"] == pytest.approx((0 + np.log10(1.25) + np.log10(2)) / 3)
    # ratios 1, 1.25, 2: delta1 needs < 1.25 (only the first), delta2 < 1.5625, delta3 < 1.953125
    assert (r["delta1"], r["delta2"], r["delta3"]) == pytest.approx((1 / 3, 2 / 3, 2 / 3))
    assert r["n"] == 1

    # a second image: metrics are per image, then averaged over images; a predicted 0 is clipped
    # to 1 mm and a prediction beyond 10 m to 10 m; ground truth at 10 m or more is not scored
    metric.add(np.array([[0.0, 12.0, 3.0]]), np.array([[0.5, 9.0, 10.0]]))
    r2 = metric.compute()
    rmse2 = np.sqrt(((0.5 - 0.001) ** 2 + 1.0) / 2)
    assert r2["rmse"] == pytest.approx((np.sqrt(4.25 / 3) + rmse2) / 2)
    assert r2["n"] == 2


def test_depth_eigen_crop():
    mask = dep.eigen_crop_mask(480, 640)
    assert mask.sum() == (471 - 45) * (601 - 41)
    assert mask[45, 41] and not mask[44, 41] and not mask[45, 40] and mask[470, 600] and not mask[471, 600]
    small = dep.eigen_crop_mask(240, 320)
    assert small[23, 21] and not small[22, 21] and small.sum() == (236 - 23) * (301 - 21)
    gt = np.full((480, 640), 3.0)
    pred = gt.copy()
    pred[:40] = 9.0  # wrong only outside the crop
    cropped, full, sun = dep.new_metric("nyuv2"), dep.new_metric("coco"), dep.new_metric("sunrgbd")
    for metric in (cropped, full, sun):
        metric.add(pred, gt)
    assert cropped.compute()["rmse"] == 0.0 and full.compute()["rmse"] > 1.0
    assert sun.compute()["rmse"] == 0.0  # the toolbox's fixed crop is the same rows/columns at 640x480
    big = np.full((530, 730), 9.0)  # a SUN RGB-D kv2 frame: the crop is absolute, depths capped at 8 m
    sun = dep.new_metric("sunrgbd")
    sun.add(np.where(np.arange(730) < 700, 9.5, 1.0) * np.ones((530, 1)), big)
    assert sun.compute()["rmse"] == 0.0 and sun.scored_pixels(big).sum() == (471 - 45) * (601 - 41)


def test_depth_add_answer_and_empty():
    d = np.full((40, 60), 2.0, np.float32)
    metric = dep.new_metric("nyuv2")
    metric.add_answer({"sample": "s"}, Image.fromarray(dep.encode(d)).resize((128, 128)), d)
    assert metric.compute()["rmse"] < 0.02
    assert dep.DepthMetric().compute()["rmse"] is None
