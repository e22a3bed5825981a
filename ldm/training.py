"""What main.py trains with: the config checks that need the model code, components, module, data, callbacks,
the latent cache and the export at the end.

main.py stays the thin command line people read (its ``--help`` needs none of this: torch, diffusers and
Lightning take seconds to import); it imports this module once, when there is work to do.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf
from pytorch_lightning.callbacks import Callback, LearningRateMonitor, ModelCheckpoint

import tasks
from instructcv.cli import UsageError
from ldm import RUN_CHECKPOINT, one_step
from ldm.callbacks import (
    AtomicCheckpointIO,
    ImageLogger,
    LastCheckpoint,
    ProgressBar,
    Throughput,
    WeightsAgreement,
)
from ldm.components import DDPM_SCHEDULE, architecture_of, build_random_components
from ldm.data import PairsDataModule
from ldm.export import export_diffusers
from ldm.latent_cache import build_latent_cache
from ldm.loading import CHECKPOINT_INFO_KEY, is_main_checkpoint, load_components, read_checkpoint
from ldm.model import PREDICTION_TYPES, InstructCVModel, check_lr_decay, trainable_parts
from ldm.shards import ShardsDataModule

log = logging.getLogger(__name__)


def _plain(config) -> Any:
    return OmegaConf.to_container(config, resolve=True)


def check_config(config) -> None:
    """Every model.params check that needs the model code; run before the run folder is made."""
    check_trainable(config)
    check_schedule(config)
    check_objective(config)
    check_task_weights(config)


def check_task_weights(config) -> None:
    """data.params.task_weights: task tags with non-negative numbers, for pairs folders only."""
    weights = _plain(config.data.params.task_weights) or {}
    if weights and config.data.params.shards:
        raise UsageError("data.params.task_weights is for pairs folders; shards are read in their packed order")
    if not isinstance(weights, dict) or set(weights) - set(tasks.TAGS) or any(
            isinstance(w, bool) or not isinstance(w, (int, float)) or w < 0 for w in weights.values()):
        raise UsageError(f"data.params.task_weights={weights}: keys are task tags ({', '.join(tasks.TAGS)}), "
                         "values non-negative numbers")


def check_schedule(config) -> dict[str, Any]:
    """model.params.scheduler_overrides: training-schedule keys only, and a prediction_type the model knows."""
    schedule = _plain(config.model.params.scheduler_overrides)
    unknown = sorted(set(schedule) - set(DDPM_SCHEDULE))
    if unknown:
        raise UsageError(f"model.params.scheduler_overrides: unknown {', '.join(unknown)}; "
                         f"the training schedule has {', '.join(DDPM_SCHEDULE)}")
    if schedule.get("prediction_type", "epsilon") not in PREDICTION_TYPES:
        raise UsageError(f"model.params.scheduler_overrides.prediction_type={schedule['prediction_type']}: "
                         f"one of {', '.join(PREDICTION_TYPES)}")
    return schedule


def check_trainable(config) -> None:
    """model.params.trainable names known parts, and the latent cache only goes with a frozen VAE and text encoder."""
    trainable = list(config.model.params.trainable)
    try:
        trainable_parts(trainable)
    except ValueError as e:
        raise UsageError(f"model.params.trainable={trainable}: {e}") from None
    trained_encoders = [p for p in ("vae", "text_encoder") if p in trainable]
    if config.data.params.cache_latents and trained_encoders:
        raise UsageError(f"data.params.cache_latents=true needs a frozen VAE and text encoder, but "
                         f"model.params.trainable lists {' and '.join(trained_encoders)}")
    if config.model.params.scale_by_std and "vae" in trainable:
        raise UsageError("model.params.scale_by_std fits the scale of a frozen VAE; train the VAE in an earlier run")


def check_objective(config) -> None:
    """model.params.objective / one_step_loss / lr_decay are known names and the loss weights are not negative."""
    p = config.model.params
    try:
        one_step.check_objective(p.objective)
        one_step.check_loss(p.one_step_loss)
        check_lr_decay(p.lr_decay)
    except ValueError as e:
        raise UsageError(f"model.params: {e}") from None
    for name in ("decoder_loss_weight", "commit_loss_weight"):
        if p[name] < 0:
            raise UsageError(f"model.params.{name}={p[name]}: must not be negative")


def build_components(config, resume_ckpt: Path | None, allow_unsafe_pickle: bool):
    """Random shapes when resuming (Lightning restores the weights), else ckpt_path or a random architecture."""
    params = config.model.params
    schedule = check_schedule(config)
    if resume_ckpt is not None:
        checkpoint = read_checkpoint(resume_ckpt)  # memory-mapped: only the small entries are read
        if not is_main_checkpoint(checkpoint):
            raise UsageError(f"{resume_ckpt}: not a main.py checkpoint; use model.params.ckpt_path to start from it")
        info = checkpoint[CHECKPOINT_INFO_KEY]
        components = build_random_components(info["architecture"], seed=config.seed)
        components.scheduler_config = dict(info["scheduler_config"])
        return components
    if params.ckpt_path:
        components = load_components(params.ckpt_path, use_ema=params.init_from_ema,
                                     allow_unsafe_pickle=allow_unsafe_pickle or params.allow_unsafe_pickle)
        check_overrides_match(components, _plain(params.architecture_overrides), params.ckpt_path)
    else:
        components = build_random_components(params.architecture, seed=config.seed,
                                             overrides=_plain(params.architecture_overrides))
    components.scheduler_config.update(schedule)
    return components


def check_overrides_match(components, overrides: dict[str, dict[str, Any]], source: str) -> list[str]:
    """``architecture_overrides`` shape random models; with ``ckpt_path`` the checkpoint's shapes rule. Returns
    (and logs as a warning) the overrides the checkpoint contradicts, which therefore have no effect."""
    shapes = architecture_of(components)  # plain JSON values: tuples are lists, as in the overrides
    ignored = []
    for name, values in json.loads(json.dumps(overrides or {}, default=list)).items():
        if name not in shapes:
            raise UsageError(f"model.params.architecture_overrides.{name}: no such component "
                             f"({', '.join(shapes)})")
        ignored += [f"{name}.{key}={wanted!r} (it has {shapes[name].get(key)!r})" for key, wanted in values.items()
                    if shapes[name].get(key) != wanted]
    if ignored:
        log.warning("model.params.architecture_overrides ignored: the model comes from %s, whose shapes rule: %s "
                    "(overrides shape random models; set them where that model was first built)",
                    source, "; ".join(ignored))
    return ignored


def build_model(config, components, params: dict[str, Any]) -> InstructCVModel:
    """The LightningModule: ``params`` are main.model_params(config) (DEFAULTS under the config)."""
    return InstructCVModel(components, config=_plain(config), **params)


def build_datamodule(config, components, params: dict[str, Any], shards_only: tuple[str, ...]):
    """Pairs folders, or packed shards when ``data.params.shards`` is set (``params``: main.data_params(config))."""
    params = dict(params)
    shards = {name: params.pop(name) for name in shards_only}
    if shards["shards"]:  # packed shards replace the pairs folders
        return ShardsDataModule(
            list(shards["shards"]), components, resolution=params["resolution"], batch_size=params["batch_size"],
            num_workers=params["num_workers"], flip=params["flip"], shuffle_buffer=shards["shuffle_buffer"],
            seed=config.seed, preview_pairs=list(params["preview_pairs"]), preview_count=params["preview_count"])
    return PairsDataModule(components, **params)


@dataclass
class RunCallbacks:
    """The callbacks of a run, and the three main.py reads after fit (checkpoint, throughput, rank agreement)."""

    all: list[Callback]
    last: LastCheckpoint
    throughput: Throughput
    agreement: WeightsAgreement


def run_callbacks(config, run_dir: Path, datamodule, progress_bar: bool) -> RunCallbacks:
    """last.ckpt, throughput, learning rate, rank agreement, and what lightning.callbacks asks for."""
    cfg = config.lightning.callbacks
    last = LastCheckpoint(run_dir / RUN_CHECKPOINT, every_n_steps=cfg.checkpoint_every_n_steps)
    throughput = Throughput()
    agreement = WeightsAgreement(run_dir / "rank_checksums.json")
    callbacks = [last, throughput, LearningRateMonitor(logging_interval="step"), agreement]
    if progress_bar:  # lightning.trainer.enable_progress_bar=false: quiet logs
        callbacks.append(ProgressBar())
    if cfg.keep_every_n_steps and cfg.keep_checkpoints:
        callbacks.append(ModelCheckpoint(
            dirpath=run_dir / "checkpoints", filename="step{step:07d}", auto_insert_metric_name=False,
            every_n_train_steps=cfg.keep_every_n_steps, save_top_k=cfg.keep_checkpoints,
            monitor="step", mode="max", save_last=False))
    if cfg.image_every_n_steps:
        callbacks.append(ImageLogger(
            datamodule.preview_records(), run_dir / "images", cfg.image_every_n_steps,
            config.data.params.resolution, steps=cfg.image_sampling_steps,
            cfg_text=cfg.image_cfg_text, cfg_image=cfg.image_cfg_image, seed=config.seed))
    return RunCallbacks(callbacks, last, throughput, agreement)


def checkpoint_io() -> AtomicCheckpointIO:
    """Checkpoints written to a temporary name, then renamed: a run killed mid-write keeps the previous one."""
    return AtomicCheckpointIO()


def export_run(components, run_dir: Path) -> Path:
    """The trained model as a diffusers folder, ``<run>/export``."""
    return export_diffusers(components, run_dir / "export")


def build_cache(datamodule: PairsDataModule, components, params, device) -> int:
    """Encode every pair of ``datamodule`` into the latent cache (``params``: data.params); pairs encoded."""
    return build_latent_cache(datamodule.scan(), components, params.resolution, batch_size=params.cache_batch_size,
                              device=device, num_workers=params.num_workers, flip=params.flip)
