"""Decode speed: milliseconds per 640x480 answer for each task's decoder, on one core.

Answers are the encoded targets of generated scenes after JPEG quality 75 and a resize to 256x256
and back (DESIGN.md section 5): detection boxes on shape scenes and on the real photos in
../shared/realdata when present, masks, solid colours and depth maps. Each decoder runs on every
answer several times and the median per-image time is printed, with and without the input image
for detection. The real-data photos are resized to 640x480.

Target: detection decode <= 20 ms per 640x480 image on one core. (The original project's box
extraction takes about 1.7 s per 640x427 image on the same machine.)

Then the dialect check: box mAP of perfect answers on the real COCO queries of ../shared/realdata
(every class of every image; JPEG quality 90, native size), drawn the released model's way
(``tasks.detection.encode``: PIL 4 px rectangles, corners as given, crowd boxes drawn) and this
project's previous way (round(long side / 128) px inside the box, crowd boxes not drawn), both
decoded with the input image, as evaluate.py does.

Example:
  .venv/bin/python benchmarks/bench_decode.py            # about 20 s
  .venv/bin/python benchmarks/bench_decode.py --repeat 10 --images 40
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from dataset_creation.readers import coco as coco_reader  # noqa: E402
from dataset_creation.readers.base import Sample  # noqa: E402
from tasks import classification, depth, detection, segmentation  # noqa: E402

W, H = 640, 480
TARGET_DET_MS = 20.0


def damage(a: np.ndarray) -> np.ndarray:
    rgb = np.repeat(a[:, :, None], 3, axis=2) if a.ndim == 2 else a
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=75)
    small = cv2.resize(np.asarray(Image.open(buf).convert("RGB")), (256, 256), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (W, H), interpolation=cv2.INTER_LINEAR)


def shapes(rng: np.random.Generator) -> np.ndarray:
    img = np.full((H, W, 3), rng.integers(60, 200, 3), np.uint8)
    for _ in range(10):
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        cx, cy = int(rng.integers(0, W)), int(rng.integers(0, H))
        cv2.circle(img, (cx, cy), int(rng.integers(10, 90)), colour, -1)
    return img


def boxes(rng: np.random.Generator) -> np.ndarray:
    out = []
    for _ in range(int(rng.integers(1, 7))):
        bw, bh = rng.uniform(30, W * 0.5), rng.uniform(30, H * 0.5)
        x0, y0 = rng.uniform(0, W - bw), rng.uniform(0, H - bh)
        out.append([x0, y0, x0 + bw, y0 + bh])
    return np.round(np.array(out))


def photos(limit: int) -> list[np.ndarray]:
    root = REPO.parent / "shared" / "realdata"
    if not root.is_dir():
        return []
    paths = sorted(p for p in root.rglob("*.jpg") if "annotations" not in str(p))[:limit]
    out = []
    for p in paths:
        try:
            out.append(cv2.resize(np.asarray(Image.open(p).convert("RGB")), (W, H), interpolation=cv2.INTER_AREA))
        except OSError:
            continue
    return out


def previous_stroke(image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """This project's drawing before it spoke the released model's dialect (for comparison only)."""
    out = image.copy()
    height, width = out.shape[:2]
    lw = max(2, int(round(max(width, height) / 128.0)))
    for x0, y0, x1, y1 in np.rint(boxes).astype(np.int64):
        out[y0:min(y0 + lw, y1), x0:x1] = detection.BLUE
        out[max(y1 - lw, y0):y1, x0:x1] = detection.BLUE
        out[y0:y1, x0:min(x0 + lw, x1)] = detection.BLUE
        out[y0:y1, max(x1 - lw, x0):x1] = detection.BLUE
    return out


def coco_queries(root: Path):
    """(image id, class, RGB image, xyxy boxes, crowd flags) of every det sample the COCO reader yields."""
    for sample in coco_reader.iter_samples(root, "eval", ["det"]):
        if isinstance(sample, Sample):
            img = np.asarray(Image.open(sample.image).convert("RGB"))
            yield sample.stem, sample.class_name, img, np.asarray(sample.boxes, float), np.asarray(sample.crowd, bool)


def dialect_map(root: Path) -> dict[str, dict]:
    """COCO box AP of perfect answers (JPEG q90) drawn the original way and the previous way."""
    out = {}
    for name, draw in (("original (released model)", lambda img, b, c: detection.encode(img, b)),
                       ("previous project stroke", lambda img, b, c: previous_stroke(img, b[~c]))):
        metric = detection.DetectionMetric()
        for image_id, cls, img, b, crowd in coco_queries(root):
            h, w = img.shape[:2]
            buf = io.BytesIO()
            Image.fromarray(draw(img, b, crowd)).save(buf, "JPEG", quality=90)
            answer = np.asarray(Image.open(buf).convert("RGB"))
            metric.add(image_id, cls, detection.decode(answer, (w, h), image=img), b, crowd)
        out[name] = metric.compute()
    return out


def median_ms(fn: Callable[[object], object], items: list, repeat: int) -> float:
    per_run = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for item in items:
            fn(item)
        per_run.append((time.perf_counter() - t0) / len(items) * 1000.0)
    return statistics.median(per_run)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=20, help="answers per decoder (default 20)")
    parser.add_argument("--repeat", type=int, default=5, help="timed passes over them; the median is shown")
    parser.add_argument("--threads", type=int, default=1, help="OpenCV threads (default 1: one core)")
    args = parser.parse_args()
    cv2.setNumThreads(args.threads)
    rng = np.random.default_rng(0)

    scenes = [shapes(rng) for _ in range(args.images)]
    real = photos(args.images)
    det_answers = [(damage(detection.encode(img, boxes(rng))), img) for img in scenes + real]
    masks = []
    for _ in range(args.images):
        m = np.zeros((H, W), np.uint8)
        cv2.ellipse(m, (int(rng.integers(100, 540)), int(rng.integers(100, 380))), (120, 80), 30, 0, 360, 1, -1)
        masks.append(damage(segmentation.encode(m > 0)))
    fills = [damage(classification.encode((W, H), bool(i % 2), "red", "green")) for i in range(args.images)]
    yy = np.mgrid[0:H, 0:W][0]
    depths = [damage(depth.encode(1.0 + 8.0 * yy / H + rng.uniform(0, 1))) for _ in range(args.images)]

    rows = [
        ("det (no input image)", median_ms(lambda a: detection.decode(a[0], (W, H)), det_answers, args.repeat)),
        ("det (with input image)", median_ms(lambda a: detection.decode(a[0], (W, H), image=a[1]), det_answers,
                                             args.repeat)),
        ("seg", median_ms(lambda a: segmentation.decode(a, (W, H)), masks, args.repeat)),
        ("cls", median_ms(lambda a: classification.decode(a, "red", "green"), fills, args.repeat)),
        ("depes", median_ms(lambda a: depth.decode(a, (W, H)), depths, args.repeat)),
    ]
    print(f"decode, {W}x{H} answers after JPEG 75 + 256 px, {args.threads} OpenCV thread(s), "
          f"{len(det_answers)} det answers ({len(real)} on real photos), median of {args.repeat} passes")
    for name, ms in rows:
        print(f"  {name:<24} {ms:7.2f} ms/image")
    det_ms = rows[0][1]
    verdict = "meets" if det_ms <= TARGET_DET_MS else "MISSES"
    print(f"det decode {det_ms:.1f} ms/image {verdict} the {TARGET_DET_MS:.0f} ms target")
    coco = REPO.parent / "shared" / "realdata" / "coco"
    if coco.is_dir():
        print("perfect answers on the real COCO queries (JPEG q90), decoded with the input image:")
        for name, m in dialect_map(coco).items():
            print(f"  {name:<26} mAP {m['mAP']:5.1f}  AP50 {m['AP50']:5.1f}  AP75 {m['AP75']:5.1f}  ({m['n']} queries)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
