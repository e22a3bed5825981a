"""DETR and RT-DETR object detectors: load or build tiny, and predict scored boxes per image.

Preprocessing and box decoding are the checkpoints' own transformers image processors (PIL
backend): DETR resizes the short side to 800 (long side at most 1333) and normalises, keeps every
query with its best non-"no object" class; RT-DETR resizes to 640 x 640 and keeps the top-scoring
(query, class) pairs. No score threshold is applied: COCOeval ranks the detections itself
(at most 100 per image and class), which is how both models are evaluated on COCO.

``facebook/detr-resnet-50`` is loaded at its ``no_timm`` revision, whose ResNet-50 backbone is the
transformers one (the main revision needs timm, which needs torchvision).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image

from baselines.common import HubModel, ModelSource, autocast, load_pretrained
from baselines.detection.class_maps import COCO_CLASSES
from instructcv.cli import UsageError

ALIASES: dict[str, HubModel] = {
    "detr": HubModel("facebook/detr-resnet-50", "DETR R50 (COCO)", revision="no_timm"),
    "rtdetr": HubModel("PekingU/rtdetr_r50vd", "RT-DETR R50vd (COCO)"),
}
FAMILIES = ("detr", "rtdetr")


@dataclass
class Detector:
    model: Any
    processor: Any
    family: str  # detr | rtdetr
    labels: dict[int, str]  # model label id -> name
    device: torch.device = torch.device("cpu")
    dtype: torch.dtype = torch.float32

    def to(self, device: torch.device, dtype: torch.dtype) -> Detector:
        self.model.to(device).eval()
        self.device, self.dtype = device, dtype
        return self

    @torch.no_grad()
    def predict(self, images: list[Image.Image]) -> list[dict[int, np.ndarray]]:
        """For each image: model label id -> (N, 5) float64 boxes x0, y0, x1, y1, score in input pixels."""
        batch = self.processor(images=images, return_tensors="pt")
        inputs = {k: v.to(self.device) for k, v in batch.items() if k in ("pixel_values", "pixel_mask")}
        with autocast(self.device, self.dtype):
            out = self.model(**inputs)
        out.logits, out.pred_boxes = out.logits.float(), out.pred_boxes.float()
        sizes = [(im.height, im.width) for im in images]
        kwargs = {"use_focal_loss": True} if self.family == "rtdetr" else {}
        results = self.processor.post_process_object_detection(out, threshold=0.0, target_sizes=sizes, **kwargs)
        per_image = []
        for res, (h, w) in zip(results, sizes, strict=True):
            boxes = res["boxes"].cpu().double().numpy()
            boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, w)
            boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, h)
            scores = res["scores"].cpu().double().numpy()
            labels = res["labels"].cpu().numpy()
            by_label: dict[int, np.ndarray] = {}
            for lab in np.unique(labels):
                sel = labels == lab
                by_label[int(lab)] = np.concatenate([boxes[sel], scores[sel, None]], axis=1)
            per_image.append(by_label)
        return per_image


def build_tiny(family: str, seed: int = 0) -> tuple[Any, Any]:
    """A random tiny DETR or RT-DETR with the 80 COCO names, and its image processor at 64 px."""
    from transformers import (
        DetrConfig,
        DetrForObjectDetection,
        DetrImageProcessorPil,
        ResNetConfig,
        RTDetrConfig,
        RTDetrForObjectDetection,
        RTDetrImageProcessorPil,
        RTDetrResNetConfig,
    )

    ids = {"id2label": dict(enumerate(COCO_CLASSES)), "label2id": {n: i for i, n in enumerate(COCO_CLASSES)}}
    torch.manual_seed(seed)
    small = dict(embedding_size=8, hidden_sizes=[8, 16, 16, 32], depths=[1, 1, 1, 1], layer_type="basic")
    if family == "detr":
        config = DetrConfig(backbone_config=ResNetConfig(**small, out_features=["stage4"]), d_model=16,
                            encoder_layers=1, decoder_layers=1, encoder_ffn_dim=32, decoder_ffn_dim=32,
                            encoder_attention_heads=2, decoder_attention_heads=2, num_queries=10,
                            num_labels=len(COCO_CLASSES), **ids)
        return DetrForObjectDetection(config), DetrImageProcessorPil(size={"shortest_edge": 64, "longest_edge": 96})
    if family == "rtdetr":
        backbone = RTDetrResNetConfig(**small, out_features=["stage2", "stage3", "stage4"])
        config = RTDetrConfig(backbone_config=backbone, encoder_hidden_dim=16, encoder_in_channels=[16, 16, 32],
                              encoder_ffn_dim=32, encoder_attention_heads=2, d_model=16, decoder_in_channels=[16, 16, 16],
                              decoder_ffn_dim=32, decoder_layers=1, decoder_attention_heads=2, num_queries=10,
                              num_denoising=0, hidden_expansion=0.5, num_labels=len(COCO_CLASSES), **ids)
        return RTDetrForObjectDetection(config), RTDetrImageProcessorPil(size={"height": 64, "width": 64})
    raise ValueError(f"unknown detection family {family!r}; expected one of {', '.join(FAMILIES)}")


def _family_of(model_type: str) -> str:
    if model_type == "detr":
        return "detr"
    if model_type.startswith("rt_detr"):
        return "rtdetr"
    raise ValueError(f"model type {model_type!r} is not DETR or RT-DETR")


def load_detector(source: ModelSource, *, family: str | None = None, seed: int = 0) -> Detector:
    """A ``Detector`` for a hub id / folder, or a tiny random one."""
    if source.kind == "tiny":
        fam = family or source.location
        model, processor = build_tiny(fam, seed)
        return Detector(model, processor, fam, dict(model.config.id2label))
    from transformers import AutoConfig, AutoImageProcessor, AutoModelForObjectDetection

    config = load_pretrained(AutoConfig, source)
    try:
        fam = _family_of(config.model_type)
    except ValueError as e:
        raise UsageError(f"{source.location}: {e}") from None
    model = load_pretrained(AutoModelForObjectDetection, source)
    processor = load_pretrained(AutoImageProcessor, source, backend="pil")
    labels = {int(i): name for i, name in model.config.id2label.items()}
    return Detector(model, processor, fam, labels)
