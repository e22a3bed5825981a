"""Monocular depth models (DPT, GLPN, Depth Anything): load or build tiny, predict one map per image.

Each model's own image processor (PIL backend) prepares the input; the prediction is resized back
to the input's size with bilinear interpolation. What the map means depends on the model:

- ``metric``: metres (GLPN trained on NYUv2, Depth Anything V2 Metric-Indoor): scored directly.
- ``disparity``: relative inverse depth up to an unknown scale (and shift), as MiDaS/DPT-large and
  the relative Depth Anything predict. It is turned into depth by ``align_to_ground_truth``
  (invert, then scale each image so its median matches the ground truth's median), and the result
  file says so: such numbers use the ground truth's scale and are not comparable to metric ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from baselines.common import HubModel, ModelSource, autocast, load_pretrained
from instructcv.cli import UsageError

ALIASES: dict[str, HubModel] = {
    "dpt": HubModel("Intel/dpt-large", "DPT-Large (MiDaS 3.0, relative)"),
    "dpt-hybrid": HubModel("Intel/dpt-hybrid-midas", "DPT-Hybrid (MiDaS 3.0, relative)"),
    "glpn": HubModel("vinvino02/glpn-nyu", "GLPN (NYUv2)"),
    "depth-anything": HubModel("depth-anything/Depth-Anything-V2-Metric-Indoor-Small-hf",
                               "Depth Anything V2-S (metric, indoor)"),
    "depth-anything-relative": HubModel("depth-anything/Depth-Anything-V2-Small-hf", "Depth Anything V2-S (relative)"),
}
FAMILY_OF_ALIAS = {"dpt": "dpt", "dpt-hybrid": "dpt", "glpn": "glpn", "depth-anything": "depth-anything",
                   "depth-anything-relative": "depth-anything"}
OUTPUTS = ("metric", "disparity")


@dataclass
class DepthEstimator:
    model: Any
    processor: Any
    family: str  # dpt | glpn | depth-anything
    output: str  # metric | disparity
    device: torch.device = torch.device("cpu")
    dtype: torch.dtype = torch.float32

    def to(self, device: torch.device, dtype: torch.dtype) -> DepthEstimator:
        self.model.to(device).eval()
        self.device, self.dtype = device, dtype
        return self

    @torch.no_grad()
    def predict(self, image: Image.Image) -> np.ndarray:
        """float32 (H, W) at the input's size: metres, or relative disparity (see ``output``)."""
        batch = self.processor(images=[image], return_tensors="pt")
        with autocast(self.device, self.dtype):
            out = self.model(pixel_values=batch["pixel_values"].to(self.device))
        depth = out.predicted_depth.float()
        if depth.ndim == 3:
            depth = depth[:, None]
        depth = F.interpolate(depth, size=(image.height, image.width), mode="bilinear", align_corners=False)
        return depth[0, 0].cpu().numpy().astype(np.float32)


def align_to_ground_truth(disparity: np.ndarray, gt: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, float]:
    """Depth from relative disparity: ``1 / disparity`` scaled so its median over ``valid`` equals the gt's.

    Non-positive disparities (no depth at all) become the largest predicted depth. Returns the depth
    map and the scale factor that was applied.
    """
    disp = disparity.astype(np.float64)
    positive = disp > 0
    depth = np.zeros_like(disp)
    depth[positive] = 1.0 / disp[positive]
    far = depth[positive].max() if positive.any() else 1.0
    depth[~positive] = far
    use = valid & (depth > 0)
    if not use.any():
        return depth.astype(np.float32), 1.0
    scale = float(np.median(gt[use]) / np.median(depth[use]))
    return (depth * scale).astype(np.float32), scale


def build_tiny(family: str, seed: int = 0) -> tuple[Any, Any, str]:
    """A random tiny model of ``family``, its image processor at ~32 px, and what it outputs."""
    from transformers import (
        DepthAnythingConfig,
        DepthAnythingForDepthEstimation,
        Dinov2Config,
        DPTConfig,
        DPTForDepthEstimation,
        DPTImageProcessorPil,
        GLPNConfig,
        GLPNForDepthEstimation,
        GLPNImageProcessorPil,
    )

    torch.manual_seed(seed)
    if family == "dpt":
        config = DPTConfig(image_size=32, patch_size=8, hidden_size=16, num_hidden_layers=4, num_attention_heads=2,
                           intermediate_size=32, backbone_out_indices=[0, 1, 2, 3], neck_hidden_sizes=[8, 8, 16, 16],
                           fusion_hidden_size=8)
        processor = DPTImageProcessorPil(size={"height": 32, "width": 32}, keep_aspect_ratio=False,
                                         image_mean=[0.5] * 3, image_std=[0.5] * 3)
        return DPTForDepthEstimation(config), processor, "disparity"
    if family == "glpn":
        config = GLPNConfig(depths=[1, 1, 1, 1], hidden_sizes=[8, 16, 16, 32], num_attention_heads=[1, 1, 2, 2],
                            decoder_hidden_size=16, max_depth=10)
        return GLPNForDepthEstimation(config), GLPNImageProcessorPil(size_divisor=32), "metric"
    if family == "depth-anything":
        backbone = Dinov2Config(image_size=28, patch_size=14, hidden_size=16, num_hidden_layers=4, num_attention_heads=2,
                                intermediate_size=32, out_indices=[1, 2, 3, 4], reshape_hidden_states=False)
        config = DepthAnythingConfig(backbone_config=backbone, reassemble_hidden_size=16, patch_size=14,
                                     neck_hidden_sizes=[8, 8, 16, 16], fusion_hidden_size=8, head_hidden_size=8,
                                     depth_estimation_type="metric", max_depth=20)
        processor = DPTImageProcessorPil(size={"height": 28, "width": 28}, keep_aspect_ratio=True, ensure_multiple_of=14)
        return DepthAnythingForDepthEstimation(config), processor, "metric"
    raise ValueError(f"unknown depth family {family!r}; expected dpt, glpn or depth-anything")


def _describe_config(config: Any) -> tuple[str, str]:
    """(family, output) of a transformers depth model config."""
    t = config.model_type
    if t == "glpn":
        return "glpn", "metric"
    if t == "depth_anything":
        return "depth-anything", "metric" if getattr(config, "depth_estimation_type", "relative") == "metric" else "disparity"
    if t == "dpt":
        return "dpt", "disparity"  # the public DPT checkpoints are MiDaS-style relative inverse depth
    raise ValueError(f"model type {t!r} is not a DPT, GLPN or Depth Anything depth estimator")


def load_depth_model(source: ModelSource, *, family: str | None = None, output: str = "auto", seed: int = 0) -> DepthEstimator:
    """A ``DepthEstimator``; ``output`` overrides what the predictions mean (auto: from the config)."""
    if source.kind == "tiny":
        fam = family or source.location
        model, processor, kind = build_tiny(fam, seed)
    else:
        from transformers import AutoConfig, AutoImageProcessor, AutoModelForDepthEstimation

        config = load_pretrained(AutoConfig, source)
        try:
            fam, kind = _describe_config(config)
        except ValueError as e:
            raise UsageError(f"{source.location}: {e}") from None
        model = load_pretrained(AutoModelForDepthEstimation, source)
        processor = load_pretrained(AutoImageProcessor, source, backend="pil")
    if output != "auto":
        kind = output
    return DepthEstimator(model, processor, fam, kind)
