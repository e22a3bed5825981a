"""Instruction-tune Stable Diffusion v1.5 on InstructCV image pairs, from one CPU to many GPU nodes.

    python main.py --name exp --base configs/train.yaml --train --gpus 0,1,2,3,4,5,6,7
    python main.py --name tiny --base configs/tiny.yaml --train --accelerator cpu --devices 2
    python main.py --name exp --base configs/train.yaml --train --resume auto model.params.lr=5e-5
    python main.py --export logs/<run> --to models/instructcv

Every knob is a plain value in the YAML (see DEFAULTS below for all of them); ``key.path=value``
arguments override it. A run lives in ``logs/<timestamp>_<name>/``: ``config.yaml`` (the merged
config; ``configs/<launch>.yaml`` keeps every launch's), ``checkpoints/last.ckpt`` (+ periodic
``step*.ckpt``), ``csv/<launch>/metrics.csv`` and ``tensorboard/`` (loss, lr, images/s), ``images/``
(preview grids), ``rank_checksums.json`` (the ranks' final weights agree) and ``export/`` (the EMA
model as a diffusers folder). The checkpoint layout: docs/ARCHITECTURE.md section 4.
"""

from __future__ import annotations

import argparse
import copy
import logging
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

from instructcv.cli import UsageError, run, setup_logging
from instructcv.io import write_text
from ldm import RUN_CHECKPOINT  # the package alone: light (the model code is ldm.training, imported by train)

# The model code (ldm.training, ldm.export) is imported inside the commands that use it: it loads torch,
# Lightning and diffusers (about 5 s), which --help and a bad command line should not wait for.

log = logging.getLogger("main")

RUN_DIR_ENV = "INSTRUCTCV_RUN_DIR"  # rank 0 tells the other DDP processes (and slurm tasks) the run folder

DEFAULTS: dict[str, Any] = {
    "seed": 23,
    "model": {"params": {
        "ckpt_path": None,            # initial weights: any ldm.loading source; null = random `architecture`
        "architecture": "tiny",       # tiny | sd15, used when ckpt_path is null
        "architecture_overrides": {},  # e.g. {unet: {layers_per_block: 1}}
        "scheduler_overrides": {},    # training noise schedule entries, e.g. {prediction_type: v_prediction}
        "init_from_ema": True,        # take the EMA weights of ckpt_path where it has them
        "allow_unsafe_pickle": False,
        # the entries above say how the weights load (LOADING_PARAMS); these are InstructCVModel's arguments
        "lr": 1.0e-4,                 # AdamW, after lr_warmup_steps: constant or decayed (lr_decay)
        "betas": [0.9, 0.999],
        "weight_decay": 0.01,
        "eps": 1.0e-8,
        "lr_warmup_steps": 0,
        "lr_decay": "constant",       # constant | cosine (to 0 at lightning.trainer.max_steps, after the warm-up)
        "use_ema": True,
        "ema_decay": 0.9999,
        "ema_warmup": True,           # decay min(ema_decay, (1+n)/(10+n)) at update n
        "cond_drop_prob": 0.05,       # text / both / image dropped for 5 % each
        "gradient_checkpointing": False,
        "trainable": ["unet"],        # also vae (first stage: reconstruction + KL) and/or text_encoder
        "vae_kl_weight": 1.0e-6,      # KL weight per latent value against the reconstruction MSE (trainable vae)
        "scale_by_std": False,        # set the VAE's scaling_factor from the first batch (a VAE trained here)
        "objective": "diffusion",     # diffusion (a sampler answers) | one_step (one UNet call, ldm/one_step.py)
        "one_step_loss": "mse",       # one_step: mse | l1 (the median: commits to one of two possible answers)
        "decoder_loss_weight": 0.0,   # one_step: + this x the same loss on the VAE-decoded answer (E2E-FT)
        "commit_loss_weight": 0.0,    # one_step: + this x L1 on the answer's mean latent (cls commits to a colour)
    }},
    "data": {"params": {
        "pairs": [],                  # pairs folders written by format_dataset.py, pooled
        "shards": [],                 # instead of pairs: shards folders of dataset_creation/pack_pairs.py, pooled
        "shuffle_buffer": 1000,       # shards: samples each data-loader worker shuffles among
        "resolution": 256,
        "batch_size": 4,              # per process
        "num_workers": 4,
        "flip": True,                 # random horizontal flip of input and target together
        "cache_latents": False,       # precompute VAE latents + text embeddings (ldm/latent_cache.py)
        "cache_batch_size": 16,
        "preview_pairs": [],          # pairs folders for the image logger; default: the training pairs
        "preview_count": 4,
        "task_weights": {},           # e.g. {det: 1, seg: 1, cls: 1, depes: 1}: equal shares of the draws per task
                                      # (sampled with replacement); {} = as pooled, each task by its number of pairs
    }},
    "lightning": {
        "trainer": {                  # passed to pytorch_lightning.Trainer as is
            "max_steps": 1000,
            "precision": "32-true",
            "accumulate_grad_batches": 1,
            "log_every_n_steps": 50,
            "gradient_clip_val": None,
        },
        "callbacks": {
            "checkpoint_every_n_steps": 500,  # checkpoints/last.ckpt
            "keep_every_n_steps": 0,          # also keep checkpoints/step<N>.ckpt every N steps ...
            "keep_checkpoints": 3,            # ... the newest this many of them
            "image_every_n_steps": 500,       # preview grid under images/ (0 = never)
            "image_sampling_steps": 20,
            "image_cfg_text": 7.5,
            "image_cfg_image": 1.5,
        },
        "export_on_end": True,        # write <run>/export (diffusers folder, EMA weights)
        "requeue_on_sigusr1": True,   # under slurm: scontrol requeue after the SIGUSR1 checkpoint
    },
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Train InstructCV (Stable Diffusion v1.5 instruction tuning) or export a trained model.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "examples:\n"
            "  python main.py --name tiny --base configs/tiny.yaml --train --accelerator cpu\n"
            "  python main.py --name exp --base configs/train.yaml --train --gpus 0,1,2,3 data.params.pairs=[image_pairs]\n"
            "  python main.py --name exp --base configs/train.yaml --train --resume auto\n"
            "  python main.py --export logs/2024-05-01T10-00-00_exp --to models/instructcv\n"
        ),
    )
    parser.add_argument("--name", help="experiment name; the run folder is <logdir>/<timestamp>_<name>")
    parser.add_argument("--base", nargs="+", default=[], metavar="YAML", help="config files, merged in order")
    parser.add_argument("--train", action="store_true", help="train")
    parser.add_argument("--gpus", help="GPU ids, e.g. 0,1,2,3 (same as --accelerator gpu --devices 0,1,2,3)")
    parser.add_argument("--accelerator", help="cpu | gpu | auto (default: the config's, else auto)")
    parser.add_argument("--devices", help="number of devices per node, or a list of ids like 0,1")
    parser.add_argument("--num_nodes", type=int, help="number of nodes (slurm: the allocation's)")
    parser.add_argument("--resume", metavar="RUN|CKPT|auto",
                        help="continue a run folder, a checkpoint, or (auto) the newest run of --name")
    parser.add_argument("--seed", type=int, help="random seed (default: the config's)")
    parser.add_argument("--logdir", default="logs", help="where run folders go (default: logs)")
    parser.add_argument("--allow-unsafe-pickle", action="store_true",
                        help="allow checkpoints that need full unpickling (only for files you trust)")
    parser.add_argument("--build-cache", action="store_true",
                        help="compute the latent cache of data.params.pairs and stop (run once before big jobs)")
    parser.add_argument("--export", metavar="CKPT|RUN", help="export a checkpoint's EMA weights as a diffusers folder")
    parser.add_argument("--to", metavar="DIR", help="output folder for --export")
    parser.add_argument("--no-ema", action="store_true", help="--export the trained weights instead of the EMA")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. model.params.lr=5e-5")
    return parser.parse_intermixed_args(argv)  # overrides may come before or after options


# ---- configuration -----------------------------------------------------------------------------


def load_config(bases: list[str], overrides: list[str]):
    """DEFAULTS <- each --base YAML <- dotlist overrides. Unknown keys are errors (typos fail loudly)."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    config = OmegaConf.create(copy.deepcopy(DEFAULTS))
    OmegaConf.set_struct(config, True)
    for section in (config.lightning.trainer, config.model.params.architecture_overrides,
                    config.model.params.scheduler_overrides, config.data.params.task_weights):
        OmegaConf.set_struct(section, False)  # open: any Trainer argument / architecture field / task tag
    for override in overrides:
        if "=" not in override:
            raise UsageError(f"{override!r}: config overrides look like key.path=value")
    try:
        layers = []
        for base in bases:
            if not Path(base).is_file():
                raise UsageError(f"{base}: config file not found")
            layers.append(OmegaConf.load(base))
        layers.append(OmegaConf.from_dotlist(overrides))
        for layer in layers:
            config = OmegaConf.merge(config, layer)
    except OmegaConfBaseException as e:
        raise UsageError(f"bad config: {str(e).splitlines()[0]}") from None
    return config


def plain(config) -> dict[str, Any]:
    from omegaconf import OmegaConf

    return OmegaConf.to_container(config, resolve=True)


# ---- run folders -------------------------------------------------------------------------------


def newest_run(logdir: Path, name: str) -> Path | None:
    """The newest ``<logdir>/<timestamp>_<name>`` folder (timestamps sort as text)."""
    runs = sorted(p for p in logdir.glob(f"*_{name}") if p.is_dir() and p.name[:4].isdigit())
    return runs[-1] if runs else None


def resolve_run(args: argparse.Namespace, name: str) -> tuple[Path, Path | None]:
    """(run folder, checkpoint to resume from or None) from --resume, --logdir and INSTRUCTCV_RUN_DIR."""
    logdir = Path(args.logdir)
    pinned = os.environ.get(RUN_DIR_ENV)
    if args.resume == "auto":
        run_dir = Path(pinned) if pinned else newest_run(logdir, name)
        if run_dir is not None and (run_dir / RUN_CHECKPOINT).is_file():
            return run_dir, run_dir / RUN_CHECKPOINT
        log.info("--resume auto: no earlier run of %r with a checkpoint; starting a new run", name)
    elif args.resume:
        target = Path(args.resume)
        if target.is_dir():
            if not (target / RUN_CHECKPOINT).is_file():
                raise UsageError(f"{target}: no {RUN_CHECKPOINT} to resume from")
            return target, target / RUN_CHECKPOINT
        if target.is_file():
            inside_run = target.parent.name == "checkpoints"
            run_dir = target.parent.parent if inside_run else Path(pinned or logdir / f"{timestamp()}_{name}")
            return run_dir, target
        raise UsageError(f"{target}: --resume needs a run folder, a .ckpt file or 'auto'")
    return Path(pinned) if pinned else logdir / f"{timestamp()}_{name}", None


def timestamp() -> str:
    return time.strftime("%Y-%m-%dT%H-%M-%S")


# ---- building the pieces -----------------------------------------------------------------------


# model.params entries that say how the weights load (build_components); the others are InstructCVModel's
LOADING_PARAMS = ("ckpt_path", "architecture", "architecture_overrides", "scheduler_overrides", "init_from_ema",
                  "allow_unsafe_pickle")  # fmt: skip


def model_params(config=None, **overrides: Any) -> dict[str, Any]:
    """InstructCVModel's keyword arguments: ``seed`` and the training entries of ``model.params``, from
    ``config`` (DEFAULTS when None), with ``overrides`` on top."""
    source = plain(config) if config is not None else copy.deepcopy(DEFAULTS)
    params = {k: v for k, v in source["model"]["params"].items() if k not in LOADING_PARAMS}
    return {**params, "seed": source["seed"], **overrides}


SHARDS_ONLY_PARAMS = ("shards", "shuffle_buffer")  # data.params that only the shards data module reads


def data_params(config=None, **overrides: Any) -> dict[str, Any]:
    """PairsDataModule's keyword arguments: ``data.params`` of ``config`` (DEFAULTS when None) with ``overrides``."""
    source = plain(config) if config is not None else copy.deepcopy(DEFAULTS)
    return {**source["data"]["params"], **overrides}


def device_settings(args: argparse.Namespace, trainer_cfg: dict[str, Any]) -> dict[str, Any]:
    """accelerator / devices / num_nodes / strategy from the command line (over the config)."""
    from datetime import timedelta

    from pytorch_lightning.strategies import DDPStrategy

    def ids(text: str):
        text = text.strip().strip(",")
        return int(text) if text.isdigit() and "," not in text else [int(x) for x in text.split(",") if x.strip()]

    settings = {
        "accelerator": trainer_cfg.pop("accelerator", "auto"),
        "devices": trainer_cfg.pop("devices", 1),
        "num_nodes": trainer_cfg.pop("num_nodes", 1),
    }
    if args.gpus:
        settings.update(accelerator="gpu", devices=ids(args.gpus) if "," in args.gpus else [int(args.gpus)])
    if args.accelerator:
        settings["accelerator"] = args.accelerator
    if args.devices:
        settings["devices"] = ids(args.devices)
    if args.num_nodes:
        settings["num_nodes"] = args.num_nodes
    devices = settings["devices"]
    count = len(devices) if isinstance(devices, list) else int(devices)
    strategy = trainer_cfg.pop("strategy", None)
    if strategy is None and (count > 1 or settings["num_nodes"] > 1):
        # gloo on CPU, nccl on GPU; long timeout: rank 0 may build the latent cache while the others wait
        strategy = DDPStrategy(find_unused_parameters=False, timeout=timedelta(hours=3))
    settings["strategy"] = strategy or "auto"
    return settings


# ---- commands ----------------------------------------------------------------------------------


def train(args: argparse.Namespace) -> int:
    import pytorch_lightning as pl
    import torch
    from pytorch_lightning.callbacks import ModelCheckpoint
    from pytorch_lightning.loggers import CSVLogger, TensorBoardLogger
    from pytorch_lightning.utilities.rank_zero import rank_zero_only

    from ldm import training  # torch, diffusers and Lightning: seconds, so not at the top (--help)

    # the frozen VAE/text encoder are in eval mode on purpose; Lightning warns about exactly that
    warnings.filterwarnings("ignore", message=r"Found \d+ module\(s\) in eval mode")
    is_zero = rank_zero_only.rank == 0
    if not is_zero:
        logging.getLogger().setLevel(logging.WARNING)
    config = load_config(args.base, args.overrides)
    if args.seed is not None:
        config.seed = args.seed
    name = args.name or (Path(args.resume).name.split("_", 1)[-1] if args.resume and args.resume != "auto"
                         else Path(args.base[0]).stem if args.base else None)
    if not name:
        raise UsageError("--name is required (the run folder is <logdir>/<timestamp>_<name>)")
    if not config.data.params.pairs and not config.data.params.shards:
        raise UsageError("no training pairs: set data.params.pairs in the config or as data.params.pairs=[dir]"
                         " (or data.params.shards=[dir] for packed shards)")
    if config.data.params.shards and config.data.params.cache_latents:
        raise UsageError("data.params.cache_latents is for pairs folders; pack latent shards instead "
                         "(dataset_creation/pack_pairs.py --latents)")
    training.check_config(config)  # before the run folder is made: a bad config leaves nothing behind
    run_dir, resume_ckpt = resolve_run(args, name)
    launch = timestamp()
    while (run_dir / "csv" / launch).exists():  # two launches within a second (tests)
        launch = f"{timestamp()}-{int(time.time() * 1000) % 1000:03d}"
    os.environ[RUN_DIR_ENV] = str(run_dir)
    if is_zero:
        write_text(run_dir / "config.yaml", to_yaml(config))
        write_text(run_dir / "configs" / f"{launch}.yaml", to_yaml(config))
        log.info("run folder %s%s", run_dir, f" (resuming {resume_ckpt})" if resume_ckpt else "")

    pl.seed_everything(config.seed, workers=True, verbose=False)
    if torch.cuda.is_available():
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    components = training.build_components(config, resume_ckpt, args.allow_unsafe_pickle)
    model = training.build_model(config, components, model_params(config))
    datamodule = training.build_datamodule(config, components, data_params(config), SHARDS_ONLY_PARAMS)

    trainer_cfg = plain(config.lightning.trainer)
    run = training.run_callbacks(config, run_dir, datamodule, trainer_cfg.get("enable_progress_bar", True))
    last, throughput, agreement, callbacks = run.last, run.throughput, run.agreement, run.all
    trainer_cfg.setdefault("max_epochs", -1)
    devices = device_settings(args, trainer_cfg)  # takes accelerator/devices/num_nodes/strategy out of trainer_cfg
    try:
        trainer = pl.Trainer(
            default_root_dir=run_dir,
            # one CSV per launch: Lightning's CSV logger empties an existing metrics.csv on resume
            logger=[CSVLogger(run_dir, name="csv", version=launch),
                    TensorBoardLogger(run_dir, name="", version="tensorboard", default_hp_metric=False)],
            callbacks=callbacks,
            plugins=[training.checkpoint_io()],
            enable_checkpointing=any(isinstance(c, ModelCheckpoint) for c in callbacks),
            num_sanity_val_steps=0,
            limit_val_batches=0,
            **devices,
            **trainer_cfg,
        )
    except (TypeError, ValueError) as e:
        raise UsageError(f"bad lightning.trainer settings: {e}") from None

    start = time.perf_counter()
    trainer.fit(model, datamodule=datamodule, ckpt_path=resume_ckpt, weights_only=True)
    if not trainer.is_global_zero:
        return 0

    exported = None
    if last.stopped_by:
        if last.stopped_by == "SIGUSR1" and os.environ.get("SLURM_JOB_ID") and config.lightning.requeue_on_sigusr1:
            job = os.environ["SLURM_JOB_ID"]
            result = subprocess.run(["scontrol", "requeue", job], check=False)
            log.info("requeued slurm job %s (exit status %d)", job, result.returncode)
    elif config.lightning.export_on_end:
        exported = training.export_run(model.components, run_dir)
    rate = throughput.images / throughput.seconds if throughput.seconds else 0.0
    loss = f"{throughput.last_loss:.4f}" if throughput.last_loss is not None else "n/a"
    how = f"stopped by {last.stopped_by}" if last.stopped_by else "done"
    print(f"{how}: step {trainer.global_step}, {throughput.images} images at {rate:.1f} images/s, "
          f"{time.perf_counter() - start:.0f} s in all, last loss {loss}; checkpoint {run_dir / RUN_CHECKPOINT}"
          + (f"; export {exported}" if exported else "")
          + (f"; resume with --resume {run_dir}" if last.stopped_by else ""))
    if agreement.agree is False:
        print(f"error: ranks ended with different weights (see {agreement.path})", file=sys.stderr)
        return 1
    return 0


def build_cache(args: argparse.Namespace) -> int:
    import torch

    from ldm import training  # torch, diffusers: seconds, so not at the top (--help)

    config = load_config(args.base, args.overrides)
    components = training.build_components(config, None, args.allow_unsafe_pickle)
    d = config.data.params
    data = training.build_datamodule(config, components, data_params(config), SHARDS_ONLY_PARAMS)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    start = time.perf_counter()
    encoded = training.build_cache(data, components, d, device)
    print(f"latent cache: {encoded} pairs encoded, {len(data.records)} listed, {len(data.skipped)} skipped "
          f"(missing files), {time.perf_counter() - start:.0f} s on {device}")
    return 2 if data.skipped else 0


def export(args: argparse.Namespace) -> int:
    from ldm.export import export_checkpoint  # diffusers: seconds, so not at the top (--help)

    if not args.to:
        raise UsageError("--export needs --to <output folder>")
    out = export_checkpoint(args.export, args.to, use_ema=not args.no_ema, allow_unsafe_pickle=args.allow_unsafe_pickle)
    print(f"exported {'trained' if args.no_ema else 'EMA'} weights of {args.export} to {out} (diffusers folder)")
    return 0


def to_yaml(config) -> str:
    from omegaconf import OmegaConf

    return OmegaConf.to_yaml(config)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logging()
    if args.export:
        return export(args)
    if args.build_cache:
        return build_cache(args)
    if args.train:
        return train(args)
    raise UsageError("nothing to do: pass --train, --build-cache or --export (see --help)")


if __name__ == "__main__":
    run(main)
