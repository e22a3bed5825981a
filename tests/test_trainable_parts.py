"""ldm.model / main.py for a model trained from scratch: trainable VAE / text encoder, v-prediction, scale_by_std.

The parts listed in ``trainable`` (and only they) change and are in the optimiser; a trained VAE learns its
first-stage loss; a trained text encoder is never cached; the v-prediction target is checked against the
hand formula from the betas; ``scale_by_std`` fits 1 / std of the first batch's target latents and that
value travels through the checkpoint, a resume and the export; config mistakes are one-line usage errors.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from test_train_data import TINY_VAE_8X, new_datamodule, new_model, write_pairs

import main as main_py
from instructcv.cli import run as cli_run
from ldm.components import build_random_components
from ldm.loading import load_components
from ldm.model import InstructCVModel

REPO = Path(__file__).resolve().parents[1]
TINY = str(REPO / "configs" / "tiny.yaml")
QUIET = ["lightning.callbacks.image_every_n_steps=0"]

pytestmark = pytest.mark.filterwarnings("ignore:Found .* module")


@pytest.fixture(autouse=True)
def no_pinned_run_dir(one_torch_thread, monkeypatch):
    """One torch thread, and no INSTRUCTCV_RUN_DIR from the environment deciding the run folder."""
    monkeypatch.delenv(main_py.RUN_DIR_ENV, raising=False)


@pytest.fixture(scope="module")
def pairs(tmp_path_factory) -> Path:
    return write_pairs(tmp_path_factory.mktemp("trainable") / "image_pairs", n=8)


def tiny_components(**schedule):
    comps = build_random_components("tiny", seed=0, overrides=TINY_VAE_8X)
    comps.scheduler_config.update(schedule)
    return comps


def first_batch(comps, pairs: Path) -> dict:
    dm = new_datamodule(comps, [pairs], resolution=64, batch_size=4, num_workers=0, flip=False)
    dm.setup()
    return next(iter(dm.train_dataloader()))


def snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def unchanged(module: torch.nn.Module, before: dict[str, torch.Tensor]) -> bool:
    return all(torch.equal(v, before[k]) for k, v in module.state_dict().items())


def changed_params(module: torch.nn.Module, before: dict[str, torch.Tensor]) -> list[str]:
    return [k for k, p in module.named_parameters() if not torch.equal(p, before[k])]


def optimised_ids(trainer: pl.Trainer) -> set[int]:
    return {id(p) for group in trainer.optimizers[0].param_groups for p in group["params"]}


class ModeProbe(pl.Callback):
    """Which parts are in training mode while training runs."""

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.modes = {name: getattr(pl_module, name).training for name in ("unet", "vae", "text_encoder")}


def fit(model: InstructCVModel, comps, pairs: Path, steps: int, callbacks=()) -> pl.Trainer:
    dm = new_datamodule(comps, [pairs], resolution=64, batch_size=4, num_workers=0, flip=False)
    trainer = pl.Trainer(accelerator="cpu", max_steps=steps, overfit_batches=1, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         num_sanity_val_steps=0, limit_val_batches=0, callbacks=list(callbacks))
    trainer.fit(model, datamodule=dm)
    assert trainer.global_step == steps
    return trainer


def final_norm(text_encoder: torch.nn.Module) -> torch.nn.LayerNorm:
    """CLIP's last LayerNorm (``text_model.final_layer_norm`` or, in newer transformers, ``final_layer_norm``)."""
    return next(m for name, m in text_encoder.named_modules() if name.endswith("final_layer_norm"))


def hand_alphas_cumprod() -> torch.Tensor:
    """SD v1.5's scaled_linear schedule, from the numbers alone (float64)."""
    betas = torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=torch.float64) ** 2
    return torch.cumprod(1.0 - betas, dim=0)


# ---- which parts train ------------------------------------------------------------------------


def test_invalid_trainable_is_a_value_error():
    comps = tiny_components()
    for bad in (("unet", "clip"), (), ["decoder"]):
        with pytest.raises(ValueError, match="trainable"):
            new_model(comps, trainable=bad, use_ema=False)
    model = new_model(comps, trainable=["text_encoder", "unet"], use_ema=False)
    assert model.trainable == ("unet", "text_encoder")  # a known order whatever the config's


def test_cached_latents_with_a_trained_encoder_raise(pairs):
    cached = {"input_mode": torch.zeros(2, 4, 8, 8), "target_mean": torch.zeros(2, 4, 8, 8),
              "target_std": torch.ones(2, 4, 8, 8), "text_embedding": torch.zeros(2, 77, 32), "key": ["a", "b"]}
    comps = tiny_components()
    frozen = new_model(comps, use_ema=False)
    assert frozen.batch_latents(cached)[1].shape == (2, 4, 8, 8)  # the cache itself is fine with frozen encoders
    with pytest.raises(ValueError, match="latent cache"):
        new_model(comps, trainable=("unet", "text_encoder"), use_ema=False).batch_latents(cached)
    with pytest.raises(ValueError, match="cache_latents"):
        new_model(comps, trainable=("vae",), use_ema=False).training_step(cached, 0)


def test_autoencoder_loss_by_hand(pairs):
    """Reconstruction MSE of a posterior sample + vae_kl_weight x KL(q || N(0, 1)) per latent value."""
    comps = tiny_components()
    model = new_model(comps, trainable=("vae",), use_ema=False, vae_kl_weight=0.5)
    batch = first_batch(comps, pairs)
    images = torch.cat([batch["input"], batch["target"]])
    with torch.no_grad():
        posterior = model.vae.encode(images).latent_dist
        model._generator = torch.Generator().manual_seed(5)
        loss = model.autoencoder_loss(images, posterior)
        mean, logvar = posterior.mean, posterior.logvar
        noise = torch.randn(mean.shape, generator=torch.Generator().manual_seed(5))
        reconstruction = model.vae.decode(mean + torch.exp(0.5 * logvar) * noise).sample
        kl = 0.5 * (mean ** 2 + logvar.exp() - 1.0 - logvar).mean()
    assert kl > 0.01  # the KL term is really part of what is compared
    torch.testing.assert_close(loss, ((reconstruction - images) ** 2).mean() + 0.5 * kl, rtol=1e-5, atol=1e-6)


VAE_STEPS = 40


def test_trainable_vae_alone_learns_and_leaves_the_rest_untouched(pairs):
    comps = tiny_components()
    model = new_model(comps, trainable=("vae",), lr=1e-3, use_ema=True)
    batch = first_batch(comps, pairs)
    images = torch.cat([batch["input"], batch["target"]])

    def reconstruction_error() -> float:  # independent of the training loss: decode the posterior mode
        with torch.no_grad():
            return F.mse_loss(model.vae.decode(model.vae.encode(images).latent_dist.mode()).sample, images).item()

    unet, text_encoder, vae, ema = (snapshot(m) for m in (model.unet, model.text_encoder, model.vae, model.ema))
    before = reconstruction_error()
    probe = ModeProbe()
    trainer = fit(model, comps, pairs, VAE_STEPS, [probe])
    after = reconstruction_error()

    assert after <= 0.6 * before, (before, after)
    assert unchanged(model.unet, unet) and unchanged(model.text_encoder, text_encoder)
    assert unchanged(model.ema, ema) and int(model.ema.num_updates) == 0  # no EMA while the UNet is frozen
    assert changed_params(model.vae, vae) == [k for k, _ in model.vae.named_parameters()]  # every VAE weight
    assert optimised_ids(trainer) == {id(p) for p in model.vae.parameters()}
    assert probe.modes == {"unet": False, "vae": True, "text_encoder": False}


def test_trainable_text_encoder_trains_with_the_unet(pairs):
    comps = tiny_components()
    model = new_model(comps, trainable=("unet", "text_encoder"), lr=1e-3, use_ema=True, cond_drop_prob=0.2)
    unet, text_encoder, vae = (snapshot(m) for m in (model.unet, model.text_encoder, model.vae))
    probe = ModeProbe()
    trainer = fit(model, comps, pairs, 3, [probe])

    assert changed_params(model.text_encoder, text_encoder) and changed_params(model.unet, unet)
    assert unchanged(model.vae, vae)
    assert int(model.ema.num_updates) == 3
    assert optimised_ids(trainer) == {id(p) for m in (model.unet, model.text_encoder) for p in m.parameters()}
    assert probe.modes == {"unet": True, "vae": False, "text_encoder": True}
    assert model._empty_text is None  # never cached


def test_empty_text_embedding_is_recomputed_only_for_a_trained_text_encoder():
    trained = new_model(tiny_components(), trainable=("unet", "text_encoder"), use_ema=False)
    frozen = new_model(tiny_components(), use_ema=False)
    for model in (trained, frozen):
        first = model.empty_text_embedding()
        with torch.no_grad():
            final_norm(model.text_encoder).bias.add_(1.0)  # every output value + 1
        model.second = model.empty_text_embedding()
        model.first = first
    torch.testing.assert_close(trained.second, trained.first + 1.0)
    assert frozen.second is frozen.first  # frozen: computed once

    # dropped text learns too: with every instruction dropped, the gradient reaches the text encoder
    model = new_model(tiny_components(), trainable=("unet", "text_encoder"), use_ema=False, cond_drop_prob=0.5)
    model._generator = torch.Generator().manual_seed(0)
    g = torch.Generator().manual_seed(1)
    loss = model.diffusion_loss(torch.randn(2, 4, 8, 8, generator=g), torch.randn(2, 4, 8, 8, generator=g),
                                torch.randn(2, 77, 32, generator=g))
    loss.backward()
    grad = final_norm(model.text_encoder).weight.grad
    assert grad is not None and grad.abs().sum() > 0


# ---- what the UNet predicts -----------------------------------------------------------------


def test_prediction_targets_by_hand():
    g = torch.Generator().manual_seed(0)
    x0, noise = torch.randn(6, 4, 8, 8, generator=g), torch.randn(6, 4, 8, 8, generator=g)
    t = torch.tensor([0, 1, 250, 500, 998, 999])
    a = hand_alphas_cumprod()[t].float()[:, None, None, None]
    v = new_model(tiny_components(prediction_type="v_prediction"), use_ema=False).prediction_target(x0, noise, t)
    torch.testing.assert_close(v, a.sqrt() * noise - (1 - a).sqrt() * x0, rtol=1e-5, atol=1e-5)
    assert torch.equal(new_model(tiny_components(), use_ema=False).prediction_target(x0, noise, t), noise)
    sample = new_model(tiny_components(prediction_type="sample"), use_ema=False)
    assert torch.equal(sample.prediction_target(x0, noise, t), x0)


def test_v_prediction_loss_regresses_the_velocity(monkeypatch):
    """With a UNet answering zeros the loss is mean(v^2), v recovered from what the UNet was shown."""
    model = new_model(tiny_components(prediction_type="v_prediction"), use_ema=False, cond_drop_prob=0.0)
    seen = {}

    def zeros(sample, timesteps, encoder_hidden_states):
        seen["noisy"], seen["t"] = sample[:, :4].double(), timesteps
        return type("Out", (), {"sample": torch.zeros_like(sample[:, :4])})()

    monkeypatch.setattr(model.unet, "forward", zeros)
    g = torch.Generator().manual_seed(3)
    x0 = torch.randn(8, 4, 8, 8, generator=g)
    model._generator = torch.Generator().manual_seed(4)
    loss = model.diffusion_loss(torch.randn(8, 4, 8, 8, generator=g), x0, torch.randn(8, 77, 32, generator=g))
    a = hand_alphas_cumprod()[seen["t"]][:, None, None, None]
    noise = (seen["noisy"] - a.sqrt() * x0.double()) / (1 - a).sqrt()
    v = a.sqrt() * noise - (1 - a).sqrt() * x0.double()
    assert loss.item() == pytest.approx((v ** 2).mean().item(), rel=1e-4)
    assert abs(loss.item() - (noise ** 2).mean().item()) > 0.01  # not the epsilon loss


# ---- main.py ----------------------------------------------------------------------------------


def train_args(logdir: Path, pairs: Path, *overrides: str) -> list[str]:
    return ["--name", "scratch", "--base", TINY, "--train", "--accelerator", "cpu", "--logdir", str(logdir),
            f"data.params.pairs=[{pairs}]", *QUIET, *overrides]


def only_run(logdir: Path) -> Path:
    runs = [p for p in logdir.iterdir() if p.is_dir()]
    assert len(runs) == 1, runs
    return runs[0]


def record_first_batch(monkeypatch) -> dict:
    """Keep a copy of the first training batch, the scaling factor and the target kind it trained with."""
    seen = {}
    original = InstructCVModel.training_step

    def probe(self, batch, batch_idx):
        if "batch" not in seen:
            seen["batch"] = {k: v.clone() if torch.is_tensor(v) else v for k, v in batch.items()}
            seen["scale"] = self.vae.config.scaling_factor
            seen["prediction_type"] = self.noise_scheduler.config.prediction_type
        seen["steps"] = seen.get("steps", 0) + 1
        return original(self, batch, batch_idx)

    monkeypatch.setattr(InstructCVModel, "training_step", probe)
    return seen


@pytest.mark.parametrize(("overrides", "expected"), [
    (["model.params.scheduler_overrides.beta_ends=0.02"], "scheduler_overrides: unknown beta_ends"),
    (["model.params.scheduler_overrides.prediction_type=v-prediction"], "prediction_type=v-prediction"),
    (["data.params.cache_latents=true", "model.params.trainable=[vae]"], "cache_latents=true needs a frozen VAE"),
    (["data.params.cache_latents=true", "model.params.trainable=[unet,text_encoder]"], "lists text_encoder"),
    (["model.params.scale_by_std=true", "model.params.trainable=[unet,vae]"], "scale_by_std"),
    (["model.params.trainable=[unet,clip]"], "model.params.trainable=['unet', 'clip']"),
])
def test_config_mistakes_are_one_line_errors_before_any_run_folder(tmp_path, pairs, capsys, overrides, expected):
    logdir = tmp_path / "logs"
    with pytest.raises(SystemExit) as exit_info:
        cli_run(main_py.main, train_args(logdir, pairs, *overrides))
    assert exit_info.value.code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and expected in errors[0], errors
    assert not logdir.exists() or not any(logdir.iterdir())  # checked before the run folder is made


def test_scale_by_std_fits_the_first_batch_and_survives_checkpoint_resume_and_export(tmp_path, pairs, monkeypatch):
    logdir = tmp_path / "logs"
    seen = record_first_batch(monkeypatch)
    # two batches per optimiser step: both run at global_step 0, only the first one may set the scale
    assert main_py.main(train_args(logdir, pairs, "model.params.scale_by_std=true", "lightning.trainer.max_steps=2",
                                   "lightning.trainer.accumulate_grad_batches=2")) == 0
    run = only_run(logdir)
    assert seen["steps"] == 4

    # 1 / std of the first batch's target latents, drawn as training draws them: posterior mean + std x
    # noise from the training generator, seeded by (seed 23 of configs/tiny.yaml, rank 0, step 0)
    vae = load_components(run).vae  # frozen: the weights the scale was fitted with
    batch = seen["batch"]
    with torch.no_grad():
        posterior = vae.encode(torch.cat([batch["input"], batch["target"]])).latent_dist
    n = len(batch["input"])
    seed = int(np.random.SeedSequence([23, 0, 0]).generate_state(1)[0])
    noise = torch.randn(posterior.mean[n:].shape, generator=torch.Generator().manual_seed(seed))
    expected = 1.0 / (posterior.mean[n:] + posterior.std[n:] * noise).std().item()
    assert seen["scale"] == pytest.approx(expected, rel=1e-5)  # the very first loss already used it
    assert abs(expected - 0.18215) > 0.01 and abs(expected - 1.0) > 0.01  # neither SD's value nor unscaled

    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True, map_location="cpu")
    assert ckpt["instructcv"]["architecture"]["vae"]["scaling_factor"] == pytest.approx(expected, rel=1e-5)
    assert vae.config.scaling_factor == pytest.approx(expected, rel=1e-5)
    assert json.loads((run / "export" / "vae" / "config.json").read_text())["scaling_factor"] == pytest.approx(
        expected, rel=1e-5)
    assert load_components(run / "export").vae.config.scaling_factor == pytest.approx(expected, rel=1e-5)

    # a resumed run neither refits nor forgets it
    seen.clear()
    assert main_py.main(train_args(logdir, pairs, "--resume", str(run), "model.params.scale_by_std=true",
                                   "lightning.trainer.max_steps=3", "lightning.export_on_end=false")) == 0
    assert seen["scale"] == pytest.approx(expected, rel=1e-5)
    resumed = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True, map_location="cpu")
    assert resumed["global_step"] == 3
    assert resumed["instructcv"]["architecture"]["vae"]["scaling_factor"] == pytest.approx(expected, rel=1e-5)


def test_v_prediction_schedule_trains_and_is_saved(tmp_path, pairs, monkeypatch):
    logdir = tmp_path / "logs"
    seen = record_first_batch(monkeypatch)
    assert main_py.main(train_args(logdir, pairs, "model.params.scheduler_overrides.prediction_type=v_prediction",
                                   "lightning.trainer.max_steps=1")) == 0
    run = only_run(logdir)
    assert seen["prediction_type"] == "v_prediction"
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True, map_location="cpu")
    schedule = ckpt["instructcv"]["scheduler_config"]
    assert schedule["prediction_type"] == "v_prediction" and schedule["beta_schedule"] == "scaled_linear"
    assert ckpt["instructcv"]["config"]["model"]["params"]["scheduler_overrides"] == {"prediction_type": "v_prediction"}
    assert load_components(run).scheduler_config["prediction_type"] == "v_prediction"
    exported = json.loads((run / "export" / "scheduler" / "scheduler_config.json").read_text())
    assert exported["prediction_type"] == "v_prediction"  # the sampler of the export predicts v as well
    assert load_components(run / "export").scheduler_config["prediction_type"] == "v_prediction"
