"""The model a command line asks for: one loader for edit_cli.py, evaluate.py and app.py.

``load_model`` turns ``--ckpt`` (or the default weights), ``--device``, ``--dtype``, ``--scheduler``,
``--no-ema`` and ``--allow-unsafe-pickle`` into an ``ldm.inference.InstructCV``; every failure is one
``UsageError`` line naming the source and the reason, and the libraries' own loading chatter is
silenced unless ``verbose``.
"""

from __future__ import annotations

from pathlib import Path

from diffusers.utils import logging as diffusers_logging
from transformers.utils import logging as transformers_logging

from instructcv.cli import UsageError
from ldm.components import build_random_components
from ldm.inference import InstructCV
from ldm.sampling import DEFAULT_SCHEDULER

HUB_WEIGHTS = "alaa-lab/InstructCV"
LOCAL_WEIGHTS = Path(__file__).resolve().parents[1] / "checkpoints" / "InstructCV"  # download_pretrained_weights.sh
TINY = "tiny"  # a random tiny model (no download): app.py --tiny


def default_checkpoint() -> str:
    """The released weights: the local copy if there is one, else the hub id."""
    return str(LOCAL_WEIGHTS) if LOCAL_WEIGHTS.is_dir() else HUB_WEIGHTS


def quiet_libraries() -> None:
    """Keep the terminal to our progress bar and summary: no loading bars or accelerate advice."""
    for lib in (diffusers_logging, transformers_logging):
        lib.set_verbosity_error()
        lib.disable_progress_bar()


def load_model(ckpt: str | None, *, device: str = "auto", dtype: str = "auto", scheduler: str | None = None,
               use_ema: bool = True, allow_unsafe_pickle: bool = False, verbose: bool = False) -> InstructCV:
    """The model of ``ckpt`` (any ``ldm.loading`` source; None: ``default_checkpoint()``; ``TINY``: random).

    Raises ``UsageError`` (one line) for a bad source, device, dtype or scheduler.
    """
    if not verbose:
        quiet_libraries()
    source = ckpt or default_checkpoint()
    scheduler = scheduler or DEFAULT_SCHEDULER
    try:
        if source == TINY:
            return InstructCV.from_components(build_random_components("tiny", seed=0), device=device, dtype=dtype,
                                              scheduler=scheduler)  # fmt: skip
        return InstructCV.from_pretrained(source, device=device, dtype=dtype, scheduler=scheduler,
                                          allow_unsafe_pickle=allow_unsafe_pickle, use_ema=use_ema)  # fmt: skip
    except ValueError as e:  # bad --device / --dtype / a scheduler needing a missing package
        raise UsageError(f"--ckpt {source}: {e}") from None
    except UsageError as e:  # the loader's one-line CheckpointError; say how to get the released weights
        if source == HUB_WEIGHTS:
            raise UsageError(f"{e} (InstructCV weights: bash scripts/download_pretrained_weights.sh)") from None
        raise
