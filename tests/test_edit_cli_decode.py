"""edit_cli.py --decode: answers read back by the instruction's task into boxes, masks, classes and depth."""

from __future__ import annotations

import importlib.util
import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("edit_cli", REPO / "edit_cli.py")
cli = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cli)


def picture(width: int, height: int, seed: int = 0) -> np.ndarray:
    small = np.random.default_rng(seed).integers(0, 256, (max(2, height // 8), max(2, width // 8), 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(small).resize((width, height), Image.Resampling.BICUBIC))


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """The stock tiny random model saved as a diffusers folder (answers are noise; decoding still runs)."""
    from diffusers import StableDiffusionInstructPix2PixPipeline

    from ldm.components import build_random_components
    from ldm.sampling import make_scheduler

    c = build_random_components("tiny", seed=0)
    path = tmp_path_factory.mktemp("tiny_model") / "model"
    StableDiffusionInstructPix2PixPipeline(
        vae=c.vae, text_encoder=c.text_encoder, tokenizer=c.tokenizer, unet=c.unet,
        scheduler=make_scheduler("euler_ancestral", c.scheduler_config),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    ).save_pretrained(path)
    return path


# --------------------------------------------------------------------------------------- --decode


@pytest.fixture()
def scene() -> Image.Image:
    return Image.fromarray(picture(160, 120, 7))


def test_decoded_detection_boxes_and_preview(scene, tmp_path):
    from ldm.answers import parse, write_decoded
    from tasks import detection

    boxes = np.array([[20, 15, 90, 80], [100, 40, 150, 110]], float)
    answer = Image.fromarray(detection.encode(np.asarray(scene), boxes))
    paths = write_decoded(answer, scene, parse("Detect the dog."), tmp_path / "a", "Detect the dog.")
    assert [p.name for p in paths] == ["a.json", "a_boxes.png"]
    got = json.loads(paths[0].read_text())
    assert got["task"] == "det" and got["class"] == "dog" and got["image_size"] == [160, 120]
    found = sorted(got["boxes"])
    assert len(found) == 2 and len(got["scores"]) == 2
    assert np.abs(np.array(found) - boxes).max() <= 2  # drawn boxes read back in input pixels
    with Image.open(paths[1]) as preview:
        arr = np.asarray(preview)
    assert preview.size == scene.size
    assert (arr[15:80, 20] == (0, 255, 0)).all(axis=-1).mean() > 0.8  # left edge of the first box is green


def test_decoded_segmentation_mask(scene, tmp_path):
    from ldm.answers import parse, write_decoded
    from tasks import segmentation

    mask = np.zeros((120, 160), bool)
    mask[30:90, 40:120] = True
    answer = Image.fromarray(segmentation.encode(mask)).convert("RGB")
    (path,) = write_decoded(answer, scene, parse("Segment the sky."), tmp_path / "s", "Segment the sky.")
    assert path.name == "s_mask.png"
    with Image.open(path) as img:
        got = np.asarray(img)
    assert got.shape == (120, 160) and set(np.unique(got)) <= {0, 255}
    assert np.array_equal(got == 255, mask)


def test_decoded_classification(scene, tmp_path):
    from ldm.answers import parse, write_decoded
    from tasks import classification

    text = "Show red if there is a cat in the picture, otherwise show green."
    for present in (True, False):
        answer = Image.fromarray(classification.encode(scene.size, present, "red", "green"))
        (path,) = write_decoded(answer, scene, parse(text), tmp_path / f"c{present}", text)
        got = json.loads(path.read_text())
        assert got["present"] is present and got["class"] == "cat"
        assert (got["score"] > 0.5) is present


def test_decoded_depth_is_16_bit_millimetres_with_a_colour_preview(scene, tmp_path):
    from ldm.answers import parse, write_decoded
    from tasks import depth

    metres = np.tile(np.linspace(0.5, 9.5, 160, dtype=np.float32), (120, 1))
    grey = depth.encode(metres)
    grey[:10] = 0  # the answer says "no data" there
    metres[:10] = 0
    answer = Image.fromarray(grey).convert("RGB")
    mm_path, color_path = write_decoded(answer, scene, parse("Estimate the depth of this image."), tmp_path / "d",
                                        "Estimate the depth of this image.")
    with Image.open(mm_path) as img:
        mm = np.asarray(img)
    assert mm.dtype == np.uint16 and mm.shape == (120, 160)
    valid = metres > 0
    assert np.abs(mm[valid] / 1000.0 - metres[valid]).max() <= 0.5 / depth.SCALE + 1e-3  # 8-bit answer step
    assert (mm[~valid] == 0).all()
    with Image.open(color_path) as img:
        color = np.asarray(img)
    assert color.shape == (120, 160, 3) and (color[:10] == 0).all()
    near, far = color[60, 5].astype(int).sum(), color[60, 155].astype(int).sum()
    assert far > near  # inferno: near dark, far bright


def test_cli_decode_writes_outputs_and_unknown_tasks_only_warn(model_dir, tmp_path, caplog):
    img = tmp_path / "in" / "street.jpg"
    img.parent.mkdir()
    Image.fromarray(picture(80, 60, 9)).save(img)
    common = ["--input", str(img), "--ckpt", str(model_dir), "--steps", "2", "--resolution", "64", "--quiet",
              "--device", "cpu", "--decode"]
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert cli.main([*common, "--output", str(tmp_path / "seg"), "--edit", "Segment the %.", "--class", "car"]) == 0
        with caplog.at_level(logging.WARNING):
            assert cli.main([*common, "--output", str(tmp_path / "odd"), "--edit", "Make it look like a painting."]) == 0
    finally:
        torch.set_num_threads(n)
    with Image.open(tmp_path / "seg" / "street_mask.png") as mask:
        assert mask.size == (80, 60) and set(np.unique(np.asarray(mask))) <= {0, 255}
    assert sorted(p.name for p in (tmp_path / "odd").iterdir()) == ["street.png"]
    assert "nothing is decoded" in caplog.text


def test_rerun_with_decode_decodes_existing_answers_without_the_model(model_dir, tmp_path):
    img = tmp_path / "in" / "room.png"
    img.parent.mkdir()
    Image.fromarray(picture(64, 64, 11)).save(img)
    out = tmp_path / "out"
    (out).mkdir()
    Image.fromarray(np.full((64, 64, 3), 128, np.uint8)).save(out / "room.png")  # an answer from an earlier run
    status = cli.main(["--input", str(img), "--output", str(out), "--edit", "Estimate the depth of this image.",
                       "--ckpt", str(tmp_path / "no_model_needed"), "--decode", "--quiet"])
    assert status == 0
    with Image.open(out / "room_depth.png") as d:
        assert np.all(np.asarray(d) == round((128 + 0.5) / 25.5 * 1000))  # grey 128 read at its bin centre
