"""One-step answers: the UNet draws the answer latent in a single call (``model.params.objective: one_step``).

The perception fine-tunes of Stable Diffusion (E2E-FT, Garcia et al., WACV 2025; Lotus-D, He et al., ICLR 2025;
GenPercept) showed that a deterministic single step at the last timestep matches or beats a multi-step
sampler for dense prediction. InstructCV's one-step objective is theirs with an instruction:

- **timestep** ``TIMESTEP = 999``: the timestep a 1-step DDIM call with *trailing* spacing lands on
  (leading spacing would land on t=1, the bug E2E-FT found in Marigold), and the one whose weights a
  diffusion checkpoint trained to map "no information in the noisy latent" to an answer;
- **start latent** zeros, the mean of the noise (E2E-FT, Lotus-D), not a noise sample (Lotus-G): the answer
  to a deterministic question is then deterministic, and training needs no noise at all;
- **start-latent weights zero**: ``detach_start_latent`` zeroes the UNet's ``conv_in`` weights of the
  start-latent channels. With a zero start latent they never contribute and never get a gradient (AdamW
  keeps a zero weight at zero), so the answer is unchanged -- but the UNet now ignores whatever start latent
  it is given, so diffusers' pipeline, which always starts from seeded noise, gives our answer for any seed;
- **loss** ``one_step_loss`` on the predicted latent against the target latent (``mse``, or ``l1``:
  the conditional median, which in theory commits to one of two possible answers where the mean blends
  them; on the demo it did not, see README), plus optionally ``decoder_loss_weight`` x the same loss on
  the image the VAE decoder makes of it (E2E-FT trains through the decoder), and ``commit_loss_weight`` x
  L1 on the spatial mean of the classification answers (``commit_loss``): they then commit to the likelier
  of their two colours instead of the blend an MSE regression draws when it is unsure (on every task's
  answers, the same term pulled the demo's seg and depth answers towards their median mean and cost them
  dearly, so it reads only the samples whose task is cls);
- **export** (``export_scheduler``): DDIM with ``prediction_type="sample"``, trailing spacing and
  ``set_alpha_to_one``, so a 1-step pipeline call computes ``1 * x0_pred + 0 * eps``: exactly the UNet's output.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from diffusers import DDIMScheduler

from instructcv.io import write_json

log = logging.getLogger(__name__)

OBJECTIVES = ("diffusion", "one_step")
LOSSES = ("mse", "l1")
TIMESTEP = 999
MODEL_INFO_FILE = "instructcv.json"  # beside model_index.json in an export: which objective, which timestep
# Scheduler entries of the export that make one pipeline step return the UNet's output (see the module doc).
EXPORT_SCHEDULE = {"prediction_type": "sample", "timestep_spacing": "trailing", "set_alpha_to_one": True,
                   "clip_sample": False, "thresholding": False}
_TRAINING_KEYS = ("num_train_timesteps", "beta_start", "beta_end", "beta_schedule", "trained_betas")


def check_objective(objective: str) -> str:
    """``objective`` itself; ValueError naming the known ones otherwise."""
    if objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {objective!r}; one of {', '.join(OBJECTIVES)}")
    return objective


def check_loss(loss: str) -> str:
    """``loss`` itself; ValueError naming the known ones otherwise."""
    if loss not in LOSSES:
        raise ValueError(f"unknown one-step loss {loss!r}; one of {', '.join(LOSSES)}")
    return loss


def export_scheduler(scheduler_config: dict[str, Any]) -> DDIMScheduler:
    """The DDIM scheduler a one-step export ships: the training betas, one step = the UNet's x0."""
    betas = {k: v for k, v in scheduler_config.items() if k in _TRAINING_KEYS}
    return DDIMScheduler.from_config({**betas, **EXPORT_SCHEDULE})


@torch.no_grad()
def detach_start_latent(unet: torch.nn.Module) -> None:
    """Zero ``conv_in``'s weights of the start-latent channels: the UNet then ignores the start latent."""
    unet.conv_in.weight[:, : unet.config.out_channels].zero_()


def start_latents(image_latents: torch.Tensor, channels: int) -> torch.Tensor:
    """The fixed start latent: zeros shaped like the answer latent."""
    return image_latents.new_zeros((image_latents.shape[0], channels, *image_latents.shape[-2:]))


def predict_latents(unet: torch.nn.Module, image_latents: torch.Tensor, text_embeds: torch.Tensor) -> torch.Tensor:
    """The answer latents (times the VAE scaling factor): one UNet call at ``TIMESTEP`` from the zero start."""
    start = start_latents(image_latents, unet.config.out_channels)
    t = torch.full((image_latents.shape[0],), TIMESTEP, device=image_latents.device, dtype=torch.long)
    return unet(torch.cat([start, image_latents], dim=1), t, encoder_hidden_states=text_embeds, return_dict=False)[0]


def _distance(kind: str, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.l1_loss(pred, target) if kind == "l1" else F.mse_loss(pred, target)


def commit_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """L1 between the spatial means of predicted and target answer latents (B, C, H, W), over the samples
    of ``mask`` (B,) bool when given (0 when it selects none).

    Minimised, over the answers a question may have, by their per-channel median: for a two-answer
    question (classification's solid colours) that is the likelier answer, where the mean that MSE
    regresses to is a blend of the two colours that reads as neither.
    """
    if mask is not None:
        if not bool(mask.any()):
            return pred.sum() * 0.0  # keeps the graph: every rank runs the same backward
        pred, target = pred[mask], target[mask]
    return F.l1_loss(pred.mean(dim=(-2, -1)), target.mean(dim=(-2, -1)))


def one_step_loss(unet, vae, image_latents: torch.Tensor, target_latents: torch.Tensor, text: torch.Tensor,
                  target_images: torch.Tensor | None = None, *, loss: str = "mse",
                  decoder_loss_weight: float = 0.0, commit_loss_weight: float = 0.0,
                  commit_mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """``{"latent_loss": ...}`` and, with ``decoder_loss_weight`` > 0, ``"decoder_loss"``, with
    ``commit_loss_weight`` > 0, ``"commit_loss"`` over the samples of ``commit_mask`` (both already weighted).

    ``target_latents`` are scaled by ``vae.config.scaling_factor``; ``target_images`` in [-1, 1], or None
    (latent cache: the decoder's image of the target latent stands in for the target image).
    """
    pred = predict_latents(unet, image_latents, text).float()
    losses = {"latent_loss": _distance(loss, pred, target_latents.float())}
    if commit_loss_weight > 0:
        losses["commit_loss"] = commit_loss_weight * commit_loss(pred, target_latents.float(), commit_mask)
    if decoder_loss_weight > 0:
        scale = vae.config.scaling_factor
        if target_images is None:
            with torch.no_grad():
                target_images = vae.decode(target_latents.to(vae.dtype) / scale).sample
        decoded = vae.decode(pred.to(vae.dtype) / scale).sample
        losses["decoder_loss"] = decoder_loss_weight * _distance(loss, decoded.float(), target_images.float())
    return losses


@torch.no_grad()
def answer_images(components, images: torch.Tensor, text_embeds: torch.Tensor) -> torch.Tensor:
    """Answers in [-1, 1] for ``images`` (B, 3, H, W) in [-1, 1]: encode, one UNet call, decode (previews)."""
    vae, unet = components.vae, components.unet
    image_latents = vae.encode(images.to(device=unet.device, dtype=vae.dtype)).latent_dist.mode()
    latents = predict_latents(unet, image_latents.to(unet.dtype), text_embeds.to(unet.device, unet.dtype))
    return vae.decode(latents.to(vae.dtype) / vae.config.scaling_factor).sample.clamp(-1, 1)


def write_model_info(out_dir: str | os.PathLike, objective: str, scheduler_config: dict[str, Any]) -> None:
    """Record in an export folder how it answers (and the training schedule the export's scheduler lacks)."""
    info = {"objective": objective, "scheduler_config": dict(scheduler_config)}
    if objective == "one_step":
        info.update(timestep=TIMESTEP, start_latent="zeros",
                    diffusers_call={"num_inference_steps": 1, "guidance_scale": 1.0, "image_guidance_scale": 1.0})
    write_json(Path(out_dir) / MODEL_INFO_FILE, info, indent=1)


def read_model_info(folder: str | os.PathLike) -> dict[str, Any]:
    """What ``write_model_info`` wrote, or ``{}`` for a folder without it (any other diffusers model)."""
    path = Path(folder) / MODEL_INFO_FILE
    if not path.is_file():
        return {}
    try:
        info = json.loads(path.read_text())
        check_objective(info.get("objective", "diffusion"))
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: unreadable ({e})") from None
    return info


def note_ignored(objective: str, steps: int, cfg_text: float, cfg_image: float,
                 defaults: tuple[int, float, float]) -> bool:
    """Log once per caller that sampling settings other than the defaults do nothing for a one-step model."""
    if objective != "one_step" or (steps, cfg_text, cfg_image) == defaults:
        return False
    log.warning("one-step model: the answer is one UNet call without guidance; "
                "--steps, --cfg-text and --cfg-image are ignored")
    return True
