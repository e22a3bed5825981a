"""app.py without a browser: decoding answers for the page, the Answer handler on the tiny model, options."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("app", REPO / "app.py")
app = importlib.util.module_from_spec(_spec)
sys.modules["app"] = app  # dataclasses look their module up there
_spec.loader.exec_module(app)

CATS = "photos/transformers_tests_samples/COCO/000000039769.png"  # two cats on a pink blanket, 640x480


def require_gradio():
    """gradio is in the test environment (make test installs the demo extra); skip only outside it."""
    if os.environ.get("INSTRUCTCV_REQUIRE_BROWSER") == "1":
        import gradio  # noqa: F401  (an ImportError here fails the test, as CI must)
        return
    pytest.importorskip("gradio", reason="gradio not installed (pip install -e .[demo])")


@pytest.fixture(scope="module")
def photo(realdata) -> Image.Image:
    """The cats photo at a quarter size: real content, quick to decode."""
    with Image.open(realdata / CATS) as img:
        return img.convert("RGB").resize((160, 120), Image.Resampling.LANCZOS)


@pytest.fixture(scope="module")
def tiny_demo():
    from ldm.components import build_random_components
    from ldm.inference import InstructCV

    model = InstructCV.from_components(build_random_components("tiny", seed=0), device="cpu", dtype="fp32")
    return app.Demo(model, resolution=64, max_steps=50)


# ------------------------------------------------------------------------------ decode_answer


def test_detection_boxes_drawn_on_the_input(photo):
    from tasks import detection

    boxes = np.array([[10, 12, 70, 90], [90, 30, 150, 110]], float)
    answer = Image.fromarray(detection.encode(np.asarray(photo), boxes))
    got = app.decode_answer(answer, photo, "Detect the cat.")
    assert got.task == "det"
    assert got.summary.startswith("Detection 'cat': 2 boxes")
    assert got.view.shape == (120, 160, 3)
    green = (got.view == (0, 255, 0)).all(axis=-1)
    for x0, y0, _, y1 in boxes.astype(int):  # each box's left edge is green along most of its height
        assert green[y0:y1, x0 - 1 : x0 + 2].any(axis=1).mean() > 0.8
    inside = green[45:75, 100:140]  # well inside the second box the photo is untouched
    assert not inside.any() and np.array_equal(got.view[45:75, 100:140], np.asarray(photo)[45:75, 100:140])


def test_detection_without_boxes_says_so(photo):
    got = app.decode_answer(photo, photo, "Detect the dog.")  # the input itself: nothing drawn
    assert got.task == "det" and "no box" in got.summary
    assert np.array_equal(got.view, np.asarray(photo))


def test_segmentation_mask_over_the_input(photo):
    from tasks import segmentation

    mask = np.zeros((120, 160), bool)
    mask[20:100, 30:90] = True
    answer = Image.fromarray(segmentation.encode(mask)).convert("RGB")
    got = app.decode_answer(answer, photo, "Segment the cat.")
    assert got.task == "seg" and "Segmentation 'cat'" in got.summary
    assert f"{mask.mean():.1%}" in got.summary
    rgb = np.asarray(photo).astype(float)
    view = got.view.astype(float)
    # outside: the photo dimmed; inside: the photo blended with green (computed here independently)
    assert np.abs(view[~mask] - np.rint(0.35 * rgb[~mask])).max() <= 1
    expected_inside = np.rint(0.55 * rgb[mask] + 0.45 * np.array([0, 255, 0]))
    assert np.abs(view[mask] - expected_inside).max() <= 1


@pytest.mark.parametrize("present", [True, False])
def test_classification_verdict_with_score(photo, present):
    from tasks import classification

    instruction = "Show red if there is a cat in the picture, otherwise show green."
    answer = Image.fromarray(classification.encode(photo.size, present, "red", "green"))
    got = app.decode_answer(answer, photo, instruction)
    assert got.task == "cls" and got.view is None
    verdict = "present" if present else "absent"
    assert got.summary.startswith(f"Classification 'cat': {verdict} (P(present) = ")
    score = float(re.search(r"P\(present\) = ([0-9.]+)\)", got.summary).group(1))
    assert (score > 0.9) if present else (score < 0.1)


def test_classification_unreadable_answer(photo):
    grey = Image.new("RGB", photo.size, (128, 128, 128))
    got = app.decode_answer(grey, photo, "Show red if there is a cat in the picture, otherwise show green.")
    assert "unreadable: the answer is neither red nor green" in got.summary


def test_depth_colour_map(photo):
    from tasks import depth

    metres = np.tile(np.linspace(0.5, 8.0, 160, dtype=np.float32), (120, 1))
    grey = depth.encode(metres)
    grey[:10] = 0  # an answer that says "no data": drawn black
    answer = Image.fromarray(grey).convert("RGB")
    got = app.decode_answer(answer, photo, "Estimate the depth of this image.")
    assert got.task == "depes" and got.view.shape == (120, 160, 3)
    # the encoding's truncated 1/25.5 m steps, read at their centre: 0.5 m -> 12 -> 0.49 m, 8 m -> 204 -> 8.02 m
    assert got.summary.startswith("Depth: 0.49 to 8.02 m")
    assert (got.view[:10] == 0).all()
    brightness = got.view[10:].astype(float).sum(axis=-1).mean(axis=0)
    assert brightness[-5:].mean() > brightness[:5].mean() + 200  # far (right) is brighter than near (left)


def test_unrecognised_instruction(photo):
    got = app.decode_answer(photo, photo, "make it look like a painting")
    assert got.task is None and got.view is None and "not recognised" in got.summary


def test_overlay_mask_keeps_the_input_untouched():
    image = np.full((4, 5, 3), 200, np.uint8)
    mask = np.zeros((4, 5), bool)
    mask[1, 2] = True
    out = app.overlay_mask(image, mask)
    assert out.dtype == np.uint8 and out.shape == image.shape and (image == 200).all()
    assert tuple(out[1, 2]) == (110, 225, 110) and tuple(out[0, 0]) == (70, 70, 70)


# ------------------------------------------------------------------------ handler (tiny model)


def test_answer_handler_on_a_real_photo(tiny_demo, realdata):
    with Image.open(realdata / CATS) as img:
        image = img.convert("RGB")
    answer, decoded = tiny_demo.answer(image, "  segment the cat. ", steps=2, cfg_text=7.5, cfg_image=1.5, seed=3)
    assert isinstance(answer, Image.Image) and answer.size == image.size and answer.mode == "RGB"
    assert decoded.task == "seg" and decoded.view.shape == (480, 640, 3)
    assert decoded.summary.startswith("Segmentation 'cat': the mask covers ")
    # the view is the mask the segmentation decoder reads from this very answer
    from tasks import segmentation

    mask = segmentation.decode(answer, image.size)
    assert np.array_equal(decoded.view, app.overlay_mask(np.asarray(image), mask))
    again, _ = tiny_demo.answer(np.asarray(image), "segment the cat.", steps=2.0, seed=3.0)  # numpy in, floats from sliders
    assert np.array_equal(np.asarray(again), np.asarray(answer))


def test_answer_handler_user_errors(tiny_demo, photo):
    with pytest.raises(app.UsageError, match="Upload an image"):
        tiny_demo.answer(None, "segment the cat.")
    with pytest.raises(app.UsageError, match="Type an instruction"):
        tiny_demo.answer(photo, "   ")
    with pytest.raises(app.UsageError, match="steps must be between 1 and 50"):
        tiny_demo.answer(photo, "segment the cat.", steps=51)


def test_gradio_handler_and_page(tiny_demo, photo):
    require_gradio()
    import gradio as gr

    on_answer = app.make_handler(tiny_demo)
    answer, view, summary = on_answer(photo, "Estimate the depth of this image.", 2, 7.5, 1.5, 0)
    assert answer.size == photo.size and summary.startswith("Depth")
    assert view["visible"] is True and view["value"].shape == (120, 160, 3)
    _, view, summary = on_answer(photo, "Show red if there is a cat in the picture, otherwise show green.", 2, 7.5, 1.5, 0)
    assert view["visible"] is False and summary.startswith("Classification 'cat': ")
    with pytest.raises(gr.Error, match="Upload an image"):
        on_answer(None, "segment the cat.", 2, 7.5, 1.5, 0)

    page = app.build_ui(tiny_demo, default_steps=4)
    ids = {getattr(block, "elem_id", None) for block in page.blocks.values()}
    assert {"input-image", "instruction", "submit", "answer", "decoded", "summary"} <= ids


def test_example_instructions_cover_every_task():
    from tasks import TASKS, parse_instruction

    assert sorted(parse_instruction(x).task for x in app.EXAMPLE_INSTRUCTIONS) == sorted(TASKS)


# ---------------------------------------------------------------------------------- options


def test_help_has_examples_and_safe_defaults():
    parser = app.build_parser()
    text = parser.format_help()
    assert "python app.py --tiny" in text and "--ckpt alaa-lab/InstructCV" in text and "pip install -e .[demo]" in text
    args = parser.parse_args([])
    assert args.host == "127.0.0.1" and args.share is False and args.resolution is None and args.port == 7860
    with pytest.raises(SystemExit):
        parser.parse_args(["--tiny", "--ckpt", "x"])  # one model or the other


def test_missing_gradio_is_one_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "gradio", None)  # `import gradio` now raises ImportError
    with pytest.raises(app.UsageError, match=r"pip install -e \.\[demo\]"):
        app.main(["--tiny", "--port", "0"])


def test_bad_options_are_usage_errors():
    with pytest.raises(app.UsageError, match="--resolution must be at least 64"):
        app.main(["--tiny", "--resolution", "32"])
    with pytest.raises(app.UsageError, match="--steps must be between 1"):
        app.main(["--tiny", "--steps", "500"])


def test_nothing_else_imports_gradio():
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "import app, edit_cli, evaluate, tasks, ldm.inference, ldm.answers, evaluation, instructcv;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'gradio'))"
    )
    out = subprocess.run([sys.executable, "-c", code, str(REPO)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"


def test_ckpt_goes_through_the_cli_loader(tmp_path):
    """--ckpt takes what edit_cli.py takes: here a diffusers folder of the tiny model, and a missing file."""
    from diffusers import StableDiffusionInstructPix2PixPipeline

    from ldm.components import build_random_components
    from ldm.sampling import make_scheduler

    c = build_random_components("tiny", seed=0)
    StableDiffusionInstructPix2PixPipeline(
        vae=c.vae, text_encoder=c.text_encoder, tokenizer=c.tokenizer, unet=c.unet,
        scheduler=make_scheduler("euler_ancestral", c.scheduler_config),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    ).save_pretrained(tmp_path / "model")
    model = app.load_model(app.build_parser().parse_args(["--ckpt", str(tmp_path / "model"), "--device", "cpu"]))
    unet = model.components.unet
    assert unet.config.in_channels == 8 and model.device.type == "cpu"
    assert all(a.equal(b) for a, b in zip(unet.state_dict().values(), c.unet.state_dict().values(), strict=True))
    with pytest.raises(app.UsageError, match="missing.safetensors"):
        app.load_model(app.build_parser().parse_args(["--ckpt", str(tmp_path / "missing.safetensors")]))


def test_classification_with_an_unknown_colour_says_which(photo):
    got = app.decode_answer(photo, photo, "Show chartreuse if there is a cat in the picture, otherwise show green.")
    assert got.task == "cls" and "unknown colour 'chartreuse'" in got.summary and "Peru" in got.summary
    palette = Image.new("RGB", photo.size, (188, 143, 143))  # RosyBrown
    got = app.decode_answer(palette, photo, "Show rosy brown if there is a cat in the picture, otherwise show Aqua.")
    assert "present" in got.summary and "unreadable" not in got.summary
