"""The detection metric: COCO box AP (pycocotools COCOeval) over every decoded box of every query."""

from __future__ import annotations

import contextlib
import io
from typing import Any

import numpy as np

from tasks.box_decoder import decode
from tasks.boxes import as_boxes as _as_boxes
from tasks.imageutil import as_rgb


class DetectionMetric:
    """COCO box AP (pycocotools COCOeval) over every decoded box, with no filtering against the truth.

    Each ``add`` is one (image, class) query; an image queried for several classes contributes
    to each class. Ground-truth boxes flagged as crowd are ``iscrowd`` regions (matching them is
    neither a hit nor a miss). ``compute`` gives ``mAP`` (AP at IoU .50:.95), ``AP50`` and
    ``AP75`` in percent, and ``n`` (the number of queries); values are None with no ground truth.
    """

    def __init__(self) -> None:
        self._images: dict[str, int] = {}
        self._categories: dict[str, int] = {}
        self._gt: list[dict] = []
        self._dt: list[dict] = []
        self.n = 0

    def add(self, image_id: str, class_name: str, pred: np.ndarray, gt: np.ndarray,
            gt_crowd: np.ndarray | None = None) -> None:
        img = self._images.setdefault(str(image_id), len(self._images) + 1)
        cat = self._categories.setdefault(str(class_name), len(self._categories) + 1)
        gt = _as_boxes(gt)
        crowd = np.zeros(len(gt), bool) if gt_crowd is None else np.asarray(gt_crowd, bool).reshape(-1)
        if len(crowd) != len(gt):
            raise ValueError(f"gt_crowd has {len(crowd)} flags for {len(gt)} boxes")
        for box, is_crowd in zip(gt, crowd, strict=True):
            w, h = float(box[2] - box[0]), float(box[3] - box[1])
            self._gt.append({"id": len(self._gt) + 1, "image_id": img, "category_id": cat,
                             "bbox": [float(box[0]), float(box[1]), w, h], "area": w * h,
                             "iscrowd": int(is_crowd)})
        pred = np.asarray(pred, dtype=np.float64).reshape(-1, 5) if np.size(pred) else np.zeros((0, 5))
        for x0, y0, x1, y1, score in pred:
            self._dt.append({"image_id": img, "category_id": cat,
                             "bbox": [float(x0), float(y0), float(x1 - x0), float(y1 - y0)],
                             "score": float(score)})
        self.n += 1

    def add_prediction(self, record: dict, pred: np.ndarray, truth: dict) -> None:
        """Add decoded boxes ``pred`` (N, 5) of query ``record`` against ``truth = {"boxes", "crowd"}``."""
        self.add(record.get("stem", record.get("sample")), record.get("class"), pred, truth.get("boxes"),
                 truth.get("crowd"))

    def add_answer(self, record: dict, answer: Any, truth: dict, image: np.ndarray | None = None) -> None:
        """Decode ``answer`` for ``record`` (a metadata row) and add it against ``truth``.

        ``truth`` is ``{"boxes": (M, 4), "crowd": (M,) or None}`` and may carry ``"size"``
        ``(width, height)`` of the input; otherwise the input ``image`` (when given, it is also
        used to ignore blue already in the photo), then the answer's own size, are used.
        """
        if truth.get("size") is not None:
            size = tuple(truth["size"])
        elif image is not None:
            size = as_rgb(image).shape[1::-1]
        else:
            size = as_rgb(answer).shape[1::-1]
        pred = decode(answer, size, image=image)
        self.add(record.get("stem", record.get("sample")), record.get("class"), pred, truth.get("boxes"),
                 truth.get("crowd"))

    def coco_eval(self):
        """The pycocotools ``COCOeval`` run over everything added (None without ground truth)."""
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval

        if not self._gt:
            return None
        dataset = {
            "images": [{"id": i} for i in self._images.values()],
            "categories": [{"id": c, "name": name} for name, c in self._categories.items()],
            "annotations": self._gt,
        }
        with contextlib.redirect_stdout(io.StringIO()):
            gt = COCO()
            gt.dataset = dataset
            gt.createIndex()
            if self._dt:
                dt = gt.loadRes([dict(d) for d in self._dt])
            else:
                dt = COCO()
                dt.dataset = {"images": dataset["images"], "categories": dataset["categories"],
                              "annotations": []}
                dt.createIndex()
            ev = COCOeval(gt, dt, iouType="bbox")
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
        return ev

    def compute(self) -> dict:
        ev = self.coco_eval()
        if ev is None:
            return {"mAP": None, "AP50": None, "AP75": None, "n": self.n}

        def pct(v: float) -> float | None:
            return None if v < 0 else float(v) * 100.0

        return {"mAP": pct(ev.stats[0]), "AP50": pct(ev.stats[1]), "AP75": pct(ev.stats[2]), "n": self.n}

