"""The InstructPix2Pix-style training module: frozen VAE and text encoder, an 8-channel UNet, EMA.

One training step (``diffusion_loss``):

1. latents: the input image's *unscaled* VAE posterior mode (conditioning, concatenated to the UNet
   input) and a sample of the target's posterior times ``vae.config.scaling_factor`` (the diffused
   latent) -- from the images, or from the latent cache;
2. classifier-free-guidance dropout, one uniform draw per sample (``cfg_dropout_masks``);
3. DDPM noise at a uniform timestep (diffusers ``DDPMScheduler.add_noise``), epsilon-prediction MSE.

Only the UNet trains (AdamW); its EMA copy (ldm/ema.py) is updated after every optimiser step.
The checkpoint layout (``on_save_checkpoint``) is documented in docs/ARCHITECTURE.md section 4.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from diffusers import DDPMScheduler

from ldm.components import SDComponents, architecture_of
from ldm.data import tokenize
from ldm.ema import EMA
from ldm.loading import CHECKPOINT_FORMAT, CHECKPOINT_INFO_KEY


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
    """Trains the UNet of ``components`` to draw the answer latent given instruction and input latent."""

    def __init__(
        self,
        components: SDComponents,
        *,
        lr: float = 1e-4,
        betas: tuple[float, float] = (0.9, 0.999),
        weight_decay: float = 0.01,
        eps: float = 1e-8,
        lr_warmup_steps: int = 0,
        use_ema: bool = True,
        ema_decay: float = 0.9999,
        ema_warmup: bool = True,
        cond_drop_prob: float = 0.05,
        gradient_checkpointing: bool = False,
        seed: int = 0,
        config: dict[str, Any] | None = None,
    ):
        super().__init__()
        self.unet = components.unet
        self.vae = components.vae.requires_grad_(False).eval()
        self.text_encoder = components.text_encoder.requires_grad_(False).eval()
        self.unet.requires_grad_(True).train()
        self.tokenizer = components.tokenizer
        self.scheduler_config = dict(components.scheduler_config)
        self.noise_scheduler = DDPMScheduler.from_config(self.scheduler_config)
        self.ema = EMA(self.unet, ema_decay, ema_warmup) if use_ema else None
        if gradient_checkpointing:
            self.unet.enable_gradient_checkpointing()
        self.lr, self.betas, self.weight_decay, self.eps = lr, tuple(betas), weight_decay, eps
        self.lr_warmup_steps = lr_warmup_steps
        self.cond_drop_prob = cond_drop_prob
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
        return SDComponents(unet, self.vae, self.text_encoder, self.tokenizer, dict(self.scheduler_config))

    def train(self, mode: bool = True):
        super().train(mode)
        self.vae.eval()  # frozen parts never switch to training behaviour
        self.text_encoder.eval()
        return self

    @torch.no_grad()
    def encode_text(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.text_encoder(input_ids.to(self.device))[0]

    def empty_text_embedding(self) -> torch.Tensor:
        """The embedding of the empty instruction (what dropped text becomes), computed once per device."""
        if self._empty_text is None or self._empty_text.device != self.device:
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

    @torch.no_grad()
    def batch_latents(self, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(unscaled input latent, scaled target latent, text embedding) from images or cached latents."""
        scale = self.vae.config.scaling_factor
        if "input_mode" in batch:  # latent cache
            mean, std = batch["target_mean"].float(), batch["target_std"].float()
            noise = torch.randn(mean.shape, generator=self.generator(), device=self.device)
            return batch["input_mode"].float(), (mean + std * noise) * scale, batch["text_embedding"].float()
        images = torch.cat([batch["input"], batch["target"]]).to(self.device, self.vae.dtype)
        posterior = self.vae.encode(images).latent_dist
        n = len(batch["input"])
        target = posterior.mean[n:] + posterior.std[n:] * torch.randn(
            posterior.mean[n:].shape, generator=self.generator(), device=self.device, dtype=posterior.mean.dtype)
        return posterior.mode()[:n].float(), target.float() * scale, self.encode_text(batch["input_ids"]).float()

    def diffusion_loss(self, image_latents: torch.Tensor, target_latents: torch.Tensor,
                       text: torch.Tensor) -> torch.Tensor:
        g, b = self.generator(), target_latents.shape[0]
        drop_text, drop_image = cfg_dropout_masks(torch.rand(b, generator=g, device=self.device), self.cond_drop_prob)
        text = torch.where(drop_text[:, None, None], self.empty_text_embedding().to(text.dtype), text)
        image_latents = image_latents * (~drop_image)[:, None, None, None].to(image_latents.dtype)

        noise = torch.randn(target_latents.shape, generator=g, device=self.device, dtype=target_latents.dtype)
        timesteps = torch.randint(0, self.noise_scheduler.config.num_train_timesteps, (b,), generator=g,
                                  device=self.device)
        noisy = self.noise_scheduler.add_noise(target_latents, noise, timesteps)
        pred = self.unet(torch.cat([noisy, image_latents], dim=1), timesteps, encoder_hidden_states=text).sample
        return F.mse_loss(pred.float(), noise.float())

    # ---- Lightning hooks ---------------------------------------------------------------------

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        loss = self.diffusion_loss(*self.batch_latents(batch))
        self.log("train/loss", loss, prog_bar=True, on_step=True, on_epoch=False,
                 batch_size=len(batch["key"]))
        return loss

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
        if self.ema is not None:
            self.ema.update(self.unet)

    def configure_optimizers(self):
        optimizer = torch.optim.AdamW(self.unet.parameters(), lr=self.lr, betas=self.betas,
                                      weight_decay=self.weight_decay, eps=self.eps)
        if self.lr_warmup_steps <= 0:
            return optimizer
        warmup = self.lr_warmup_steps
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / warmup))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[CHECKPOINT_INFO_KEY] = {
            "format": CHECKPOINT_FORMAT,
            "architecture": self.architecture,
            "scheduler_config": dict(self.scheduler_config),
            "config": self.config,
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        info = checkpoint.get(CHECKPOINT_INFO_KEY)
        if not isinstance(info, dict) or info.get("format", 0) > CHECKPOINT_FORMAT:
            raise ValueError("not a checkpoint written by this main.py (no or newer 'instructcv' entry)")
