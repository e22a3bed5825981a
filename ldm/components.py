"""The four Stable Diffusion components InstructCV is made of, built at random or loaded offline.

``SDComponents`` is the one currency passed between training, export, sampling and evaluation:
a UNet with 8 input channels (noisy target latent + unscaled input-image latent), a VAE, a CLIP
text encoder and its tokenizer, and the DDPM noise-schedule config used for training.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

REPO_ROOT = Path(__file__).resolve().parents[1]
SD15_CONFIG_DIR = REPO_ROOT / "configs" / "sd15"
TOKENIZER_DIR = SD15_CONFIG_DIR / "tokenizer"

# Training noise schedule of SD v1.5 (scaled-linear betas, 1000 steps, epsilon prediction).
DDPM_SCHEDULE: dict[str, Any] = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "prediction_type": "epsilon",
    "steps_offset": 1,
    "clip_sample": False,
    # sampling: evenly spaced from t = 999, as the original's k-diffusion Euler ancestral sampler
    # (sigma_max first); a diffusers folder that names no spacing keeps its scheduler's own default
    "timestep_spacing": "linspace",
}

# A random model small enough for tests on CPU (seconds per step at 64 px).
TINY_ARCHITECTURE: dict[str, dict[str, Any]] = {
    "unet": {
        "sample_size": 32,
        "in_channels": 8,
        "out_channels": 4,
        "layers_per_block": 1,
        "block_out_channels": [32, 64],
        "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"],
        "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"],
        "cross_attention_dim": 32,
        "attention_head_dim": 4,
        "norm_num_groups": 16,
    },
    "vae": {
        "in_channels": 3,
        "out_channels": 3,
        "latent_channels": 4,
        "block_out_channels": [16, 32],
        "down_block_types": ["DownEncoderBlock2D", "DownEncoderBlock2D"],
        "up_block_types": ["UpDecoderBlock2D", "UpDecoderBlock2D"],
        "layers_per_block": 1,
        "norm_num_groups": 16,
        "sample_size": 64,
        "scaling_factor": 0.18215,
    },
    "text_encoder": {
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_attention_heads": 4,
        "num_hidden_layers": 2,
        "max_position_embeddings": 77,
        "vocab_size": 49408,
        "bos_token_id": 0,
        "eos_token_id": 2,
        "pad_token_id": 1,
        "projection_dim": 32,
    },
}


@dataclass
class SDComponents:
    """UNet (8 input channels), VAE, text encoder, tokenizer and the training noise schedule."""

    unet: UNet2DConditionModel
    vae: AutoencoderKL
    text_encoder: CLIPTextModel
    tokenizer: CLIPTokenizer
    scheduler_config: dict[str, Any] = field(default_factory=lambda: dict(DDPM_SCHEDULE))
    objective: str = "diffusion"  # how the UNet answers: a sampler, or one call (one_step: ldm/one_step.py)

    @property
    def vae_scale_factor(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> SDComponents:
        for module in (self.unet, self.vae, self.text_encoder):
            module.to(device=device, dtype=dtype)
        return self


# Config entries that describe where a model came from rather than its shape; dropped when an
# architecture is stored so that it round-trips through JSON and torch.load(weights_only=True).
_PROVENANCE_KEYS = {"architectures", "torch_dtype", "dtype", "transformers_version", "id2label", "label2id"}


def _plain(config: dict[str, Any]) -> dict[str, Any]:
    plain = {k: v for k, v in dict(config).items() if not k.startswith("_") and k not in _PROVENANCE_KEYS}
    return json.loads(json.dumps(plain, default=list))  # tuples -> lists, FrozenDict -> dict


def architecture_of(components: SDComponents) -> dict[str, dict[str, Any]]:
    """The shapes of ``components`` as plain JSON values: ``{"unet": ..., "vae": ..., "text_encoder": ...}``.

    ``build_random_components(architecture_of(c))`` rebuilds the same modules (random weights).
    """
    return {
        "unet": _plain(components.unet.config),
        "vae": _plain(components.vae.config),
        "text_encoder": _plain(components.text_encoder.config.to_dict()),
    }


def widen_conv_in(unet: UNet2DConditionModel, in_channels: int = 8) -> UNet2DConditionModel:
    """Return ``unet`` with its first conv taking ``in_channels`` inputs; the added channels are zero.

    A text-to-image UNet (4 channels) becomes an InstructPix2Pix UNet (noisy latent + image latent)
    whose output is unchanged until training moves the new weights away from zero.
    """
    old = unet.conv_in
    if old.in_channels == in_channels:
        return unet
    if old.in_channels > in_channels:
        raise ValueError(f"cannot narrow conv_in from {old.in_channels} to {in_channels} channels")
    new = torch.nn.Conv2d(
        in_channels, old.out_channels, old.kernel_size, old.stride, old.padding,
        device=old.weight.device, dtype=old.weight.dtype,
    )
    with torch.no_grad():
        new.weight.zero_()
        new.weight[:, : old.in_channels] = old.weight
        new.bias.copy_(old.bias)
    unet.conv_in = new
    unet.register_to_config(in_channels=in_channels)
    return unet


def load_tokenizer(path: str | Path = TOKENIZER_DIR) -> CLIPTokenizer:
    """The CLIP BPE tokenizer shipped in configs/sd15/tokenizer (77 tokens, no download)."""
    return CLIPTokenizer.from_pretrained(str(path), model_max_length=77)


def sd15_architecture() -> dict[str, dict[str, Any]]:
    """Full-size SD v1.5 architecture (UNet widened to 8 input channels) from configs/sd15."""
    unet = json.loads((SD15_CONFIG_DIR / "unet" / "config.json").read_text())
    vae = json.loads((SD15_CONFIG_DIR / "vae" / "config.json").read_text())
    text = json.loads((SD15_CONFIG_DIR / "text_encoder" / "config.json").read_text())
    strip = lambda d: {k: v for k, v in d.items() if not k.startswith("_") and k not in ("architectures", "torch_dtype")}  # noqa: E731
    return {"unet": strip(unet), "vae": strip(vae), "text_encoder": strip(text)}


def build_random_components(
    architecture: str | dict[str, dict[str, Any]] = "tiny",
    seed: int = 0,
    overrides: dict[str, dict[str, Any]] | None = None,
) -> SDComponents:
    """Randomly initialised components: ``"tiny"`` for tests, ``"sd15"`` for full-size benchmarks.

    ``overrides`` updates the chosen architecture per component, e.g. ``{"unet": {"layers_per_block": 2}}``.
    The result is deterministic for a given ``seed``.
    """
    if isinstance(architecture, str):
        if architecture == "tiny":
            arch = copy.deepcopy(TINY_ARCHITECTURE)
        elif architecture == "sd15":
            arch = sd15_architecture()
        else:
            raise ValueError(f"unknown architecture {architecture!r}; expected 'tiny', 'sd15' or a dict")
    else:
        arch = copy.deepcopy(architecture)
    for name, values in (overrides or {}).items():
        arch.setdefault(name, {}).update(values)

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        unet = UNet2DConditionModel(**arch["unet"])
        vae = AutoencoderKL(**arch["vae"])
        text_encoder = CLIPTextModel(CLIPTextConfig(**arch["text_encoder"]))
    return SDComponents(unet=unet, vae=vae, text_encoder=text_encoder, tokenizer=load_tokenizer())
