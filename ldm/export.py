"""Write trained components as a diffusers folder that ``StableDiffusionInstructPix2PixPipeline`` opens as is.

The folder holds the (EMA) UNet, VAE, text encoder, tokenizer and an Euler-ancestral scheduler with the
training betas; no safety checker. A one-step model (ldm/one_step.py) gets instead the DDIM scheduler that
makes a 1-step pipeline call return the UNet's answer; ``instructcv.json`` records the objective either way.
It is written beside the destination and renamed into place, so a half-written export never appears and
re-exporting replaces the old one.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from diffusers import EulerAncestralDiscreteScheduler, StableDiffusionInstructPix2PixPipeline

from ldm.components import SDComponents
from ldm.loading import load_components
from ldm.one_step import export_scheduler, write_model_info


def build_pipeline(components: SDComponents) -> StableDiffusionInstructPix2PixPipeline:
    """The diffusers InstructPix2Pix pipeline around ``components`` (Euler ancestral, training betas)."""
    if components.objective == "one_step":
        scheduler = export_scheduler(components.scheduler_config)
    else:
        scheduler = EulerAncestralDiscreteScheduler.from_config(components.scheduler_config)
    return StableDiffusionInstructPix2PixPipeline(
        vae=components.vae,
        text_encoder=components.text_encoder,
        tokenizer=components.tokenizer,
        unet=components.unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def export_diffusers(components: SDComponents, out_dir: str | os.PathLike) -> Path:
    """Save ``components`` as a diffusers pipeline folder at ``out_dir`` (replacing any previous export)."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.with_name(f".{out_dir.name}.tmp-{os.getpid()}")
    old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        build_pipeline(components).save_pretrained(tmp, safe_serialization=True)
        write_model_info(tmp, components.objective, components.scheduler_config)
        if out_dir.exists():
            os.rename(out_dir, old)
        os.rename(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
    return out_dir


def export_checkpoint(source: str | os.PathLike, out_dir: str | os.PathLike, *, use_ema: bool = True,
                      allow_unsafe_pickle: bool = False) -> Path:
    """Export a main.py checkpoint or run folder (or any ``load_components`` source) as a diffusers folder."""
    components = load_components(source, use_ema=use_ema, allow_unsafe_pickle=allow_unsafe_pickle)
    return export_diffusers(components, out_dir)
