"""Sampling for InstructCV: two-way classifier-free guidance and a denoising loop over any diffusers scheduler.

The guidance is the InstructPix2Pix one: three UNet passes per step, batched as
``[text + image, empty text + image, empty text + zero image]`` (the order diffusers'
``StableDiffusionInstructPix2PixPipeline`` uses), combined by ``two_way_cfg``. The sampler itself is
whichever diffusers scheduler ``make_scheduler`` builds from the model's training noise schedule;
nothing here re-implements a scheduler.

Randomness is per image: ``sample`` takes one ``torch.Generator`` per batch row and hands the list
to ``randn_tensor`` and ``scheduler.step``, so an image's answer depends on its own generator only,
not on which other images share its batch.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from diffusers.schedulers.scheduling_utils import SchedulerMixin

# --scheduler names -> diffusers scheduler classes (imported when used, so that `--help` stays quick).
# Euler ancestral is what InstructPix2Pix and InstructCV sample with.
SCHEDULERS: dict[str, str] = {
    "euler_ancestral": "EulerAncestralDiscreteScheduler",
    "euler": "EulerDiscreteScheduler",
    "ddim": "DDIMScheduler",
    "ddpm": "DDPMScheduler",
    "dpmpp": "DPMSolverMultistepScheduler",
    "dpmpp_singlestep": "DPMSolverSinglestepScheduler",
    "unipc": "UniPCMultistepScheduler",
    "deis": "DEISMultistepScheduler",
    "heun": "HeunDiscreteScheduler",
    "dpm2": "KDPM2DiscreteScheduler",
    "dpm2_ancestral": "KDPM2AncestralDiscreteScheduler",
    "lms": "LMSDiscreteScheduler",
    "pndm": "PNDMScheduler",
}
DEFAULT_SCHEDULER = "euler_ancestral"

# Bookkeeping keys of a saved scheduler config, not parameters of any scheduler.
_NOT_FORWARDED = {"_class_name", "_diffusers_version"}


def make_scheduler(name: str, config: dict[str, Any]) -> SchedulerMixin:
    """A fresh diffusers scheduler of kind ``name`` on the model's noise schedule ``config``.

    Schedulers keep per-run state (step index, multistep history), so build one per sampling run.
    """
    import diffusers

    if name not in SCHEDULERS:
        raise ValueError(f"unknown scheduler {name!r}; choose one of {', '.join(SCHEDULERS)}")
    if name == "lms" and importlib.util.find_spec("scipy") is None:
        raise ValueError("the lms scheduler needs scipy (pip install scipy); or choose another --scheduler")
    cls = getattr(diffusers, SCHEDULERS[name])
    return cls.from_config({k: v for k, v in dict(config).items() if k not in _NOT_FORWARDED})


def two_way_cfg(
    noise_text: torch.Tensor,
    noise_image: torch.Tensor,
    noise_uncond: torch.Tensor,
    cfg_text: float,
    cfg_image: float,
) -> torch.Tensor:
    """InstructPix2Pix guidance: push away from "no image" by ``cfg_image`` and from "no text" by ``cfg_text``.

    ``noise_text`` is conditioned on text and image, ``noise_image`` on the image only (empty text),
    ``noise_uncond`` on neither (empty text, zero image latent).
    """
    return noise_uncond + cfg_text * (noise_text - noise_image) + cfg_image * (noise_image - noise_uncond)


def needs_guidance(cfg_text: float, cfg_image: float) -> bool:
    """Guidance is a no-op exactly when both scales are 1 (then the formula is the text+image prediction)."""
    return not (cfg_text == 1.0 and cfg_image == 1.0)


def guided_noise(
    unet: torch.nn.Module,
    latents: torch.Tensor,
    t: torch.Tensor,
    image_latents: torch.Tensor,
    text_embeds: torch.Tensor,
    uncond_embeds: torch.Tensor,
    cfg_text: float,
    cfg_image: float,
) -> torch.Tensor:
    """One guided noise prediction for a batch of B already scheduler-scaled ``latents``.

    ``image_latents`` (B,4,h,w) are the unscaled VAE latents of the input images, ``text_embeds``
    and ``uncond_embeds`` (B,77,D) the instruction and the empty prompt. The UNet sees 3B rows.
    """
    if not needs_guidance(cfg_text, cfg_image):
        return unet(torch.cat([latents, image_latents], dim=1), t, encoder_hidden_states=text_embeds, return_dict=False)[0]
    model_in = torch.cat(
        [
            torch.cat([latents, latents, latents], dim=0),
            torch.cat([image_latents, image_latents, torch.zeros_like(image_latents)], dim=0),
        ],
        dim=1,
    )
    embeds = torch.cat([text_embeds, uncond_embeds, uncond_embeds], dim=0)
    noise = unet(model_in, t, encoder_hidden_states=embeds, return_dict=False)[0]
    return two_way_cfg(*noise.chunk(3), cfg_text=cfg_text, cfg_image=cfg_image)


def sample(
    unet: torch.nn.Module,
    scheduler: SchedulerMixin,
    image_latents: torch.Tensor,
    text_embeds: torch.Tensor,
    uncond_embeds: torch.Tensor,
    generators: Sequence[torch.Generator],
    *,
    steps: int = 100,
    cfg_text: float = 7.5,
    cfg_image: float = 1.5,
    on_step: Callable[[int, torch.Tensor], None] | None = None,
) -> torch.Tensor:
    """Denoise from pure noise to answer latents (still multiplied by the VAE scaling factor).

    One generator per row of ``image_latents``: it draws that row's initial noise and every noise
    the scheduler adds (ancestral/SDE samplers), in the same order as diffusers' pipeline does for
    a single image, so row i's result equals a pipeline call on image i with ``generators[i]``.
    The latents stay float32 through the loop (the scheduler's arithmetic loses steps in bf16/fp16);
    only the UNet sees the model's dtype. The result is float32.
    """
    from diffusers.utils.torch_utils import randn_tensor

    if len(generators) != image_latents.shape[0]:
        raise ValueError(f"need one generator per image: got {len(generators)} for {image_latents.shape[0]} images")
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    device, dtype = image_latents.device, image_latents.dtype  # dtype: what the UNet runs in
    scheduler.set_timesteps(steps, device=device)
    shape = (image_latents.shape[0], unet.config.out_channels, *image_latents.shape[-2:])
    latents = randn_tensor(shape, generator=list(generators), device=device, dtype=torch.float32)
    latents = latents * scheduler.init_noise_sigma
    step_kwargs = {"generator": list(generators)} if _accepts_generator(scheduler) else {}
    for i, t in enumerate(scheduler.timesteps):
        scaled = scheduler.scale_model_input(latents, t).to(dtype)
        noise = guided_noise(unet, scaled, t, image_latents, text_embeds, uncond_embeds, cfg_text, cfg_image)
        latents = scheduler.step(noise.float(), t, latents, **step_kwargs, return_dict=False)[0]
        if on_step is not None:
            on_step(i, latents)
    return latents


def _accepts_generator(scheduler: SchedulerMixin) -> bool:
    import inspect

    return "generator" in inspect.signature(scheduler.step).parameters
