"""A minimal two-way classifier-free-guidance Euler-ancestral sampler for training previews and checks.

It follows diffusers' ``StableDiffusionInstructPix2PixPipeline`` step for step (same noise draws for
the same generator), so an exported model can be checked against it. Inference proper lives in
ldm/sampling.py and ldm/inference.py; this is only what the training image logger needs.
"""

from __future__ import annotations

import torch
from diffusers import EulerAncestralDiscreteScheduler

from ldm.data import tokenize


def guided_noise(eps_text: torch.Tensor, eps_image: torch.Tensor, eps_uncond: torch.Tensor,
                 cfg_text: float, cfg_image: float) -> torch.Tensor:
    """InstructPix2Pix guidance: image guidance on top of the unconditional, text guidance on top of both."""
    return eps_uncond + cfg_text * (eps_text - eps_image) + cfg_image * (eps_image - eps_uncond)


@torch.no_grad()
def encode_prompts(text_encoder, tokenizer, prompts: list[str], device: torch.device) -> torch.Tensor:
    return text_encoder(tokenize(tokenizer, prompts).to(device))[0]


@torch.no_grad()
def sample_answers(unet, vae, text_encoder, tokenizer, scheduler_config: dict, images: torch.Tensor,
                   prompts: list[str], *, steps: int = 20, cfg_text: float = 7.5, cfg_image: float = 1.5,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """Answer images in [-1, 1] for ``images`` (B, 3, H, W) in [-1, 1] and their instructions."""
    device, dtype = unet.device, unet.dtype
    scheduler = EulerAncestralDiscreteScheduler.from_config(scheduler_config)
    scheduler.set_timesteps(steps, device=device)
    cond = encode_prompts(text_encoder, tokenizer, list(prompts), device).to(dtype)
    uncond = encode_prompts(text_encoder, tokenizer, [""] * len(prompts), device).to(dtype)
    text = torch.cat([cond, uncond, uncond])
    image_latents = vae.encode(images.to(device=device, dtype=vae.dtype)).latent_dist.mode().to(dtype)
    image_latents = torch.cat([image_latents, image_latents, torch.zeros_like(image_latents)])

    shape = (len(prompts), unet.config.out_channels, *images.shape[-2:])
    shape = (*shape[:2], shape[2] // 2 ** (len(vae.config.block_out_channels) - 1),
             shape[3] // 2 ** (len(vae.config.block_out_channels) - 1))
    gen_device = generator.device if generator is not None else device
    latents = torch.randn(shape, generator=generator, device=gen_device, dtype=dtype).to(device)
    latents = latents * scheduler.init_noise_sigma
    for t in scheduler.timesteps:
        model_input = scheduler.scale_model_input(torch.cat([latents] * 3), t)
        eps = unet(torch.cat([model_input, image_latents], dim=1), t, encoder_hidden_states=text).sample
        latents = scheduler.step(guided_noise(*eps.chunk(3), cfg_text, cfg_image), t, latents,
                                 generator=generator).prev_sample
    answer = vae.decode(latents.to(vae.dtype) / vae.config.scaling_factor).sample
    return answer.clamp(-1, 1)
