"""Lightning callbacks of a main.py run: last.ckpt (also on SIGTERM/SIGUSR1), throughput, previews, checks.

- ``AtomicCheckpointIO``: checkpoints are written under a temporary name and renamed, so a run
  killed mid-write keeps its previous ``last.ckpt``.
- ``LastCheckpoint``: ``checkpoints/last.ckpt`` every N steps, at the end, and when the job is told
  to stop (SIGTERM, or SIGUSR1 which slurm sends ahead of the time limit with ``--signal``): the
  current optimiser step finishes, every rank agrees, the checkpoint is written, training stops.
- ``Throughput``: ``train/images_per_sec`` (all ranks together) for the loggers and the summary.
- ``ImageLogger``: every N steps, answers for a few fixed pairs with two-way guidance, saved as an
  input | target | answer grid PNG under ``<run>/images/`` and to TensorBoard.
- ``WeightsAgreement``: at the end, a checksum of the UNet (and EMA) per rank in
  ``<run>/rank_checksums.json``; ranks that disagree are an error (DDP must keep them identical).
"""

from __future__ import annotations

import hashlib
import logging
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from lightning_fabric.plugins import TorchCheckpointIO
from pytorch_lightning.callbacks import Callback, TQDMProgressBar

from instructcv.io import atomic_path, save_image, write_json
from instructcv.pairs import PairSample, read_prompt
from ldm import one_step
from ldm.batch import load_pair_images, to_model_range
from ldm.preview import encode_prompts, sample_answers

log = logging.getLogger(__name__)


class AtomicCheckpointIO(TorchCheckpointIO):
    """``torch.save`` to a temporary file beside the target, then rename (no half-written checkpoints)."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options=None) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            torch.save(checkpoint, tmp)


class LastCheckpoint(Callback):
    """Keep ``last.ckpt`` current: every ``every_n_steps``, at the end of training, and on SIGTERM/SIGUSR1."""

    def __init__(self, path: str | os.PathLike, every_n_steps: int = 0,
                 signals: tuple[int, ...] = (signal.SIGTERM, signal.SIGUSR1)):
        self.path = Path(path)
        self.every_n_steps = every_n_steps
        self.signals = signals
        self.stop_signal: str | None = None  # set by the handler; read on the training thread
        self.stopped_by: str | None = None  # the signal that ended training, once handled
        self._saved_step: int | None = None
        self._previous_handlers: dict[int, Any] = {}

    def _handle(self, signum, frame) -> None:
        self.stop_signal = signal.Signals(signum).name

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Installed after Lightning's own handlers (which would end the run with no checkpoint);
        # Lightning puts the original handlers back when fit() ends.
        if threading.current_thread() is threading.main_thread():
            for sig in self.signals:
                self._previous_handlers[sig] = signal.signal(sig, self._handle)
        self._saved_step = trainer.global_step if trainer.ckpt_path else None

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        if (batch_idx + 1) % trainer.accumulate_grad_batches:
            return  # mid-accumulation: the optimiser step is not complete
        # one collective per step, so that all ranks stop (and save) at the same step
        stop = trainer.strategy.reduce_boolean_decision(self.stop_signal is not None, all=False)
        step = trainer.global_step
        if stop or (self.every_n_steps and step % self.every_n_steps == 0):
            self.save(trainer)
        if stop:
            self.stopped_by = self.stop_signal or "signal on another rank"
            if trainer.is_global_zero:
                log.warning("%s received: wrote %s at step %d, stopping", self.stopped_by, self.path, step)
            trainer.should_stop = True

    def on_train_end(self, trainer: pl.Trainer, pl_module) -> None:
        self.save(trainer)

    def on_exception(self, trainer: pl.Trainer, pl_module, exception: BaseException) -> None:
        if isinstance(exception, KeyboardInterrupt) and trainer.world_size == 1:
            self.save(trainer)  # Ctrl-C on a single process: keep the work done so far

    def save(self, trainer: pl.Trainer) -> None:
        if self._saved_step == trainer.global_step:
            return
        trainer.save_checkpoint(self.path, weights_only=False)  # the full state: optimiser, loops, callbacks
        self._saved_step = trainer.global_step


class Throughput(Callback):
    """Images per second over the last ``window`` optimiser steps, counted over all ranks."""

    def __init__(self, window: int = 10):
        self.window = window
        self._times: list[float] = []
        self.images = 0
        self.seconds = 0.0
        self.last_loss: float | None = None
        self._start: float | None = None

    def on_train_start(self, trainer, pl_module) -> None:
        self._start = time.perf_counter()
        self._times = [self._start]

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        self.images += len(batch["key"]) * trainer.world_size
        if isinstance(outputs, dict) and "loss" in outputs:
            self.last_loss = float(outputs["loss"])
        if (batch_idx + 1) % trainer.accumulate_grad_batches:
            return
        now = time.perf_counter()
        self._times = (self._times + [now])[-(self.window + 1):]
        self.seconds = now - self._start
        if len(self._times) > 1:
            per_step = len(batch["key"]) * trainer.world_size * trainer.accumulate_grad_batches
            rate = per_step * (len(self._times) - 1) / (self._times[-1] - self._times[0])
            pl_module.log("train/images_per_sec", rate, on_step=True, on_epoch=False, prog_bar=True,
                          rank_zero_only=True, batch_size=1)


class ProgressBar(TQDMProgressBar):
    """Lightning's tqdm bar without the logger version number (meaningless here)."""

    def get_metrics(self, trainer, pl_module):
        metrics = super().get_metrics(trainer, pl_module)
        metrics.pop("v_num", None)
        return metrics


def grid(rows: list[list[np.ndarray]]) -> np.ndarray:
    """Stack equally sized uint8 images: each inner list side by side, the lists top to bottom."""
    return np.concatenate([np.concatenate(row, axis=1) for row in rows], axis=0)


class ImageLogger(Callback):
    """Every ``every_n_steps``: input | target | answer rows for fixed pairs, sampled from the EMA UNet."""

    def __init__(self, records: list[PairSample], out_dir: str | os.PathLike, every_n_steps: int,
                 resolution: int, steps: int = 20, cfg_text: float = 7.5, cfg_image: float = 1.5, seed: int = 0):
        self.records = records
        self.out_dir = Path(out_dir)
        self.every_n_steps = every_n_steps
        self.resolution, self.steps = resolution, steps
        self.cfg_text, self.cfg_image, self.seed = cfg_text, cfg_image, seed
        self._logged_step = -1
        self._pairs: list[tuple[np.ndarray, np.ndarray, str]] | None = None

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        step = trainer.global_step
        if (not self.records or not self.every_n_steps or step % self.every_n_steps or step == self._logged_step
                or not trainer.is_global_zero):
            return
        self._logged_step = step
        picture = self.log_images(pl_module, step)
        for logger in trainer.loggers:
            experiment = getattr(logger, "experiment", None)
            if hasattr(experiment, "add_image"):
                experiment.add_image("preview", picture, step, dataformats="HWC")

    @torch.no_grad()
    def log_images(self, pl_module, step: int) -> np.ndarray:
        """Sample the preview pairs and save ``<out_dir>/step_<step>.png``; returns the grid."""
        if self._pairs is None:
            self._pairs = [(*load_pair_images(r, self.resolution), read_prompt(r)) for r in self.records]
        components = pl_module.components
        images = torch.stack([to_model_range(p[0]) for p in self._pairs])
        unet = components.unet
        was_training = unet.training
        unet.eval()
        try:
            if components.objective == "one_step":
                text = encode_prompts(components.text_encoder, components.tokenizer, [p[2] for p in self._pairs],
                                      unet.device)
                answers = one_step.answer_images(components, images, text)
            else:
                answers = sample_answers(
                    unet, components.vae, components.text_encoder, components.tokenizer, components.scheduler_config,
                    images, [p[2] for p in self._pairs], steps=self.steps, cfg_text=self.cfg_text,
                    cfg_image=self.cfg_image, generator=torch.Generator().manual_seed(self.seed))
        finally:
            unet.train(was_training)
        answers = ((answers.float().cpu() + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
        answers = answers.permute(0, 2, 3, 1).numpy()
        picture = grid([[p[0], p[1], a] for p, a in zip(self._pairs, answers, strict=True)])
        save_image(self.out_dir / f"step_{step:07d}.png", picture)
        return picture


def weights_checksum(module: torch.nn.Module) -> str:
    h = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


class WeightsAgreement(Callback):
    """At the end of training every rank reports a checksum of its UNet and EMA; they must agree."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.agree: bool | None = None

    def on_train_end(self, trainer: pl.Trainer, pl_module) -> None:
        mine = {"unet": weights_checksum(pl_module.unet)}
        if pl_module.ema is not None:
            mine["ema"] = weights_checksum(pl_module.ema)
        everyone = [mine]
        if trainer.world_size > 1 and torch.distributed.is_available() and torch.distributed.is_initialized():
            everyone = [None] * trainer.world_size
            torch.distributed.all_gather_object(everyone, mine)
        self.agree = all(e == everyone[0] for e in everyone)
        if trainer.is_global_zero:
            write_json(self.path, {"global_step": trainer.global_step, "world_size": trainer.world_size,
                                   "ranks": everyone, "agree": self.agree}, indent=1)
            if not self.agree:
                log.error("ranks ended with different weights: see %s", self.path)
