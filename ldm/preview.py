"""Answers for the training image logger: the images of a few pairs through ``ldm.sampling``.

The same guidance and loop as inference (``ldm.sampling.sample`` with an Euler-ancestral scheduler
on the model's schedule), so a preview shows what the exported model would answer; with one image and
a generator it matches diffusers' ``StableDiffusionInstructPix2PixPipeline`` step for step.
"""

from __future__ import annotations

import torch

from ldm.batch import tokenize
from ldm.sampling import make_scheduler, sample


@torch.no_grad()
def encode_prompts(text_encoder, tokenizer, prompts: list[str], device: torch.device) -> torch.Tensor:
    """CLIP embeddings ``(B, 77, D)`` of ``prompts``."""
    return text_encoder(tokenize(tokenizer, prompts).to(device))[0]


@torch.no_grad()
def sample_answers(unet, vae, text_encoder, tokenizer, scheduler_config: dict, images: torch.Tensor,
                   prompts: list[str], *, steps: int = 20, cfg_text: float = 7.5, cfg_image: float = 1.5,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """Answer images in [-1, 1] for ``images`` (B, 3, H, W) in [-1, 1] and their instructions.

    Image ``i`` draws its noise from its own generator: ``generator`` for the first, then generators
    seeded with its seed + i, so an answer does not depend on the other images of the batch.
    """
    device, dtype = unet.device, unet.dtype
    first = generator if generator is not None else torch.Generator().manual_seed(0)
    generators = [first, *(torch.Generator(first.device).manual_seed(first.initial_seed() + i)
                           for i in range(1, len(prompts)))]
    text = encode_prompts(text_encoder, tokenizer, list(prompts), device).to(dtype)
    uncond = encode_prompts(text_encoder, tokenizer, [""] * len(prompts), device).to(dtype)
    image_latents = vae.encode(images.to(device=device, dtype=vae.dtype)).latent_dist.mode().to(dtype)
    latents = sample(unet, make_scheduler("euler_ancestral", scheduler_config), image_latents, text, uncond,
                     generators, steps=steps, cfg_text=cfg_text, cfg_image=cfg_image)
    answer = vae.decode(latents.to(vae.dtype) / vae.config.scaling_factor).sample
    return answer.clamp(-1, 1)
