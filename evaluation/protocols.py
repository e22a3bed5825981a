"""One written-down scoring protocol per task and dataset, and the original project's scoring for comparison.

Standard protocol (what metrics.json reports; DESIGN.md section 6):

| task  | dataset       | metric and protocol |
|-------|---------------|---------------------|
| det   | coco, voc     | COCOeval box AP (mAP@.50:.95, AP50, AP75, %) over every decoded box of every query, present and absent classes; crowd (COCO) / difficult (VOC) boxes are ignore regions |
| seg   | ade20k, voc, coco, pets | mIoU (%): per class, intersection and union summed over the split, mean over classes with a non-empty union; ignore pixels (ADE20K label 0, VOC 255, COCO crowd, Pets trimap border) left out; absent-class queries add their predicted pixels to the class's union |
| cls   | every dataset | ``accuracy`` (top-1 over the class list) when every image was asked about every class, else ``verification_accuracy`` (% of queries answered right); an answer in neither colour is wrong |
| depes | nyuv2         | rmse (m), abs_rel, log10, delta1-3 per image, averaged; ground truth from the raw 16-bit millimetres, valid where 1e-3 < depth < 10 m, inside the Eigen crop (rows 45:471, columns 41:601 of 640x480); predictions clipped to [1e-3, 10] |
| depes | sunrgbd       | as Monocular-Depth-Estimation-Toolbox scores SUN RGB-D (``SUNRGBDDataset.pre_eval``): depth from the rotated 1/8 mm PNG, ground truth and prediction capped at 8 m, valid where 1e-3 < depth < 10 m, inside rows 45:471, columns 41:601 of the image as it is (no rescaling) |

``new_metric(task, dataset)`` gives that metric: it is ``tasks.new_metric``, where every protocol of
this table is implemented (SUN RGB-D: ``tasks.depth.SUNRGBD_CAP`` / ``SUNRGBD_CROP``).

``--protocol instructcv`` adds, under keys suffixed ``_instructcv_protocol``, what the original
InstructCV evaluation scripts computed from the same answers (present-class queries only, as they
had no others). These are not standard and are higher; they are reported so that users can see why
the published numbers differ:

- det (``evaluate/Evaluate_AR.py`` + ``cal_bboxes_iou``): every ground-truth box keeps the predicted box
  that overlaps it most if that IoU exceeds 0.2 (a box best for two objects is kept twice) and every
  other predicted box is dropped *before* scoring, all with score 1, then COCOeval. False positives
  away from the objects therefore never count.
- seg (``calc_iou`` and its caller): IoU of each query on all pixels, ``(inter + 1e-6) / (union + 1e-6)``
  (an empty answer to an empty truth scores 1), averaged over the classes of an image, then over images.
- depes (``evaluate_depes.py``): ``compute_errors`` called with prediction and truth swapped, keeping only
  pixels where the integer part of *both* depths in metres is odd (``np.bitwise_and`` of 1 with the
  depths cast to uint8 picks their lowest bit); every other pixel counts as a perfect pixel (error 0,
  ratio 1) in rmse, abs_rel (divided by the prediction) and delta1; no crop, no cap, no validity test.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from typing import Any

import numpy as np

import tasks
from tasks.detection_metric import DetectionMetric

SUFFIX = "_instructcv_protocol"

PROTOCOLS: dict[str, str] = {
    "det": "COCOeval box AP over all decoded boxes of present- and absent-class queries; crowd/difficult boxes ignored",
    "seg": "mIoU from per-class intersections and unions summed over the split; ignore pixels left out",
    "cls": "top-1 accuracy when every class was asked of every image, else verification accuracy",
    "depes": "rmse, abs_rel, log10, delta1-3 per image, averaged, on valid raw ground truth (< 10 m)",
    "depes/nyuv2": "raw 16-bit mm ground truth, 1e-3 < d < 10 m, Eigen crop (45:471, 41:601 at 640x480)",
    "depes/sunrgbd": "toolbox protocol: rotated 1/8 mm PNG, truth and prediction capped at 8 m, "
                     "1e-3 < d < 10 m, crop rows 45:471, columns 41:601",
}  # fmt: skip


def describe(task: str, dataset: str) -> str:
    """The one-line protocol of ``task`` on ``dataset``."""
    return PROTOCOLS.get(f"{task}/{dataset}", PROTOCOLS[task])


# ------------------------------------------------------------------------------------------------
# Standard metrics


def new_metric(task: str, dataset: str, classes: Collection[str] | None = None):
    """The standard metric accumulator of ``task`` on ``dataset`` (the table in the module docstring).

    The protocols live in ``tasks`` (so the baselines score with the very same code); ``classes`` is
    the dataset's class list for cls (top-1 only when every image was asked about all of them).
    """
    return tasks.new_metric(task, dataset, classes=classes)


# ------------------------------------------------------------------------------------------------
# The original project's scoring (--protocol instructcv)


def _iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box of ``a`` (N, 4) with every box of ``b`` (M, 4), xyxy."""
    x0 = np.maximum(a[:, None, 0], b[None, :, 0])
    y0 = np.maximum(a[:, None, 1], b[None, :, 1])
    x1 = np.minimum(a[:, None, 2], b[None, :, 2])
    y1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


def filter_by_truth(pred: np.ndarray, gt: np.ndarray, min_iou: float = 0.2) -> np.ndarray:
    """The original filter: per ground-truth box, the predicted box overlapping it most if IoU > ``min_iou``.

    Returns (K, 5) boxes with score 1; a prediction that is best for two objects appears twice.
    """
    pred = np.asarray(pred, dtype=np.float64).reshape(-1, 5)
    gt = np.asarray(gt, dtype=np.float64).reshape(-1, 4)
    if not len(pred) or not len(gt):
        return np.zeros((0, 5))
    iou = _iou_matrix(gt, pred[:, :4])
    best = iou.argmax(axis=1)
    keep = best[iou[np.arange(len(gt)), best] > min_iou]
    out = pred[keep].copy()
    out[:, 4] = 1.0
    return out


class InstructCVDetection:
    """COCOeval over ground-truth-filtered boxes (the original ``Evaluate_AR.py``)."""

    def __init__(self) -> None:
        self.inner = DetectionMetric()

    def add(self, image_id: str, class_name: str, pred: np.ndarray, gt: np.ndarray, gt_crowd=None) -> None:
        self.inner.add(image_id, class_name, filter_by_truth(pred, gt), gt)

    def add_prediction(self, record: dict, pred: np.ndarray, truth: dict) -> None:
        """Present-class queries only, as the original scripts had no others."""
        if not record.get("absent"):
            self.add(record["stem"], record.get("class"), pred, truth["boxes"])

    def compute(self) -> dict:
        m = self.inner.compute()
        return {f"{k}{SUFFIX}": m[k] for k in ("mAP", "AP50", "AP75")}


class InstructCVSegmentation:
    """Per-query IoU with +1e-6, averaged per image, then over images (the original ``calc_iou``)."""

    def __init__(self) -> None:
        self.per_image: dict[str, list[float]] = defaultdict(list)

    def add(self, image_id: str, pred: np.ndarray, gt: np.ndarray) -> None:
        import cv2

        gt = np.asarray(gt, dtype=bool)
        pred = np.asarray(pred)
        if pred.shape != gt.shape:
            pred = cv2.resize(pred.astype(np.uint8), gt.shape[::-1], interpolation=cv2.INTER_NEAREST)
        pred = pred.astype(bool)
        inter = float(np.count_nonzero(pred & gt))
        union = float(np.count_nonzero(pred | gt))
        self.per_image[str(image_id)].append((inter + 1e-6) / (union + 1e-6))

    def add_prediction(self, record: dict, pred: np.ndarray, truth: dict) -> None:
        """Present-class queries only, as the original scripts had no others."""
        if not record.get("absent"):
            self.add(record["stem"], pred, truth["mask"])

    def compute(self) -> dict:
        if not self.per_image:
            return {f"mIoU{SUFFIX}": None}
        return {f"mIoU{SUFFIX}": 100.0 * float(np.mean([np.mean(v) for v in self.per_image.values()]))}


def original_depth_errors(pred_m: np.ndarray, gt_m: np.ndarray) -> dict[str, float]:
    """The original ``compute_errors`` as it was called: ``compute_errors(pred, gt)`` into ``(gt, pred)``."""
    a = np.asarray(pred_m, dtype=np.float64)  # what the original calls "gt" is the prediction
    b = np.asarray(gt_m, dtype=np.float64)
    flag = (a.astype(np.uint8) & 1) & (b.astype(np.uint8) & 1)
    a_new, b_new = flag * a, flag * b
    blank = (np.abs(a_new) <= 1e-3).astype(np.float64)
    a_nz, b_nz = a_new + blank, b_new + blank
    ratio = np.maximum(a_nz / b_nz, b_nz / a_nz)
    return {
        "rmse": float(np.sqrt(np.mean((a_new - b_new) ** 2))),
        "abs_rel": float(np.mean(np.abs(a_nz - b_nz) / a_nz)),
        "delta1": float(np.mean(ratio < 1.25)),
    }


class InstructCVDepth:
    """The original depth scoring per image (``original_depth_errors``), averaged over images."""

    def __init__(self) -> None:
        self.per_image: list[dict[str, float]] = []

    def add(self, pred_m: np.ndarray, gt_m: np.ndarray) -> None:
        import cv2

        gt = np.asarray(gt_m, dtype=np.float64)
        pred = np.asarray(pred_m, dtype=np.float64)
        if pred.shape != gt.shape:
            pred = cv2.resize(pred, gt.shape[::-1], interpolation=cv2.INTER_LINEAR)
        self.per_image.append(original_depth_errors(pred, gt))

    def add_prediction(self, record: dict, pred: np.ndarray, truth: np.ndarray) -> None:
        self.add(pred, truth)

    def compute(self) -> dict:
        keys = ("rmse", "abs_rel", "delta1")
        if not self.per_image:
            return {f"{k}{SUFFIX}": None for k in keys}
        return {f"{k}{SUFFIX}": float(np.mean([m[k] for m in self.per_image])) for k in keys}


def new_instructcv_metric(task: str):
    """The original project's accumulator for ``task`` (None for cls: it is not reported that way)."""
    factory = {"det": InstructCVDetection, "seg": InstructCVSegmentation, "depes": InstructCVDepth}.get(task)
    return factory() if factory else None


# seg datasets whose standard mIoU includes a background class that our queries never ask about
BACKGROUND_IN_STANDARD = ("voc",)


def protocol_labels(task: str, dataset: str, queries: list[dict[str, Any]],
                    classes: Collection[str] | None = None) -> dict[str, Any]:
    """What metrics.json records about how a (task, dataset) was asked (DESIGN.md section 6).

    ``queries``: which (image, class) pairs were scored, as ``"all"`` (every class of the dataset's
    list asked of every image: the protocol comparable with specialist numbers) or
    ``"present+<k>absent"`` (the classes present plus up to k absent ones per image); for VOC
    segmentation also ``background_included`` (false: the mean is over the object classes only).
    """
    if task not in ("det", "seg", "cls"):
        return {}
    labels: dict[str, Any] = {"queries": query_protocol(queries, classes)}
    if task == "seg" and dataset in BACKGROUND_IN_STANDARD:
        labels["background_included"] = False
    return labels


def query_protocol(queries: list[dict[str, Any]], classes: Collection[str] | None = None) -> str:
    """``"all"`` when every image was asked about every class (of ``classes``, else of those asked), else
    ``"present+<k>absent"`` with k the most absent-class queries of one image (``"present"`` for none)."""
    asked: dict[str, set[str]] = defaultdict(set)
    absent: dict[str, int] = defaultdict(int)
    for q in queries:
        stem = str(q.get("stem", q.get("sample")))
        asked[stem].add(str(q.get("class")))
        absent[stem] += bool(q.get("absent") or q.get("positive") is False)
    pool = set(classes) if classes else set().union(*asked.values()) if asked else set()
    if len(pool) >= 2 and asked and all(s >= pool for s in asked.values()):
        return "all"
    k = max(absent.values(), default=0)
    return f"present+{k}absent" if k else "present"

