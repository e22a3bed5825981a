"""Shared test fixtures: offline hub, the real-data samples in ../shared/realdata, temp folders."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

REPO_ROOT = Path(__file__).resolve().parents[1]
REALDATA = Path(os.environ.get("INSTRUCTCV_REALDATA", REPO_ROOT.parent / "shared" / "realdata"))


@pytest.fixture
def one_torch_thread():
    """Two cores shared by several test runs: more threads only thrash (10x slower here)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def realdata() -> Path:
    """Root of the small real dataset samples (COCO, VOC, ADE20K, NYUv2, Pets, photos)."""
    if not REALDATA.is_dir():
        pytest.skip(f"real-data samples not found at {REALDATA} (set INSTRUCTCV_REALDATA)")
    return REALDATA


# The stock tiny model with latents at 1/4 of the image (as FAST_TINY in tests/test_inference.py):
# 16x fewer attention tokens at the same image size, so command-line tests stay fast.
FAST_TINY = {
    "vae": {
        "block_out_channels": [16, 32, 32],
        "down_block_types": ["DownEncoderBlock2D"] * 3,
        "up_block_types": ["UpDecoderBlock2D"] * 3,
    }
}


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory) -> Path:
    """That fast tiny random model saved as a diffusers InstructPix2Pix folder (for --ckpt); one per module."""
    from diffusers import StableDiffusionInstructPix2PixPipeline

    from ldm.components import build_random_components
    from ldm.sampling import make_scheduler

    c = build_random_components("tiny", seed=0, overrides=FAST_TINY)
    path = tmp_path_factory.mktemp("tiny_model") / "model"
    StableDiffusionInstructPix2PixPipeline(
        vae=c.vae, text_encoder=c.text_encoder, tokenizer=c.tokenizer, unet=c.unet,
        scheduler=make_scheduler("euler_ancestral", c.scheduler_config),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    ).save_pretrained(path)  # fmt: skip
    return path
