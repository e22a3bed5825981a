"""ldm.sampling: the two-way guidance formula, the guidance batch layout, schedulers, per-row generators."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from ldm.components import DDPM_SCHEDULE, build_random_components
from ldm.sampling import SCHEDULERS, guided_noise, make_scheduler, needs_guidance, sample, two_way_cfg


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """2 cores shared by several test runs: one thread each is ~10x faster than oversubscribed OpenMP."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_two_way_cfg_hand_worked():
    text, image, uncond = torch.tensor(10.0), torch.tensor(3.0), torch.tensor(1.0)
    # 1 + 2 * (10 - 3) + 0.5 * (3 - 1) = 16
    assert two_way_cfg(text, image, uncond, cfg_text=2.0, cfg_image=0.5).item() == 16.0
    # both scales 1: exactly the text-and-image prediction; text scale 0, image scale 1: the image-only one
    assert two_way_cfg(text, image, uncond, 1.0, 1.0).item() == 10.0
    assert two_way_cfg(text, image, uncond, 0.0, 1.0).item() == 3.0
    assert not needs_guidance(1.0, 1.0) and needs_guidance(7.5, 1.5) and needs_guidance(1.0, 1.5)


class RecordingUNet(torch.nn.Module):
    """Returns a noise that identifies each row: sum of its image latent + mean of its text embedding."""

    class config:  # noqa: N801 - mimics diffusers' config attribute
        out_channels = 4

    def __init__(self):
        super().__init__()
        self.calls = []

    def forward(self, x, t, encoder_hidden_states, return_dict=False):
        self.calls.append((x.clone(), encoder_hidden_states.clone()))
        row = x[:, 4:].sum(dim=(1, 2, 3)) + encoder_hidden_states.mean(dim=(1, 2))
        return (row[:, None, None, None].expand(-1, 4, *x.shape[-2:]).clone(),)


def test_guided_noise_batch_order_is_text_image_then_image_then_none():
    unet = RecordingUNet()
    b = 2
    latents = torch.randn(b, 4, 3, 3)
    image_latents = torch.rand(b, 4, 3, 3) + 1.0
    text, empty = torch.full((b, 5, 6), 2.0), torch.full((b, 5, 6), -1.0)
    out = guided_noise(unet, latents, torch.tensor(10), image_latents, text, empty, cfg_text=7.5, cfg_image=1.5)

    (x, embeds), = unet.calls
    assert x.shape == (3 * b, 8, 3, 3)
    for k in range(3):
        assert torch.equal(x[k * b : (k + 1) * b, :4], latents)
    assert torch.equal(x[:b, 4:], image_latents) and torch.equal(x[b : 2 * b, 4:], image_latents)
    assert torch.count_nonzero(x[2 * b :, 4:]) == 0
    assert torch.equal(embeds[:b], text) and torch.equal(embeds[b:2 * b], empty) and torch.equal(embeds[2 * b:], empty)
    # the combination follows from the row identities computed independently
    img_sum = image_latents.sum(dim=(1, 2, 3))
    n_text, n_image, n_uncond = img_sum + 2.0, img_sum - 1.0, torch.full_like(img_sum, -1.0)
    expected = n_uncond + 7.5 * (n_text - n_image) + 1.5 * (n_image - n_uncond)
    assert torch.allclose(out[:, 0, 0, 0], expected)


def test_guided_noise_without_guidance_is_one_pass():
    unet = RecordingUNet()
    latents, image_latents = torch.randn(1, 4, 2, 2), torch.rand(1, 4, 2, 2)
    guided_noise(unet, latents, torch.tensor(1), image_latents, torch.ones(1, 5, 6), torch.zeros(1, 5, 6), 1.0, 1.0)
    assert len(unet.calls) == 1 and unet.calls[0][0].shape[0] == 1


@pytest.mark.parametrize("name", sorted(SCHEDULERS))
def test_every_scheduler_builds_on_the_training_schedule(name):
    config = DDPM_SCHEDULE
    if name == "lms" and importlib.util.find_spec("scipy") is None:
        with pytest.raises(ValueError, match="scipy"):
            make_scheduler(name, config)
        return
    scheduler = make_scheduler(name, {**config, "_class_name": "DDPMScheduler"})
    assert type(scheduler).__name__ == SCHEDULERS[name]
    assert scheduler.config.num_train_timesteps == 1000 and scheduler.config.beta_schedule == "scaled_linear"


def test_unknown_scheduler_names_the_choices():
    with pytest.raises(ValueError, match="euler_ancestral"):
        make_scheduler("euler_fancy", {})


@pytest.fixture(scope="module")
def tiny():
    c = build_random_components("tiny", seed=0)
    c.unet.eval()
    return c


@pytest.mark.parametrize("scheduler", ["euler_ancestral", "dpmpp"])
def test_each_row_depends_only_on_its_own_generator(tiny, scheduler):
    """Row 1 of a batch of 3 equals the same inputs sampled alone with an equally seeded generator."""
    g = torch.Generator().manual_seed(0)
    image_latents = torch.randn(3, 4, 8, 8, generator=g)
    text = torch.randn(3, 77, 32, generator=g)
    empty = torch.randn(1, 77, 32, generator=g).expand(3, -1, -1)
    with torch.inference_mode():
        batch = sample(tiny.unet, make_scheduler(scheduler, tiny.scheduler_config), image_latents, text, empty,
                       [torch.Generator().manual_seed(s) for s in (5, 7, 9)], steps=4)
        alone = sample(tiny.unet, make_scheduler(scheduler, tiny.scheduler_config), image_latents[1:2], text[1:2],
                       empty[1:2], [torch.Generator().manual_seed(7)], steps=4)
        other_seed = sample(tiny.unet, make_scheduler(scheduler, tiny.scheduler_config), image_latents[1:2],
                            text[1:2], empty[1:2], [torch.Generator().manual_seed(8)], steps=4)
    assert torch.allclose(batch[1:2], alone, atol=1e-4)
    assert (other_seed - alone).abs().mean() > 0.05  # the seed matters, so the check above can fail


def test_sample_rejects_a_missing_generator(tiny):
    with pytest.raises(ValueError, match="one generator per image"):
        sample(tiny.unet, make_scheduler("euler", tiny.scheduler_config), torch.zeros(2, 4, 4, 4),
               torch.zeros(2, 77, 32), torch.zeros(2, 77, 32), [torch.Generator()], steps=2)


def test_latents_stay_float32_when_the_unet_runs_bf16(tiny):
    """The scheduler's arithmetic runs in float32; only the UNet sees bf16 (and its output is upcast)."""
    import copy

    unet = copy.deepcopy(tiny.unet).to(torch.bfloat16)
    g = torch.Generator().manual_seed(0)
    image_latents = torch.randn(1, 4, 8, 8, generator=g).to(torch.bfloat16)
    text = torch.randn(1, 77, 32, generator=g).to(torch.bfloat16)
    seen: list[torch.dtype] = []
    with torch.inference_mode():
        out = sample(unet, make_scheduler("euler_ancestral", tiny.scheduler_config), image_latents, text, text,
                     [torch.Generator().manual_seed(1)], steps=3, on_step=lambda i, x: seen.append(x.dtype))
        ref = sample(tiny.unet, make_scheduler("euler_ancestral", tiny.scheduler_config), image_latents.float(),
                     text.float(), text.float(), [torch.Generator().manual_seed(1)], steps=3)
    assert seen == [torch.float32] * 3 and out.dtype == torch.float32
    assert (out - ref).abs().max() < 0.1 * ref.abs().max()  # bf16 UNet, same trajectory up to rounding


def test_training_schedule_samples_from_t999():
    scheduler = make_scheduler("euler_ancestral", DDPM_SCHEDULE)
    scheduler.set_timesteps(20)
    assert int(scheduler.timesteps[0]) == 999
