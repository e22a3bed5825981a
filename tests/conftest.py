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


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def realdata() -> Path:
    """Root of the small real dataset samples (COCO, VOC, ADE20K, NYUv2, Pets, photos)."""
    if not REALDATA.is_dir():
        pytest.skip(f"real-data samples not found at {REALDATA} (set INSTRUCTCV_REALDATA)")
    return REALDATA
