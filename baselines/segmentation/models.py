"""SegFormer and Mask2Former semantic segmenters: load or build tiny, and predict a label map per image.

Inference follows the checkpoints' own ADE20K test protocol: resize the short side to 640 (the
training crop) keeping the aspect ratio (long side at most 4x that), normalise with the model's
mean/std, then either run the whole image at once (padded to a multiple of 32; ``whole``) or
average class scores over ``crop`` x ``crop`` windows with stride ``stride`` (``slide``). Scores
are resized back to the original image with bilinear interpolation before the arg-max, so the
label map has the input's size.

SegFormer scores are its logits. Mask2Former's semantic scores are, as in the paper, the sum over
queries of the class probability (null class removed) times the sigmoid mask.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from baselines.common import HubModel, ModelSource, autocast, load_pretrained
from dataset_creation.readers.ade20k import ADE20K_CLASSES
from instructcv.cli import UsageError

ALIASES: dict[str, HubModel] = {
    "segformer": HubModel("nvidia/segformer-b5-finetuned-ade-640-640", "SegFormer-B5 (ADE20K, 640)"),
    "mask2former": HubModel("facebook/mask2former-swin-large-ade-semantic", "Mask2Former Swin-L (ADE20K)"),
}
FAMILIES = ("segformer", "mask2former")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class Segmenter:
    """A loaded model plus the inference protocol; ``predict`` gives model label ids (H, W)."""

    model: Any
    family: str  # segformer | mask2former
    labels: list[str]  # model label id -> name
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    short_side: int = 640
    max_ratio: float = 4.0  # long side at most max_ratio x short_side (mmseg: 2560 x 640)
    crop: int = 640
    stride: int = 426  # 2/3 of the crop, mmseg's sliding-window default
    mode: str = "whole"  # whole | slide
    pad_to: int = 32
    device: torch.device = torch.device("cpu")
    dtype: torch.dtype = torch.float32

    def to(self, device: torch.device, dtype: torch.dtype) -> Segmenter:
        self.model.to(device).eval()
        self.device, self.dtype = device, dtype
        return self

    # ---- pieces -------------------------------------------------------------------------------
    def resized_size(self, size: tuple[int, int]) -> tuple[int, int]:
        """(width, height) after scaling the short side to ``short_side`` (long side capped)."""
        w, h = size
        scale = min(self.short_side / min(w, h), self.short_side * self.max_ratio / max(w, h))
        return max(1, int(round(w * scale))), max(1, int(round(h * scale)))

    def to_tensor(self, image: Image.Image) -> torch.Tensor:
        """Resize and normalise an RGB image -> (1, 3, h, w) float tensor on the device."""
        img = image.resize(self.resized_size(image.size), Image.BILINEAR)
        arr = np.asarray(img, dtype=np.float32) / 255.0
        arr = (arr - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
        return torch.from_numpy(arr.transpose(2, 0, 1).copy())[None].to(self.device)

    @torch.no_grad()
    def scores(self, x: torch.Tensor) -> torch.Tensor:
        """Class scores (1, C, h, w) at the resolution of ``x`` (padded internally as the model needs)."""
        h, w = x.shape[-2:]
        ph, pw = math.ceil(h / self.pad_to) * self.pad_to, math.ceil(w / self.pad_to) * self.pad_to
        x = F.pad(x, (0, pw - w, 0, ph - h))  # zero = the mean colour after normalisation
        with autocast(self.device, self.dtype):
            out = self.model(pixel_values=x)
        if self.family == "segformer":
            s = F.interpolate(out.logits.float(), size=(ph, pw), mode="bilinear", align_corners=False)
        else:
            cls = out.class_queries_logits.float().softmax(-1)[..., :-1]
            masks = F.interpolate(out.masks_queries_logits.float(), size=(ph, pw), mode="bilinear", align_corners=False)
            s = torch.einsum("bqc,bqhw->bchw", cls, masks.sigmoid())
        return s[..., :h, :w]

    def slide_scores(self, x: torch.Tensor) -> torch.Tensor:
        """Average of ``scores`` over overlapping crop x crop windows covering ``x``."""
        h, w = x.shape[-2:]
        if h < self.crop or w < self.crop:  # pad small images up to one window, crop the scores back
            x = F.pad(x, (0, max(0, self.crop - w), 0, max(0, self.crop - h)))
        H, W = x.shape[-2:]
        total = None
        count = torch.zeros((1, 1, H, W), device=x.device)
        ys = _starts(H, self.crop, self.stride)
        xs = _starts(W, self.crop, self.stride)
        for y0 in ys:
            for x0 in xs:
                s = self.scores(x[..., y0:y0 + self.crop, x0:x0 + self.crop])
                if total is None:
                    total = torch.zeros((1, s.shape[1], H, W), device=x.device)
                total[..., y0:y0 + self.crop, x0:x0 + self.crop] += s
                count[..., y0:y0 + self.crop, x0:x0 + self.crop] += 1
        return (total / count)[..., :h, :w]

    # ---- the one call the evaluation loop needs ----------------------------------------------
    def predict(self, image: Image.Image) -> np.ndarray:
        """Model label ids (H, W) int32 at the original size of ``image``."""
        x = self.to_tensor(image)
        s = self.scores(x) if self.mode == "whole" else self.slide_scores(x)
        s = F.interpolate(s, size=(image.height, image.width), mode="bilinear", align_corners=False)
        return s[0].argmax(0).to(torch.int32).cpu().numpy()


def _starts(length: int, crop: int, stride: int) -> list[int]:
    n = max(math.ceil((length - crop) / stride), 0) + 1
    return sorted({min(i * stride, length - crop) for i in range(n)})


def build_tiny(family: str, labels: list[str] | None = None, seed: int = 0) -> Any:
    """A random tiny SegFormer or Mask2Former (Swin backbone) with the ADE20K label names."""
    from transformers import (
        Mask2FormerConfig,
        Mask2FormerForUniversalSegmentation,
        SegformerConfig,
        SegformerForSemanticSegmentation,
        SwinConfig,
    )

    labels = list(labels or ADE20K_CLASSES)
    ids = {"id2label": dict(enumerate(labels)), "label2id": {n: i for i, n in enumerate(labels)}}
    torch.manual_seed(seed)
    if family == "segformer":
        config = SegformerConfig(depths=[1, 1, 1, 1], hidden_sizes=[8, 16, 16, 32], num_attention_heads=[1, 1, 2, 2],
                                 decoder_hidden_size=16, num_labels=len(labels), **ids)
        return SegformerForSemanticSegmentation(config)
    if family == "mask2former":
        backbone = SwinConfig(image_size=64, patch_size=4, embed_dim=16, depths=[1, 1, 1, 1], num_heads=[1, 1, 2, 2],
                              window_size=4, out_features=["stage1", "stage2", "stage3", "stage4"])
        config = Mask2FormerConfig(backbone_config=backbone, feature_size=32, mask_feature_size=32, hidden_dim=32,
                                   encoder_feedforward_dim=32, dim_feedforward=32, encoder_layers=1, decoder_layers=2,
                                   num_attention_heads=2, num_queries=8, num_labels=len(labels), **ids)
        return Mask2FormerForUniversalSegmentation(config)
    raise ValueError(f"unknown segmentation family {family!r}; expected one of {', '.join(FAMILIES)}")


def _family_of(model_type: str) -> str:
    if model_type == "segformer":
        return "segformer"
    if model_type == "mask2former":
        return "mask2former"
    raise ValueError(f"model type {model_type!r} is not a SegFormer or Mask2Former semantic segmenter")


def _mean_std(processor: Any) -> tuple[tuple[float, ...], tuple[float, ...]]:
    mean = [float(v) for v in (getattr(processor, "image_mean", None) or IMAGENET_MEAN)]
    std = [float(v) for v in (getattr(processor, "image_std", None) or IMAGENET_STD)]
    if max(mean) > 1.0:  # given in 0-255 units
        mean, std = [m / 255.0 for m in mean], [s / 255.0 for s in std]
    return tuple(mean), tuple(std)


def load_segmenter(source: ModelSource, *, family: str | None = None, short_side: int | None = None,
                   crop: int | None = None, stride: int | None = None, mode: str = "whole", seed: int = 0) -> Segmenter:
    """A ``Segmenter`` for a hub id / folder (mean, std and size from its image processor) or a tiny model."""
    if source.kind == "tiny":
        fam = family or source.location
        model = build_tiny(fam, seed=seed)
        side = short_side or 64
        return Segmenter(model, fam, [model.config.id2label[i] for i in range(model.config.num_labels)],
                         IMAGENET_MEAN, IMAGENET_STD, short_side=side, crop=crop or side,
                         stride=stride or max(1, (crop or side) * 2 // 3), mode=mode)
    from transformers import (
        AutoConfig,
        AutoImageProcessor,
        AutoModelForSemanticSegmentation,
        AutoModelForUniversalSegmentation,
    )

    config = load_pretrained(AutoConfig, source)
    try:
        fam = _family_of(config.model_type)
    except ValueError as e:
        raise UsageError(f"{source.location}: {e}") from None
    auto = AutoModelForSemanticSegmentation if fam == "segformer" else AutoModelForUniversalSegmentation
    model = load_pretrained(auto, source)
    try:
        processor = load_pretrained(AutoImageProcessor, source, backend="pil")
    except Exception:  # a folder without preprocessor_config.json: ImageNet statistics, 640 px
        processor = None
    mean, std = _mean_std(processor)
    size = dict(getattr(processor, "size", None) or {}) if processor is not None else {}
    side = short_side or (640 if source.location in {a.repo_id for a in ALIASES.values()} else
                          int(size.get("shortest_edge") or size.get("height") or 640))
    window = crop or side
    labels = [config.id2label[i] for i in range(len(config.id2label))]
    return Segmenter(model, fam, labels, mean, std, short_side=side, crop=window,
                     stride=stride or max(1, window * 2 // 3), mode=mode)
