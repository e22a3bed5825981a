"""The InstructPix2Pix-style training module: frozen VAE and text encoder, an 8-channel UNet, EMA.

One training step (``diffusion_loss``):

1. latents: the input image's *unscaled* VAE posterior mode (conditioning, concatenated to the UNet
   input) and a sample of the target's posterior times ``vae.config.scaling_factor`` (the diffused
   latent) -- from the images, or from the latent cache;
2. classifier-free-guidance dropout, one uniform draw per sample (``cfg_dropout_masks``);
3. DDPM noise at a uniform timestep (diffusers ``DDPMScheduler.add_noise``), MSE against the schedule's
   ``prediction_type`` target (``prediction_target``: SD v1.5's epsilon, or v_prediction / sample).

With ``objective="one_step"`` step 3 is instead one UNet call from a zero latent at t=999 that regresses
the answer latent itself (ldm/one_step.py: the choices and their sources).

By default only the UNet trains (AdamW); its EMA copy (ldm/ema.py) is updated after every optimiser
step. A model trained from scratch (the demo) needs what SD v1.5 brings ready-made: ``trainable``
also takes ``vae`` (the first stage: reconstruction MSE plus ``vae_kl_weight`` x KL on both images of
each pair, as latent diffusion trains its autoencoder; with ``unet`` too, the diffusion loss sees
detached latents) and ``text_encoder`` (trained through the diffusion loss). ``scale_by_std`` sets
the VAE's ``scaling_factor`` to 1 / std of the first batch's target latents, as LDM does for a new
autoencoder. The checkpoint layout (``on_save_checkpoint``) is documented in docs/ARCHITECTURE.md section 4.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from functools import partial
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from diffusers import DDPMScheduler

from ldm.batch import tokenize
from ldm.components import SDComponents, architecture_of
from ldm.ema import EMA
from ldm.loading import CHECKPOINT_FORMAT, CHECKPOINT_INFO_KEY
from ldm.one_step import check_loss, check_objective, detach_start_latent, one_step_loss

TRAINABLE_PARTS = ("unet", "vae", "text_encoder")
PREDICTION_TYPES = ("epsilon", "v_prediction", "sample")  # the schedule's prediction_type: the UNet's target
LR_DECAYS = ("constant", "cosine")


def check_lr_decay(decay: str) -> str:
    """``decay`` itself; ValueError naming the known ones otherwise."""
    if decay not in LR_DECAYS:
        raise ValueError(f"unknown lr_decay {decay!r}; one of {', '.join(LR_DECAYS)}")
    return decay


def lr_factor(step: int, *, warmup: int, decay: str, total: int) -> float:
    """The learning rate's factor at optimiser step ``step``: a linear warm-up over ``warmup`` steps, then
    constant, or (``cosine``) down to 0 at step ``total`` along half a cosine -- a short run ends at its
    minimum instead of wherever a constant rate leaves it."""
    ramp = min(1.0, (step + 1) / warmup) if warmup > 0 else 1.0
    if decay == "constant" or total <= warmup:
        return ramp
    progress = min(1.0, max(0.0, (step - warmup) / (total - warmup)))
    return ramp * 0.5 * (1.0 + math.cos(math.pi * progress))


def trainable_parts(parts: Collection[str]) -> tuple[str, ...]:
    """``parts`` in ``TRAINABLE_PARTS`` order; ValueError when it is empty or names an unknown part."""
    if not parts or set(parts) - set(TRAINABLE_PARTS):
        raise ValueError(f"trainable must list some of {', '.join(TRAINABLE_PARTS)}; got {list(parts)}")
    return tuple(p for p in TRAINABLE_PARTS if p in parts)


def cfg_dropout_masks(u: torch.Tensor, prob: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Which samples lose their text and which their image, from one uniform draw ``u`` per sample.

    ``u < p``: text dropped; ``p <= u < 2p``: both dropped; ``2p <= u < 3p``: image dropped; otherwise
    both kept -- so text and image are each dropped with probability ``2p`` and both with ``p``
    (InstructPix2Pix, p = 0.05), which is what two-way guidance at sampling time needs.
    """
    drop_text = u < 2 * prob
    drop_image = (u >= prob) & (u < 3 * prob)
    return drop_text, drop_image


class InstructCVModel(pl.LightningModule):
    """Trains the UNet of ``components`` to draw the answer latent given instruction and input latent.

    The keyword arguments are the training entries of ``model.params`` (main.py's DEFAULTS holds their
    defaults and meanings; ``main.model_params`` gives them); ``config`` is the whole merged config,
    stored in checkpoints.
    """

    def __init__(
        self,
        components: SDComponents,
        *,
        lr: float,
        betas: tuple[float, float],
        weight_decay: float,
        eps: float,
        lr_warmup_steps: int,
        lr_decay: str,
        use_ema: bool,
        ema_decay: float,
        ema_warmup: bool,
        cond_drop_prob: float,
        gradient_checkpointing: bool,
        trainable: Collection[str],
        vae_kl_weight: float,
        scale_by_std: bool,
        seed: int,
        objective: str,
        one_step_loss: str,
        decoder_loss_weight: float,
        commit_loss_weight: float,
        config: dict[str, Any] | None = None,
    ):
        super().__init__()
        self.trainable = trainable_parts(trainable)
        self.objective = check_objective(objective)
        self.one_step_loss, self.decoder_loss_weight = check_loss(one_step_loss), decoder_loss_weight
        self.commit_loss_weight = commit_loss_weight
        self.unet = components.unet
        if self.objective == "one_step":  # before the EMA copies it: the start latent is ignored from now on
            detach_start_latent(self.unet)
        self.vae = components.vae
        self.text_encoder = components.text_encoder
        for name in TRAINABLE_PARTS:
            part = getattr(self, name)
            part.requires_grad_(name in self.trainable).train(name in self.trainable)
        self.tokenizer = components.tokenizer
        self.scheduler_config = dict(components.scheduler_config)
        self.noise_scheduler = DDPMScheduler.from_config(self.scheduler_config)
        self.ema = EMA(self.unet, ema_decay, ema_warmup) if use_ema else None
        if gradient_checkpointing:
            self.unet.enable_gradient_checkpointing()
        self.lr, self.betas, self.weight_decay, self.eps = lr, tuple(betas), weight_decay, eps
        self.lr_warmup_steps = lr_warmup_steps
        self.lr_decay = check_lr_decay(lr_decay)
        self.cond_drop_prob = cond_drop_prob
        self.vae_kl_weight = vae_kl_weight
        self.scale_by_std = scale_by_std
        self.seed = seed
        self.config = config or {}
        self.architecture = architecture_of(components)
        self._empty_text: torch.Tensor | None = None
        self._generator: torch.Generator | None = None

    # ---- the pieces --------------------------------------------------------------------------

    @property
    def components(self) -> SDComponents:
        """The trained components with the EMA UNet when there is one (for sampling and export)."""
        unet = self.ema.model if self.ema is not None else self.unet
        return SDComponents(unet, self.vae, self.text_encoder, self.tokenizer, dict(self.scheduler_config),
                            self.objective)

    def train(self, mode: bool = True):
        super().train(mode)
        for name in TRAINABLE_PARTS:  # frozen parts never switch to training behaviour
            if name not in self.trainable:
                getattr(self, name).eval()
        return self

    def encode_text(self, input_ids: torch.Tensor) -> torch.Tensor:
        with torch.set_grad_enabled("text_encoder" in self.trainable and torch.is_grad_enabled()):
            return self.text_encoder(input_ids.to(self.device))[0]

    def empty_text_embedding(self) -> torch.Tensor:
        """The embedding of the empty instruction (what dropped text becomes); once per device when frozen."""
        if "text_encoder" in self.trainable:  # it changes every step, and learns through dropped samples too
            return self.encode_text(tokenize(self.tokenizer, [""]))[0]
        if self._empty_text is None or self._empty_text.device != self.device:
            with torch.no_grad():
                self._empty_text = self.encode_text(tokenize(self.tokenizer, [""]))[0]
        return self._empty_text

    def generator(self) -> torch.Generator:
        """Training noise, timesteps and dropout: seeded by (seed, rank, start step), so ranks differ."""
        if self._generator is None or self._generator.device != self.device:
            rank = self.trainer.global_rank if self._trainer is not None else 0
            step = self.trainer.global_step if self._trainer is not None else 0
            seed = int(np.random.SeedSequence([self.seed, rank, step]).generate_state(1)[0])
            self._generator = torch.Generator(self.device).manual_seed(seed)
        return self._generator

    def batch_latents(self, batch: dict[str, Any], posterior=None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(unscaled input latent, scaled target latent, text embedding) from images or cached latents.

        ``posterior``: the VAE's posterior of ``cat([input, target])`` when the caller has it already;
        latents are detached either way (the diffusion loss never trains the VAE).
        """
        scale = self.vae.config.scaling_factor
        if "input_mode" in batch:  # latent cache
            if "text_encoder" in self.trainable:
                raise ValueError("the latent cache holds fixed text embeddings; a trained text encoder needs images")
            mean, std = batch["target_mean"].float(), batch["target_std"].float()
            noise = torch.randn(mean.shape, generator=self.generator(), device=self.device)
            return batch["input_mode"].float(), (mean + std * noise) * scale, batch["text_embedding"].float()
        if posterior is None:
            with torch.no_grad():
                images = torch.cat([batch["input"], batch["target"]]).to(self.device, self.vae.dtype)
                posterior = self.vae.encode(images).latent_dist
        n = len(batch["input"])
        mean, std = posterior.mean.detach(), posterior.std.detach()
        target = mean[n:] + std[n:] * torch.randn(
            mean[n:].shape, generator=self.generator(), device=self.device, dtype=mean.dtype)
        image_latents = posterior.mode().detach()[:n]
        return image_latents.float(), target.float() * scale, self.encode_text(batch["input_ids"]).float()

    def autoencoder_loss(self, images: torch.Tensor, posterior) -> torch.Tensor:
        """The first-stage loss: reconstruction MSE (images in [-1, 1]) + ``vae_kl_weight`` x KL per latent value.

        The decoder sees a posterior sample, drawn from the model's generator.
        """
        noise = torch.randn(posterior.mean.shape, generator=self.generator(), device=self.device,
                            dtype=posterior.mean.dtype)
        reconstruction = self.vae.decode(posterior.mean + posterior.std * noise).sample
        kl = posterior.kl().mean() / posterior.mean[0].numel()
        return F.mse_loss(reconstruction.float(), images.float()) + self.vae_kl_weight * kl

    def drop_conditions(self, image_latents: torch.Tensor, text: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Classifier-free-guidance dropout (``cfg_dropout_masks``): empty text / zero image latent per sample."""
        b = image_latents.shape[0]
        u = torch.rand(b, generator=self.generator(), device=self.device)
        drop_text, drop_image = cfg_dropout_masks(u, self.cond_drop_prob)
        text = torch.where(drop_text[:, None, None], self.empty_text_embedding().to(text.dtype), text)
        return image_latents * (~drop_image)[:, None, None, None].to(image_latents.dtype), text

    def diffusion_loss(self, image_latents: torch.Tensor, target_latents: torch.Tensor,
                       text: torch.Tensor) -> torch.Tensor:
        g, b = self.generator(), target_latents.shape[0]
        image_latents, text = self.drop_conditions(image_latents, text)

        noise = torch.randn(target_latents.shape, generator=g, device=self.device, dtype=target_latents.dtype)
        timesteps = torch.randint(0, self.noise_scheduler.config.num_train_timesteps, (b,), generator=g,
                                  device=self.device)
        noisy = self.noise_scheduler.add_noise(target_latents, noise, timesteps)
        pred = self.unet(torch.cat([noisy, image_latents], dim=1), timesteps, encoder_hidden_states=text).sample
        return F.mse_loss(pred.float(), self.prediction_target(target_latents, noise, timesteps).float())

    def classification_mask(self, batch: dict[str, Any]) -> torch.Tensor:
        """(B,) bool: the samples whose task is cls (the data modules put each sample's task in the batch)."""
        return torch.tensor([task == "cls" for task in batch.get("task") or [""] * len(batch["key"])],
                            dtype=torch.bool, device=self.device)

    def prediction_target(self, latents: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        """What the UNet learns to predict, by the schedule's ``prediction_type`` (SD v1.5: the noise)."""
        kind = self.noise_scheduler.config.prediction_type
        if kind == "epsilon":
            return noise
        if kind == "v_prediction":  # v = sqrt(a) noise - sqrt(1 - a) x0: x0 stays learnable at high noise
            return self.noise_scheduler.get_velocity(latents, noise, timesteps)
        if kind == "sample":
            return latents
        raise ValueError(f"unknown prediction_type {kind!r} in the noise schedule")

    # ---- Lightning hooks ---------------------------------------------------------------------

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        losses: dict[str, torch.Tensor] = {}
        posterior = None
        if "vae" in self.trainable:
            if "input" not in batch:
                raise ValueError("training the VAE needs images; the latent cache (cache_latents) cannot be used")
            images = torch.cat([batch["input"], batch["target"]]).to(self.device, self.vae.dtype)
            posterior = self.vae.encode(images).latent_dist
            losses["vae_loss"] = self.autoencoder_loss(images, posterior)
        if "unet" in self.trainable and self.objective == "one_step":
            image_latents, target_latents, text = self.batch_latents(batch, posterior)
            image_latents, text = self.drop_conditions(image_latents, text)
            losses.update(one_step_loss(self.unet, self.vae, image_latents, target_latents, text, batch.get("target"),
                                        loss=self.one_step_loss, decoder_loss_weight=self.decoder_loss_weight,
                                        commit_loss_weight=self.commit_loss_weight,
                                        commit_mask=self.classification_mask(batch)))
        elif "unet" in self.trainable:
            losses["diffusion_loss"] = self.diffusion_loss(*self.batch_latents(batch, posterior))
        loss = sum(losses.values())
        n = len(batch["key"])
        self.log("train/loss", loss, prog_bar=True, on_step=True, on_epoch=False, batch_size=n)
        if len(losses) > 1:
            for name, value in losses.items():
                self.log(f"train/{name}", value, on_step=True, on_epoch=False, batch_size=n)
        return loss

    def on_train_batch_start(self, batch: dict[str, Any], batch_idx: int) -> None:
        # batch_idx too: with accumulate_grad_batches > 1 the first few batches all run at global_step 0
        if self.scale_by_std and self.trainer.global_step == 0 and batch_idx == 0 and "unet" in self.trainable:
            self.fit_scaling_factor(batch)

    @torch.no_grad()
    def fit_scaling_factor(self, batch: dict[str, Any]) -> float:
        """Set ``vae.config.scaling_factor`` to 1 / std of this batch's target latents (rank 0's, on every rank)."""
        if "vae" in self.trainable:
            raise ValueError("scale_by_std needs a trained, frozen VAE (it is fitted once, on the first batch)")
        self.vae.register_to_config(scaling_factor=1.0)
        _, target, _ = self.batch_latents(batch)
        scale = float(self.trainer.strategy.broadcast(1.0 / target.float().std().item(), src=0))
        self.vae.register_to_config(scaling_factor=scale)
        self.architecture = architecture_of(self.components)
        self.print(f"scale_by_std: VAE scaling_factor set to {scale:.5f}")
        return scale

    def on_train_start(self) -> None:
        self._generator = None  # reseed from (seed, rank, global_step), also after a resume
        # A resumed optimiser comes back with the learning rate it was saved with; the config's wins.
        for optimizer in self.trainer.optimizers:
            for group in optimizer.param_groups:
                if "initial_lr" in group:  # under the warm-up schedule: keep its current factor
                    factor = group["lr"] / group["initial_lr"] if group["initial_lr"] else 1.0
                    group["initial_lr"], group["lr"] = self.lr, self.lr * factor
                else:
                    group["lr"] = self.lr
        for config in self.trainer.lr_scheduler_configs:
            config.scheduler.base_lrs = [self.lr] * len(config.scheduler.base_lrs)

    def optimizer_step(self, epoch: int, batch_idx: int, optimizer, optimizer_closure=None) -> None:
        super().optimizer_step(epoch, batch_idx, optimizer, optimizer_closure)
        # right after the step, before any batch-end callback checkpoints or samples the EMA
        if self.ema is not None and "unet" in self.trainable:
            self.ema.update(self.unet)

    def configure_optimizers(self):
        parameters = [p for name in self.trainable for p in getattr(self, name).parameters()]
        optimizer = torch.optim.AdamW(parameters, lr=self.lr, betas=self.betas,
                                      weight_decay=self.weight_decay, eps=self.eps)
        if self.lr_warmup_steps <= 0 and self.lr_decay == "constant":
            return optimizer
        factor = partial(lr_factor, warmup=self.lr_warmup_steps, decay=self.lr_decay, total=self.trainer.max_steps)
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[CHECKPOINT_INFO_KEY] = {
            "format": CHECKPOINT_FORMAT,
            "architecture": self.architecture,
            "scheduler_config": dict(self.scheduler_config),
            "config": self.config,
            "objective": self.objective,
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        info = checkpoint.get(CHECKPOINT_INFO_KEY)
        if not isinstance(info, dict) or info.get("format", 0) > CHECKPOINT_FORMAT:
            raise ValueError("not a checkpoint written by this main.py (no or newer 'instructcv' entry)")
