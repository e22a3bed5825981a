"""Detection target images and their reading back: round trips, damage, real photos, COCO mAP."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from tasks import detection as det

SIZES = [(640, 480), (480, 640), (500, 375), (427, 640)]


# ------------------------------------------------------------------------------------- helpers


def jpeg(a: np.ndarray, quality: int = 75) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, "JPEG", quality=quality)
    return np.asarray(Image.open(buf).convert("RGB"))


def damage(a: np.ndarray) -> np.ndarray:
    """DESIGN.md section 5: JPEG quality 75, resize to 256x256 and back."""
    h, w = a.shape[:2]
    small = cv2.resize(jpeg(a), (256, 256), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def photo_blue(rng: np.random.Generator) -> tuple[int, int, int]:
    """A blue of the kind photos have: sky, denim, navy, a steel-blue car (never the drawn pure blue)."""
    kind = rng.integers(3)
    if kind == 0:
        return int(rng.integers(70, 150)), int(rng.integers(140, 210)), int(rng.integers(200, 256))
    if kind == 1:
        return int(rng.integers(20, 60)), int(rng.integers(40, 90)), int(rng.integers(100, 160))
    return int(rng.integers(40, 90)), int(rng.integers(90, 140)), int(rng.integers(170, 230))


def background(rng: np.random.Generator, w: int, h: int, pure_blue: bool = False) -> np.ndarray:
    """A smooth colour gradient with filled shapes, a third of them blue (blue things in the photo).

    ``pure_blue``: the blue shapes may be as saturated as the drawn lines, which then cannot be
    seen where they cross them (only the input image tells the two apart).
    """
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([rng.uniform(40, 220) + rng.uniform(-60, 60) * xx / w + rng.uniform(-60, 60) * yy / h
                    for _ in range(3)], axis=2)
    img = np.ascontiguousarray(np.clip(img, 0, 255).astype(np.uint8))
    for _ in range(8):
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        if rng.random() < 0.35:
            colour = (int(rng.integers(0, 80)), int(rng.integers(0, 120)), int(rng.integers(150, 256))) \
                if pure_blue else photo_blue(rng)
        cx, cy = int(rng.integers(0, w)), int(rng.integers(0, h))
        if rng.random() < 0.5:
            cv2.circle(img, (cx, cy), int(rng.integers(10, 80)), colour, -1)
        else:
            cv2.rectangle(img, (cx, cy), (cx + int(rng.integers(10, 120)), cy + int(rng.integers(10, 120))), colour, -1)
    return img


def scene_boxes(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """1-5 random boxes plus one special case: a nested box, a touching neighbour or a border box."""
    boxes = []
    for _ in range(int(rng.integers(1, 6))):
        bw, bh = rng.uniform(24, w * 0.6), rng.uniform(24, h * 0.6)
        x0, y0 = rng.uniform(0, w - bw), rng.uniform(0, h - bh)
        boxes.append([x0, y0, x0 + bw, y0 + bh])
    b = boxes[0]
    kind = rng.integers(4)
    if kind == 0 and b[2] - b[0] > 60 and b[3] - b[1] > 60:  # nested
        m = rng.uniform(10, 25)
        boxes.append([b[0] + m, b[1] + m, b[2] - m, b[3] - m])
    elif kind == 1 and b[2] + 120 < w:  # touching on the right
        boxes.append([b[2], b[1] + rng.uniform(-20, 20), b[2] + rng.uniform(30, 120), b[3] + rng.uniform(-20, 20)])
    elif kind == 2:  # on the image border
        boxes.append([0, rng.uniform(0, h / 2), rng.uniform(40, w / 2), h])
    out = np.array(boxes)
    out[:, [0, 2]] = out[:, [0, 2]].clip(0, w)
    out[:, [1, 3]] = out[:, [1, 3]].clip(0, h)
    return np.round(out)


def make_scenes(n: int, seed: int, pure_blue: bool = False) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        w, h = SIZES[i % len(SIZES)]
        out.append((background(rng, w, h, pure_blue), scene_boxes(rng, w, h)))
    return out


@pytest.fixture(scope="module")
def scenes() -> list[tuple[np.ndarray, np.ndarray]]:
    return make_scenes(40, seed=7)


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    x0 = np.maximum(a[:, None, 0], b[None, :, 0])
    y0 = np.maximum(a[:, None, 1], b[None, :, 1])
    x1 = np.minimum(a[:, None, 2], b[None, :, 2])
    y1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = (x1 - x0).clip(0) * (y1 - y0).clip(0)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / (area_a[:, None] + area_b[None] - inter)


# --------------------------------------------------------------------------------------- encode


def test_line_width_is_the_released_models_4px():
    for w, h in [(640, 480), (480, 640), (256, 256), (1280, 960), (100, 80)]:
        assert det.line_width(w, h) == det.LINE_WIDTH == 4


def pil_rectangles(img, boxes, width: int = 4) -> np.ndarray:
    """The original builder's drawing, written independently: PIL rectangle outline, corners as given."""
    from PIL import ImageDraw

    canvas = Image.fromarray(np.asarray(img)).convert("RGB")
    draw = ImageDraw.Draw(canvas)
    for b in np.asarray(boxes, float).reshape(-1, 4):
        draw.rectangle([float(v) for v in b], outline=(0, 0, 255), width=width)
    return np.asarray(canvas)


def test_encode_draws_the_original_pil_frame():
    img = np.full((100, 120, 3), 200, np.uint8)
    out = det.encode(img, [[10.7, 20.2, 50.9, 60.5]])
    blue = np.all(out == det.BLUE, axis=2)
    # corners truncated to (10, 20) and (50, 60), both included; 4 px inwards
    assert blue[20, 10] and blue[60, 50] and blue[20, 50] and blue[60, 10]
    assert not blue[19, 10] and not blue[20, 9] and not blue[61, 50] and not blue[60, 51]
    assert blue[40, 10:14].all() and not blue[40, 14] and not blue[40, 30]
    assert blue.sum() == 41 * 41 - 33 * 33
    assert (img == 200).all() and (out[~blue] == 200).all()
    assert np.array_equal(out, pil_rectangles(img, [[10.7, 20.2, 50.9, 60.5]]))
    thick = det.encode(img, [[10, 20, 50, 60]], stroke=6)
    assert np.array_equal(thick, pil_rectangles(img, [[10, 20, 50, 60]], width=6))


def test_encode_clips_boxes_and_accepts_pil_and_empty():
    img = Image.new("RGB", (50, 40), (10, 200, 10))
    out = det.encode(img, np.array([[-10, -5, 20, 30]]))
    assert out.shape == (40, 50, 3)
    # corners as given, like PIL: the frame's left and top lines lie outside the picture (the writer
    # clips boxes to the image before drawing, which puts them on the border)
    assert not np.all(out[0, 0] == det.BLUE) and np.all(out[30, 20] == det.BLUE) and not np.all(out[31, 20] == det.BLUE)
    assert np.all(det.encode(img, [[0, 0, 20, 30]])[0, 0] == det.BLUE)
    assert (det.encode(img, []) == np.asarray(img)).all()


# --------------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("with_image", [False, True])
def test_round_trip_after_jpeg_and_256px_gives_the_boxes_back(scenes, with_image):
    metric = det.DetectionMetric()
    for i, (img, boxes) in enumerate(scenes + make_scenes(20, seed=8, pure_blue=with_image)):
        answer = damage(det.encode(img, boxes))
        h, w = img.shape[:2]
        metric.add(f"im{i}", "thing", det.decode(answer, (w, h), image=img if with_image else None), boxes)
    result = metric.compute()
    assert result["n"] == len(scenes) + 20
    assert result["mAP"] >= 90.0, result
    assert result["AP50"] >= 98.0, result


def test_round_trip_edges_are_placed_to_a_pixel(scenes):
    errors = []
    for img, boxes in scenes[:20]:
        h, w = img.shape[:2]
        pred = det.decode(damage(det.encode(img, boxes)), (w, h))
        if len(pred) == 0:
            continue
        match = iou(boxes, pred[:, :4])
        for g, j in enumerate(match.argmax(1)):
            if match[g, j] > 0.8:
                errors.append(np.abs(pred[j, :4] - boxes[g]))
    errors = np.concatenate(errors)
    assert np.median(errors) <= 0.75
    assert np.percentile(errors, 90) <= 2.0


def test_answer_of_another_size_gives_input_coordinates():
    rng = np.random.default_rng(1)
    img = background(rng, 640, 480)
    boxes = np.array([[100, 80, 300, 260], [350, 200, 600, 450]], float)
    answer = cv2.resize(det.encode(img, boxes), (512, 512), interpolation=cv2.INTER_AREA)
    pred = det.decode(Image.fromarray(answer), (640, 480))
    assert len(pred) == 2
    assert iou(boxes, pred[:, :4]).max(1).min() > 0.95
    assert np.all(pred[:-1, 4] >= pred[1:, 4])  # best first
    assert np.all((pred[:, 4] > 0) & (pred[:, 4] <= 1))


def _previous_model_like_width(w: int, h: int) -> int:
    """The lines this test drew before the 4 px stroke: one pixel thinner than 1/128 of the long side."""
    return max(2, int(round(max(w, h) / 128.0))) - 1


@pytest.mark.parametrize(("width_of", "min_ap50", "min_map"), [
    (_previous_model_like_width, 90.0, 60.0),  # the original case and bounds, kept as they were
    # 3 px lines at 640 px are 1.2 px at 256 px (the released model's 4 px stroke, one thinner): measured AP50 88.0, mAP 83.5
    (lambda w, h: det.line_width(w, h) - 1, 85.0, 75.0),
], ids=["previous-lines", "released-stroke-minus-1"])
def test_off_colour_thin_model_like_lines_are_read(width_of, min_ap50, min_map):
    """Lines drawn a little off blue, thinner, with noise, saved as JPEG at 256 px (like a model's answer)."""
    rng = np.random.default_rng(3)
    metric = det.DetectionMetric()
    for i in range(12):
        w, h = SIZES[i % len(SIZES)]
        img, boxes = background(rng, w, h), scene_boxes(rng, w, h)
        answer = img.copy()
        lw = width_of(w, h)
        for x0, y0, x1, y1 in boxes.astype(int):
            colour = (int(rng.integers(0, 50)), int(rng.integers(0, 60)), int(rng.integers(200, 245)))
            cv2.rectangle(answer, (x0 + lw // 2, y0 + lw // 2), (x1 - 1 - lw // 2, y1 - 1 - lw // 2), colour, lw)
        noisy = np.clip(answer + rng.normal(0, 6, answer.shape), 0, 255).astype(np.uint8)
        small = jpeg(cv2.resize(noisy, (256, 256), interpolation=cv2.INTER_AREA))
        metric.add(str(i), "thing", det.decode(cv2.resize(small, (w, h)), (w, h)), boxes)
    result = metric.compute()
    assert result["AP50"] >= min_ap50, result
    assert result["mAP"] >= min_map, result


def test_nested_touching_and_overlapping_boxes_are_told_apart():
    img = np.full((480, 640, 3), 235, np.uint8)
    boxes = np.array([
        [40, 40, 300, 300], [80, 80, 200, 220],  # nested
        [300, 60, 420, 200], [420, 60, 560, 230],  # touching the first and each other
        [100, 330, 330, 460], [220, 300, 440, 420],  # overlapping (their overlap is not a box)
    ], float)
    pred = det.decode(damage(det.encode(img, boxes)), (640, 480))
    # every box is found, and found before anything else (what AP rewards); lines of two boxes
    # can also frame a third rectangle, which may come after them at a lower score
    top = pred[: len(boxes), :4]
    assert iou(boxes, top).max(1).min() > 0.9, pred
    assert iou(top, boxes).max(1).min() > 0.9, pred


def test_box_cut_by_the_image_border_is_clipped_not_lost():
    img = np.full((300, 400, 3), 220, np.uint8)
    answer = img.copy()
    # a model drew this box partly outside the picture: no right edge, no bottom edge
    cv2.rectangle(answer, (250, 150), (460, 360), det.BLUE, 4)
    cv2.rectangle(answer, (60, 60), (160, 140), det.BLUE, 4)
    pred = det.decode(damage(answer), (400, 300))
    expected = np.array([[248, 148, 400, 300], [58, 58, 162, 142]], float)
    assert len(pred) == 2
    assert iou(expected, pred[:, :4]).max(1).min() > 0.9


def test_blank_inverted_and_shifted_answers_score_low(scenes):
    blank, inverted, shifted = det.DetectionMetric(), det.DetectionMetric(), det.DetectionMetric()
    for i, (img, boxes) in enumerate(scenes[:20]):
        h, w = img.shape[:2]
        blank.add(str(i), "thing", det.decode(damage(img), (w, h)), boxes)
        inverted.add(str(i), "thing", det.decode(255 - damage(det.encode(img, boxes)), (w, h)), boxes)
        moved = boxes + np.array([w, h, w, h]) * 0.25
        shifted.add(str(i), "thing", det.decode(damage(det.encode(img, moved)), (w, h)), boxes)
    assert blank.compute()["mAP"] == 0.0
    assert inverted.compute()["mAP"] <= 5.0
    assert shifted.compute()["mAP"] <= 15.0


def test_decode_is_fast_enough_to_run_often():
    """Functional smoke check only: the timing target is shown by benchmarks/bench_decode.py."""
    img = np.zeros((2000, 3000, 3), np.uint8)
    pred = det.decode(det.encode(img, [[100, 100, 900, 700]]), (3000, 2000))
    assert len(pred) == 1 and iou(np.array([[100, 100, 900, 700.0]]), pred[:, :4])[0, 0] > 0.98


# ------------------------------------------------------------------------------------- metric


def _pycocotools_directly(gt: dict, results: list[dict]) -> np.ndarray:
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = gt
        coco.createIndex()
        ev = COCOeval(coco, coco.loadRes(results), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev.stats


def test_metric_equals_pycocotools_run_directly():
    metric = det.DetectionMetric()
    # image a: two dogs (one found well, one badly) and a crowd region of dogs; a cat not found
    metric.add("a", "dog", np.array([[10, 10, 50, 60, 0.9], [100, 100, 140, 170, 0.6], [300, 300, 340, 340, 0.8]]),
               np.array([[12, 10, 50, 62], [95, 110, 150, 160], [290, 290, 360, 360]]), np.array([0, 0, 1], bool))
    metric.add("a", "cat", np.zeros((0, 5)), np.array([[200, 20, 260, 90]]))
    # image b: a dog where there is none (a false positive counts), no prediction for the cat query
    metric.add("b", "dog", np.array([[5, 5, 25, 25, 0.95]]), np.zeros((0, 4)))
    metric.add("b", "cat", np.array([[30, 30, 90, 80, 0.7]]), np.array([[32, 28, 88, 82]]))
    ours = metric.compute()

    gt = {
        "images": [{"id": 1}, {"id": 2}],
        "categories": [{"id": 1, "name": "dog"}, {"id": 2, "name": "cat"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [12, 10, 38, 52], "area": 38 * 52, "iscrowd": 0},
            {"id": 2, "image_id": 1, "category_id": 1, "bbox": [95, 110, 55, 50], "area": 55 * 50, "iscrowd": 0},
            {"id": 3, "image_id": 1, "category_id": 1, "bbox": [290, 290, 70, 70], "area": 70 * 70, "iscrowd": 1},
            {"id": 4, "image_id": 1, "category_id": 2, "bbox": [200, 20, 60, 70], "area": 60 * 70, "iscrowd": 0},
            {"id": 5, "image_id": 2, "category_id": 2, "bbox": [32, 28, 56, 54], "area": 56 * 54, "iscrowd": 0},
        ],
    }
    results = [
        {"image_id": 1, "category_id": 1, "bbox": [10, 10, 40, 50], "score": 0.9},
        {"image_id": 1, "category_id": 1, "bbox": [100, 100, 40, 70], "score": 0.6},
        {"image_id": 1, "category_id": 1, "bbox": [300, 300, 40, 40], "score": 0.8},
        {"image_id": 2, "category_id": 1, "bbox": [5, 5, 20, 20], "score": 0.95},
        {"image_id": 2, "category_id": 2, "bbox": [30, 30, 60, 50], "score": 0.7},
    ]
    stats = _pycocotools_directly(gt, results)
    assert ours["mAP"] == pytest.approx(100 * stats[0])
    assert ours["AP50"] == pytest.approx(100 * stats[1])
    assert ours["AP75"] == pytest.approx(100 * stats[2])
    assert ours["n"] == 4
    assert 0 < ours["mAP"] < 100


def test_metric_perfect_empty_and_undefined():
    metric = det.DetectionMetric()
    metric.add("a", "dog", np.array([[10, 10, 50, 60, 1.0]]), np.array([[10, 10, 50, 60]]))
    assert metric.compute() == pytest.approx({"mAP": 100.0, "AP50": 100.0, "AP75": 100.0, "n": 1})
    metric.add("b", "dog", np.zeros((0, 5)), np.array([[10, 10, 50, 60]]))  # missed: recall halves
    assert metric.compute()["AP50"] == pytest.approx(50.0, abs=1.0)
    assert det.DetectionMetric().compute() == {"mAP": None, "AP50": None, "AP75": None, "n": 0}
    assert isinstance(det.new_metric("coco"), det.DetectionMetric)


def test_add_answer_reads_record_truth_and_image():
    img = np.full((120, 160, 3), 128, np.uint8)
    boxes = np.array([[20, 20, 90, 100]], float)
    answer = det.encode(img, boxes)
    record = {"sample": "s_det_dog", "stem": "s", "task": "det", "class": "dog"}
    metric = det.new_metric("coco")
    metric.add_answer(record, Image.fromarray(answer), {"boxes": boxes, "crowd": None}, image=img)
    metric.add_answer({**record, "stem": "t"}, answer, {"boxes": boxes, "crowd": [False], "size": (160, 120)})
    assert metric.compute()["AP50"] == 100.0


# ------------------------------------------------------------------------------- real photos


def _real_photos(root: Path) -> list[Path]:
    skip = ("annotations", "Segmentation", "sync_depth", "trimaps")
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in (".jpg", ".png")
                  and not any(s in str(p) for s in skip))


def coco_box_queries(root: Path):
    """(image id, class name, RGB image, xyxy boxes, crowd flags) per class of every val2017 image of a COCO folder."""
    data = json.loads((root / "annotations" / "instances_val2017.json").read_text())
    names = {c["id"]: c["name"] for c in data["categories"]}
    for info in data["images"]:
        img = np.asarray(Image.open(root / "val2017" / info["file_name"]).convert("RGB"))
        anns = [a for a in data["annotations"] if a["image_id"] == info["id"]]
        for cat in sorted({a["category_id"] for a in anns}):
            sel = [a for a in anns if a["category_id"] == cat]
            boxes = np.array([[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]]
                              for a in sel])
            crowd = np.array([a["iscrowd"] for a in sel], bool)
            yield str(info["id"]), names[cat], img, boxes, crowd


def test_boxes_drawn_on_real_coco_photos_decode_back(realdata):
    root = realdata / "coco"
    plain, with_image = det.DetectionMetric(), det.DetectionMetric()
    big_found, big = 0, 0
    for image_id, name, img, boxes, crowd in coco_box_queries(root):
        h, w = img.shape[:2]
        answer = damage(det.encode(img, boxes[~crowd]))  # crowd regions are not drawn
        pred = det.decode(answer, (w, h))
        plain.add(image_id, name, pred, boxes, crowd)
        pred_img = det.decode(answer, (w, h), image=img)
        with_image.add(image_id, name, pred_img, boxes, crowd)
        sizeable = ~crowd & (np.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]) >= 40)
        if sizeable.any() and len(pred_img):
            big_found += int((iou(boxes[sizeable], pred_img[:, :4]).max(1) > 0.8).sum())
        big += int(sizeable.sum())
    # small and crowded COCO boxes (bottles 8 px wide, a queue of people) merge into blue slabs
    assert plain.compute()["AP50"] >= 85.0, plain.compute()
    assert with_image.compute()["AP50"] >= 90.0, with_image.compute()
    assert with_image.compute()["mAP"] >= 80.0, with_image.compute()
    assert big >= 5 and big_found == big


def test_blue_things_in_real_photos_are_not_boxes(realdata):
    photos = _real_photos(realdata)
    assert len(photos) >= 20
    found = {}
    for path in photos:
        img = np.asarray(Image.open(path).convert("RGB"))
        h, w = img.shape[:2]
        for name, answer in (("as is", img), ("damaged", damage(img))):
            for image in (None, img):
                pred = det.decode(answer, (w, h), image=image)
                if len(pred):
                    found[f"{path.name} {name} {'with' if image is not None else 'without'} image"] = pred
    assert not found, found


def test_round_trip_on_the_synthetic_coco_dataset(tmp_path):
    """dataset_creation/synthetic.py's COCO layout (blue animals and backdrops among the shapes)."""
    from dataset_creation.synthetic import write_coco

    write_coco(tmp_path / "coco", num_train=0, num_eval=12, size=(640, 480), seed=0)
    root = tmp_path / "coco"
    plain, with_image = det.DetectionMetric(), det.DetectionMetric()
    for image_id, name, img, boxes, crowd in coco_box_queries(root):
        h, w = img.shape[:2]
        answer = damage(det.encode(img, boxes[~crowd]))
        plain.add(image_id, name, det.decode(answer, (w, h)), boxes, crowd)
        with_image.add(image_id, name, det.decode(answer, (w, h), image=img), boxes, crowd)
    assert with_image.n >= 15
    assert with_image.compute()["mAP"] >= 90.0 and with_image.compute()["AP50"] >= 98.0, with_image.compute()
    # without the input, a box drawn over a pure blue backdrop only shows where it crosses objects
    assert plain.compute()["mAP"] >= 85.0 and plain.compute()["AP50"] >= 90.0, plain.compute()


def test_answers_are_read_at_the_stroke_their_record_names():
    """The demo's 8 px boxes at 128 px, answered at 64 px (JPEG): read at the record's line_width they score
    clearly better than at the released 4 px the decoder assumes otherwise (measured mAP 74.2 vs 60.6)."""
    scores = {}
    for name, record in (("recorded", {"line_width": 8}), ("default", {})):
        rng = np.random.default_rng(5)
        metric = det.DetectionMetric()
        for i in range(30):
            w, h = 128, 96
            img = background(rng, w, h)
            sizes = rng.uniform([30, 30], [70, 60], (int(rng.integers(1, 4)), 2))
            corners = rng.uniform(0, 1, sizes.shape) * ([w, h] - sizes)
            boxes = np.round(np.concatenate([corners, corners + sizes], 1))
            small = jpeg(cv2.resize(det.encode(img, boxes, stroke=8), (64, 48), interpolation=cv2.INTER_AREA))
            metric.add(str(i), "thing", det.TASK.read_answer(small, record, (w, h), image=img), boxes)
        scores[name] = metric.compute()["mAP"]
    assert scores["recorded"] >= 70.0, scores
    assert scores["recorded"] >= scores["default"] + 8.0, scores
