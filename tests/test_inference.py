"""ldm.inference.InstructCV: equal to diffusers' InstructPix2Pix pipeline, batch-invariant, safe loading."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers import StableDiffusionInstructPix2PixPipeline
from PIL import Image

from instructcv.images import ImageReadError
from ldm.components import build_random_components
from ldm.inference import InstructCV, fit_image, processed_size, resolve_dtype
from ldm.sampling import make_scheduler

# The tiny test model with one more VAE level (latents 1/4 of the image): 16x fewer attention
# tokens than the stock tiny model at the same image size, so tests stay fast on 2 shared cores.
FAST_TINY = {
    "vae": {
        "block_out_channels": [16, 32, 32],
        "down_block_types": ["DownEncoderBlock2D"] * 3,
        "up_block_types": ["UpDecoderBlock2D"] * 3,
    }
}
STEPS = 6


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """2 cores shared by several test runs: one thread each is ~10x faster than oversubscribed OpenMP."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def pipeline_of(components, scheduler="euler_ancestral") -> StableDiffusionInstructPix2PixPipeline:
    pipe = StableDiffusionInstructPix2PixPipeline(
        vae=components.vae,
        text_encoder=components.text_encoder,
        tokenizer=components.tokenizer,
        unet=components.unet,
        scheduler=make_scheduler(scheduler, components.scheduler_config),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="module")
def model() -> InstructCV:
    return InstructCV.from_components(build_random_components("tiny", seed=0, overrides=FAST_TINY), device="cpu")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, model) -> str:
    """The tiny model saved as a diffusers folder (what main.py --export and the hub give)."""
    path = tmp_path_factory.mktemp("tiny_model") / "model"
    pipeline_of(model.components).save_pretrained(path)
    return str(path)


def photo(width: int, height: int, seed: int = 0) -> Image.Image:
    """A smooth random picture (upsampled noise), so that resizing it is not trivial."""
    small = np.random.default_rng(seed).integers(0, 256, (max(2, height // 8), max(2, width // 8), 3), dtype=np.uint8)
    return Image.fromarray(small).resize((width, height), Image.Resampling.BICUBIC)


def as_int(img: Image.Image) -> np.ndarray:
    return np.asarray(img, dtype=np.int16)


@pytest.mark.parametrize(
    "size, resolution, expected",
    [
        ((640, 480), 512, (512, 384)),
        ((480, 640), 512, (384, 512)),
        ((500, 375), 512, (512, 384)),  # 375 * 512/500 = 384 exactly: no float rounding up to 448
        ((1000, 333), 512, (576, 192)),  # short side up to 192, long side 1000 * 192/333 = 576.6 -> 576
        ((64, 64), 64, (64, 64)),
        ((100, 70), 128, (128, 128)),
        ((10, 5000), 512, (64, 1024)),  # extreme panorama: long side capped at 2x resolution
    ],
)
def test_processed_size_follows_the_instructpix2pix_rule(size, resolution, expected):
    assert processed_size(size, resolution) == expected


def test_dtype_auto_is_fp32_on_cpu():
    assert resolve_dtype("auto", "cpu") is torch.float32
    assert resolve_dtype("bf16", "cpu") is torch.bfloat16
    with pytest.raises(ValueError, match="fp32"):
        resolve_dtype("fp8", "cpu")


def test_equals_diffusers_pipeline_and_comes_back_at_the_original_size(model):
    """Same model, seed, steps and guidance: our answer is diffusers' answer (<= 1/255), resized back."""
    image = photo(100, 70, seed=1)
    fitted = fit_image(image, 128)
    assert fitted.size == (128, 128)
    expected = pipeline_of(model.components)(
        "Segment the cat.", image=fitted, num_inference_steps=STEPS, guidance_scale=7.5, image_guidance_scale=1.5,
        generator=torch.Generator().manual_seed(3),
    ).images[0]
    expected = expected.resize(image.size, Image.Resampling.LANCZOS)

    ours = model(image, "Segment the cat.", steps=STEPS, cfg_text=7.5, cfg_image=1.5, resolution=128, seed=3,
                 progress=False)[0]
    assert ours.size == (100, 70) and ours.mode == "RGB"
    assert np.abs(as_int(ours) - as_int(expected)).max() <= 1
    assert as_int(ours).std() > 5  # a real picture, not a constant that would match trivially


def test_equals_diffusers_pipeline_with_another_scheduler(model):
    image = photo(64, 128, seed=2)
    expected = pipeline_of(model.components, "dpmpp")(
        "Estimate the depth.", image=image, num_inference_steps=STEPS, guidance_scale=5.0, image_guidance_scale=2.0,
        generator=torch.Generator().manual_seed(0),
    ).images[0]
    model.scheduler = "dpmpp"
    try:
        ours = model([image], "Estimate the depth.", steps=STEPS, cfg_text=5.0, cfg_image=2.0, resolution=128,
                     seed=0, progress=False)[0]
    finally:
        model.scheduler = "euler_ancestral"
    assert np.abs(as_int(ours) - as_int(expected)).max() <= 1


def test_same_image_and_seed_give_the_same_answer_whatever_the_batch(model):
    a, b, c, d = photo(64, 64, 10), photo(64, 64, 11), photo(128, 64, 12), photo(64, 64, 13)
    kwargs = dict(steps=STEPS, resolution=64, seed=7, progress=False)
    alone = model([a], "Detect the dog.", batch_size=1, **kwargs)[0]
    # a lands in a batch of three 64x64 images (c, of another shape, goes through on its own)
    mixed = model([b, c, a, d], "Detect the dog.", batch_size=4, **kwargs)
    assert [m.size for m in mixed] == [(64, 64), (128, 64), (64, 64), (64, 64)]
    assert np.abs(as_int(mixed[2]) - as_int(alone)).max() <= 1
    other_seed = model([a], "Detect the dog.", steps=STEPS, resolution=64, seed=8, progress=False)[0]
    assert np.abs(as_int(other_seed) - as_int(alone)).mean() > 2  # the seed matters, so the check can fail


def test_one_instruction_per_image_and_paths_as_input(model, tmp_path):
    path = tmp_path / "p.png"
    photo(64, 64, 20).save(path)
    kwargs = dict(steps=STEPS, resolution=64, seed=0, progress=False)
    both = model([str(path), photo(64, 64, 20)], ["Segment the sky.", "Detect the dog."], batch_size=2, **kwargs)
    sky = model([path], "Segment the sky.", **kwargs)[0]
    dog = model([path], "Detect the dog.", **kwargs)[0]
    assert np.abs(as_int(both[0]) - as_int(sky)).max() <= 1
    assert np.abs(as_int(both[1]) - as_int(dog)).max() <= 1
    assert np.abs(as_int(sky) - as_int(dog)).mean() > 1  # the instruction reaches the UNet


def test_bad_inputs_are_clear_errors(model, tmp_path):
    text = tmp_path / "notes.jpg"
    text.write_text("not a picture")
    with pytest.raises(ImageReadError, match="notes.jpg"):
        model([text], "Segment the cat.", steps=1, progress=False)
    with pytest.raises(ValueError, match="instruction is empty"):
        model([photo(64, 64)], "  ", steps=1, progress=False)
    with pytest.raises(ValueError, match="2 instructions for 1 images"):
        model([photo(64, 64)], ["a", "b"], steps=1, progress=False)


def test_from_pretrained_diffusers_folder_gives_the_same_answers(model, model_dir):
    loaded = InstructCV.from_pretrained(model_dir, device="cpu")
    image = photo(64, 64, 30)
    kwargs = dict(steps=3, resolution=64, seed=1, progress=False)
    assert np.array_equal(as_int(loaded(image, "Segment the cat.", **kwargs)[0]),
                          as_int(model(image, "Segment the cat.", **kwargs)[0]))


def test_folder_without_timestep_spacing_answers_like_the_diffusers_pipeline(model, tmp_path):
    """The released weights' scheduler config names no spacing: use diffusers' default (Euler ancestral from t=999)."""
    import json

    from diffusers import EulerAncestralDiscreteScheduler

    folder = tmp_path / "no_spacing"
    pipeline_of(model.components).save_pretrained(folder)
    config_path = folder / "scheduler" / "scheduler_config.json"
    config = json.loads(config_path.read_text())
    config.pop("timestep_spacing", None)
    config_path.write_text(json.dumps(config))

    loaded = InstructCV.from_pretrained(str(folder), device="cpu")
    assert "timestep_spacing" not in loaded.components.scheduler_config
    scheduler = make_scheduler("euler_ancestral", loaded.components.scheduler_config)
    scheduler.set_timesteps(100)
    assert int(scheduler.timesteps[0]) == 999  # like the original's k-diffusion sampler, not "leading"'s 991
    pipe = StableDiffusionInstructPix2PixPipeline.from_pretrained(folder, safety_checker=None,
                                                                  requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    assert isinstance(pipe.scheduler, EulerAncestralDiscreteScheduler)
    image = photo(64, 64, seed=4)
    expected = pipe("Detect the dog.", image=image, num_inference_steps=STEPS, guidance_scale=7.5,
                    image_guidance_scale=1.5, generator=torch.Generator().manual_seed(11)).images[0]
    ours = loaded(image, "Detect the dog.", steps=STEPS, cfg_text=7.5, cfg_image=1.5, resolution=64, seed=11,
                  progress=False)[0]
    assert np.abs(as_int(ours) - as_int(expected)).max() <= 1
    assert as_int(ours).std() > 5


class _Payload:
    """Unpickling this creates a directory: the proof that a pickle was executed."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.mkdir, (self.marker,))


def test_a_checkpoint_that_is_an_arbitrary_pickle_is_refused_not_executed(tmp_path):
    from instructcv.cli import UsageError

    marker = tmp_path / "executed"
    ckpt = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "hook": _Payload(str(marker))}, ckpt)
    with pytest.raises(UsageError, match="refused") as err:
        InstructCV.from_pretrained(ckpt, device="cpu")
    assert not marker.exists()
    assert "\n" not in str(err.value) and "evil.ckpt" in str(err.value)


def test_offline_hub_id_fails_at_once_with_one_line(monkeypatch):
    from instructcv.cli import UsageError

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UsageError) as err:
        InstructCV.from_pretrained("nobody-here/no-such-model-xyz", device="cpu")
    message = str(err.value)
    assert "\n" not in message and "nobody-here/no-such-model-xyz" in message and "local path" in message


def test_real_photos_are_answered_at_their_own_size(model, realdata):
    paths = sorted((realdata / "photos").rglob("*.[jp][pn]g"))
    assert len(paths) >= 3
    answers = model(paths, "Detect the dog.", steps=2, resolution=64, batch_size=3, progress=False)
    for path, answer in zip(paths, answers, strict=True):
        with Image.open(path) as original:
            assert answer.size == original.size and answer.mode == "RGB"
