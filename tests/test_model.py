"""ldm.model / ldm.ema: CFG dropout, the learning-rate schedule, zero-initialised conv_in channels, EMA arithmetic,
overfitting one batch."""

from __future__ import annotations

import math
from functools import partial

import pytest
import pytorch_lightning as pl
import torch
from test_train_data import TINY_VAE_8X, new_datamodule, new_model, write_pairs

from ldm.components import build_random_components, widen_conv_in
from ldm.ema import EMA, ema_decay
from ldm.model import cfg_dropout_masks, lr_factor

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_cfg_dropout_bands_by_hand():
    u = torch.tensor([0.0, 0.049, 0.05, 0.099, 0.10, 0.149, 0.15, 0.9])
    drop_text, drop_image = cfg_dropout_masks(u, 0.05)
    assert drop_text.tolist() == [True, True, True, True, False, False, False, False]
    assert drop_image.tolist() == [False, False, True, True, True, True, False, False]


def test_cfg_dropout_frequencies_over_10k_draws():
    u = torch.rand(10_000, generator=torch.Generator().manual_seed(0))
    drop_text, drop_image = cfg_dropout_masks(u, 0.05)
    freq = {
        "text only": (drop_text & ~drop_image).float().mean().item(),
        "both": (drop_text & drop_image).float().mean().item(),
        "image only": (~drop_text & drop_image).float().mean().item(),
        "none": (~drop_text & ~drop_image).float().mean().item(),
    }
    # binomial standard deviation at p=0.05, n=10k is 0.22 %; allow ~4.5 sigma
    for band in ("text only", "both", "image only"):
        assert abs(freq[band] - 0.05) < 0.01, freq
    assert abs(freq["none"] - 0.85) < 0.015, freq


def test_model_applies_the_dropout_it_draws(monkeypatch):
    """What reaches the UNet: empty-prompt embedding / zero image latent exactly where the masks say."""
    comps = build_random_components("tiny", seed=0)
    model = new_model(comps, use_ema=False, cond_drop_prob=0.2)
    seen = {}

    def spy(sample, timesteps, encoder_hidden_states):
        seen["image"], seen["text"] = sample[:, 4:], encoder_hidden_states
        return type("Out", (), {"sample": torch.zeros_like(sample[:, :4])})()

    monkeypatch.setattr(model.unet, "forward", spy)
    b = 64
    image, target = torch.randn(b, 4, 4, 4) + 3.0, torch.randn(b, 4, 4, 4)  # image latents never zero
    text = torch.randn(b, 77, 32) + 5.0
    model._generator = torch.Generator().manual_seed(7)
    model.diffusion_loss(image, target, text)
    drop_text, drop_image = cfg_dropout_masks(torch.rand(b, generator=torch.Generator().manual_seed(7)), 0.2)
    assert 0 < drop_text.sum() < b and 0 < drop_image.sum() < b
    empty = model.empty_text_embedding()
    for i in range(b):
        assert torch.equal(seen["text"][i], empty if drop_text[i] else text[i])
        assert torch.equal(seen["image"][i], torch.zeros_like(image[i]) if drop_image[i] else image[i])


def test_widened_conv_in_starts_at_zero_and_keeps_the_output():
    comps4 = build_random_components("tiny", seed=2, overrides={"unet": {"in_channels": 4}})
    g = torch.Generator().manual_seed(0)
    latents, image_latents = torch.randn(2, 4, 8, 8, generator=g), torch.randn(2, 4, 8, 8, generator=g)
    text, t = torch.randn(2, 77, 32, generator=g), torch.tensor([10, 900])
    with torch.no_grad():
        before = comps4.unet(latents, t, text).sample
    old_weight = comps4.unet.conv_in.weight.clone()
    unet8 = widen_conv_in(comps4.unet, 8)
    assert unet8.conv_in.weight.shape[1] == 8 and unet8.config.in_channels == 8
    assert torch.count_nonzero(unet8.conv_in.weight[:, 4:]) == 0
    assert torch.equal(unet8.conv_in.weight[:, :4], old_weight)
    model = new_model(comps4, use_ema=True)  # the model's UNet and its EMA start from that
    with torch.no_grad():
        for unet in (model.unet, model.ema.model):
            after = unet(torch.cat([latents, image_latents], 1), t, text).sample
            torch.testing.assert_close(after, before, rtol=1e-5, atol=1e-5)


def test_ema_update_by_hand():
    assert ema_decay(0.9999, 1) == pytest.approx(2 / 11)
    assert ema_decay(0.9999, 10**6) == 0.9999 and ema_decay(0.5, 1, warmup=False) == 0.5
    net = torch.nn.Linear(3, 2)
    ema = EMA(net, decay=0.9)
    start = ema.model.weight.clone()
    with torch.no_grad():
        net.weight.add_(1.0)
    d = ema.update(net)
    assert d == pytest.approx(2 / 11) and int(ema.num_updates) == 1
    torch.testing.assert_close(ema.model.weight, d * start + (1 - d) * net.weight)
    assert not any(p.requires_grad for p in ema.model.parameters())


STEPS = 60  # the bar is 150 steps; at lr 1e-3 the tiny model gets there in ~30


def test_one_fixed_batch_overfits(tmp_path):
    """Loss on one fixed batch (same latents, noise and timesteps when measured) halves well within 150 steps."""
    comps = build_random_components("tiny", seed=0, overrides=TINY_VAE_8X)
    model = new_model(comps, lr=1e-3, use_ema=True, ema_decay=0.99)
    dm = new_datamodule(comps, [write_pairs(tmp_path / "pairs", n=4)], resolution=64, batch_size=4,
                         num_workers=0, flip=False)
    dm.setup()
    batch = next(iter(dm.train_dataloader()))

    def fixed_loss() -> float:
        losses = []
        with torch.no_grad():
            for seed in range(4):
                model._generator = torch.Generator().manual_seed(1000 + seed)
                losses.append(model.diffusion_loss(*model.batch_latents(batch)).item())
        model._generator = None
        return sum(losses) / len(losses)

    before = fixed_loss()
    trainer = pl.Trainer(accelerator="cpu", max_steps=STEPS, overfit_batches=1, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         num_sanity_val_steps=0, limit_val_batches=0)
    trainer.fit(model, datamodule=dm)
    after = fixed_loss()
    assert trainer.global_step == STEPS
    assert after <= 0.5 * before, (before, after)
    assert int(model.ema.num_updates) == STEPS  # one EMA update per optimiser step


def test_cosine_learning_rate_by_hand():
    """Warm-up 10 steps, then half a cosine to 0 at step 110: hand-worked factors."""
    f = partial(lr_factor, warmup=10, decay="cosine", total=110)
    assert f(0) == pytest.approx(0.1) and f(4) == pytest.approx(0.5) and f(9) == pytest.approx(1.0)
    assert f(10) == pytest.approx(1.0)
    assert f(35) == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))  # a quarter of the way: 0.8536
    assert f(60) == pytest.approx(0.5)
    assert f(110) == pytest.approx(0.0, abs=1e-12) and f(500) == pytest.approx(0.0, abs=1e-12)
    constant = partial(lr_factor, warmup=10, decay="constant", total=110)
    assert constant(4) == pytest.approx(0.5) and constant(60) == 1.0 and constant(500) == 1.0
    assert lr_factor(0, warmup=0, decay="cosine", total=100) == 1.0


def test_cosine_schedule_reaches_the_optimizer(tmp_path):
    """What AdamW is given over a short run: the hand-worked factors times lr, ending at 0."""
    comps = build_random_components("tiny", seed=0)
    model = new_model(comps, use_ema=False, lr=1e-3, lr_warmup_steps=2, lr_decay="cosine")
    seen = []

    class Spy(pl.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            seen.append(trainer.optimizers[0].param_groups[0]["lr"])

    write_pairs(tmp_path / "pairs", n=4)
    trainer = pl.Trainer(max_steps=6, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, callbacks=[Spy()])
    trainer.fit(model, datamodule=new_datamodule(comps, [tmp_path / "pairs"], batch_size=2, resolution=64,
                                                 num_workers=0, preview_count=0))
    expected = [1e-3 * lr_factor(s, warmup=2, decay="cosine", total=6) for s in range(6)]
    assert seen == pytest.approx(expected)
    assert expected[0] == pytest.approx(5e-4) and expected[-1] == pytest.approx(1e-3 * 0.5 * (1 + math.cos(0.75 * math.pi)))


def test_unknown_lr_decay_is_refused():
    with pytest.raises(ValueError, match="unknown lr_decay 'linear'; one of constant, cosine"):
        new_model(build_random_components("tiny", seed=0), lr_decay="linear")
