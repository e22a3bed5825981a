"""Load ``SDComponents`` from wherever a model lives, offline and without unpickling code.

``load_components(source)`` accepts, in this order of detection:

- a ``main.py`` run folder (``logs/<run>``): its ``checkpoints/last.ckpt``;
- a diffusers folder (``model_index.json`` or ``unet/``), e.g. one written by ``main.py --export``;
- a ``main.py`` checkpoint (``.ckpt`` written by Lightning, recognised by its ``"instructcv"`` entry);
- an original single-file checkpoint (``.ckpt`` / ``.safetensors`` in the CompVis LDM layout: SD v1.5,
  InstructPix2Pix, InstructCV), converted with diffusers' key mappings and the configs in ``configs/sd15``;
- a Hugging Face hub id (``owner/name``), only when online or already in the local cache.

Every UNet comes out with 8 input channels: a 4-channel (text-to-image) UNet gets its first conv
widened with zero weights, so its output is unchanged. ``.ckpt`` files are read with
``torch.load(weights_only=True)``; anything needing arbitrary unpickling is refused unless
``allow_unsafe_pickle=True``. The checkpoint layout ``main.py`` writes is described in
docs/ARCHITECTURE.md section 4.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import re
from pathlib import Path
from typing import Any

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel

from instructcv.cli import UsageError
from ldm import RUN_CHECKPOINT
from ldm.components import (
    DDPM_SCHEDULE,
    SD15_CONFIG_DIR,
    SDComponents,
    load_tokenizer,
    widen_conv_in,
)
from ldm.one_step import read_model_info

log = logging.getLogger(__name__)

# ---- the main.py checkpoint format (Lightning .ckpt), shared with ldm/model.py ------------------
CHECKPOINT_INFO_KEY = "instructcv"  # top-level entry: {"format", "architecture", "scheduler_config", "config"}
CHECKPOINT_FORMAT = 1
UNET_PREFIX = "unet."  # trained (non-EMA) UNet weights in checkpoint["state_dict"]
EMA_PREFIX = "ema.model."  # EMA copy of the UNet (absent when training ran without EMA)
VAE_PREFIX = "vae."
TEXT_ENCODER_PREFIX = "text_encoder."

# ---- the original CompVis LDM single-file layout -------------------------------------------------
LDM_UNET_PREFIX = "model.diffusion_model."
LDM_EMA_PREFIX = "model_ema."  # EMA keys are the UNet keys without "model." and with the dots removed
LDM_VAE_PREFIX = "first_stage_model."
LDM_TEXT_PREFIX = "cond_stage_model.transformer."

UNET_IN_CHANNELS = 8
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


class CheckpointError(UsageError):
    """A model source that cannot be loaded; ``str()`` is one line naming the source and the reason."""


def load_components(
    source: str | os.PathLike,
    *,
    allow_unsafe_pickle: bool = False,
    use_ema: bool = True,
    config_dir: str | os.PathLike = SD15_CONFIG_DIR,
) -> SDComponents:
    """Load UNet (8 input channels), VAE, text encoder, tokenizer and training schedule from ``source``.

    ``use_ema`` picks the EMA weights of the UNet where the checkpoint has them (main.py checkpoints,
    original checkpoints with ``model_ema.*`` keys). ``config_dir`` is the diffusers-format folder whose
    ``unet/``, ``vae/`` and ``text_encoder/`` configs describe an original single-file checkpoint.
    Weights come back in float32 on the CPU.
    """
    text = str(source)
    path = Path(text).expanduser()
    if path.is_dir():
        if (path / RUN_CHECKPOINT).is_file() or (path / "checkpoints").is_dir():
            return _from_checkpoint_file(run_checkpoint(path), allow_unsafe_pickle, use_ema, config_dir)
        if (path / "model_index.json").is_file() or (path / "unet" / "config.json").is_file():
            return _from_diffusers(str(path), local_only=True)
        raise CheckpointError(
            f"{path}: folder is neither a diffusers model (model_index.json, unet/) "
            f"nor a main.py run ({RUN_CHECKPOINT})"
        )
    if path.is_file():
        return _from_checkpoint_file(path, allow_unsafe_pickle, use_ema, config_dir)
    if _HUB_ID.match(text) and not text.startswith((".", "~")) and path.suffix not in (".ckpt", ".safetensors"):
        return _from_hub(text)
    raise CheckpointError(f"{text}: no such file or folder (and not a hub id of the form owner/name)")


def run_checkpoint(run_dir: str | os.PathLike) -> Path:
    """The checkpoint a main.py run folder resumes from and exports: ``<run>/checkpoints/last.ckpt``."""
    ckpt = Path(run_dir) / RUN_CHECKPOINT
    if not ckpt.is_file():
        raise CheckpointError(f"{run_dir}: run has no {RUN_CHECKPOINT} yet (training wrote no checkpoint)")
    return ckpt


def read_checkpoint(path: str | os.PathLike, allow_unsafe_pickle: bool = False) -> dict[str, Any]:
    """Read a ``.ckpt``/``.pt``/``.bin`` (``weights_only`` unpickling) or ``.safetensors`` file into a dict."""
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as e:  # safetensors raises its own error types for bad headers
            raise CheckpointError(f"{path}: cannot read safetensors file ({_first_line(e)})") from None
    try:
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as e:
            if "mmap" not in str(e):  # legacy (non-zip) files cannot be memory-mapped
                raise
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        reason = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(e))
        what = f"it contains a {reason.group(1)} object" if reason else _first_line(e)
        if not allow_unsafe_pickle:
            raise CheckpointError(
                f"{path}: refused to unpickle ({what}); if you trust where the file comes from, "
                "pass --allow-unsafe-pickle (allow_unsafe_pickle=True)"
            ) from None
        log.warning("%s: loading with full unpickling (allow_unsafe_pickle)", path)
        obj = torch.load(path, map_location="cpu", weights_only=False)
    except (RuntimeError, OSError, EOFError, ValueError) as e:
        raise CheckpointError(f"{path}: cannot read checkpoint ({_first_line(e)})") from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: expected a dict of tensors, found {type(obj).__name__}")
    return obj


def is_main_checkpoint(checkpoint: dict[str, Any]) -> bool:
    """Whether a loaded dict is a checkpoint written by main.py (Lightning, see ARCHITECTURE.md 4)."""
    return isinstance(checkpoint.get(CHECKPOINT_INFO_KEY), dict) and "state_dict" in checkpoint


# ---- sources -----------------------------------------------------------------------------------


def _from_checkpoint_file(path: Path, allow_unsafe_pickle: bool, use_ema: bool, config_dir) -> SDComponents:
    if path.suffix not in (".ckpt", ".safetensors", ".pt", ".pth", ".bin"):
        raise CheckpointError(f"{path}: unknown checkpoint type (expected .ckpt or .safetensors)")
    checkpoint = read_checkpoint(path, allow_unsafe_pickle)
    try:
        if is_main_checkpoint(checkpoint):
            return components_from_main_checkpoint(checkpoint, use_ema=use_ema)
        return components_from_original(checkpoint, use_ema=use_ema, config_dir=config_dir)
    except CheckpointError as e:
        raise CheckpointError(f"{path}: {e}") from None


def components_from_main_checkpoint(checkpoint: dict[str, Any], use_ema: bool = True) -> SDComponents:
    """Build components from a loaded main.py checkpoint (EMA UNet when present and ``use_ema``)."""
    info = checkpoint[CHECKPOINT_INFO_KEY]
    if info.get("format", 0) > CHECKPOINT_FORMAT:
        raise CheckpointError(f"checkpoint format {info['format']} is newer than this code ({CHECKPOINT_FORMAT})")
    arch, state = info["architecture"], checkpoint["state_dict"]
    unet_prefix = EMA_PREFIX if use_ema and any(k.startswith(EMA_PREFIX) for k in state) else UNET_PREFIX
    unet = _unet_with_weights(arch["unet"], _strip(state, unet_prefix))
    vae = _with_weights(lambda: AutoencoderKL(**arch["vae"]), _strip(state, VAE_PREFIX), "VAE")
    text_encoder = _text_encoder_with_weights(arch["text_encoder"], _strip(state, TEXT_ENCODER_PREFIX))
    scheduler_config = {**DDPM_SCHEDULE, **info.get("scheduler_config", {})}
    objective = info.get("objective", "diffusion")  # checkpoints from before one-step models: diffusion
    return SDComponents(unet, vae, text_encoder, load_tokenizer(), scheduler_config, objective)


def components_from_original(
    checkpoint: dict[str, Any], use_ema: bool = True, config_dir: str | os.PathLike = SD15_CONFIG_DIR
) -> SDComponents:
    """Convert an original CompVis-layout state dict (SD v1.5, InstructPix2Pix, InstructCV) to components."""
    from diffusers.loaders.single_file_utils import (
        convert_ldm_clip_checkpoint,
        convert_ldm_unet_checkpoint,
        convert_ldm_vae_checkpoint,
    )

    while isinstance(checkpoint.get("state_dict"), dict):
        checkpoint = checkpoint["state_dict"]
    config_dir = Path(config_dir)
    conv_in_key = LDM_UNET_PREFIX + "input_blocks.0.0.weight"
    if conv_in_key not in checkpoint:
        raise CheckpointError(
            f"not a Stable Diffusion checkpoint (no {conv_in_key}; expected the CompVis LDM layout "
            f"{LDM_UNET_PREFIX}*, {LDM_VAE_PREFIX}*, {LDM_TEXT_PREFIX}*)"
        )

    unet_state = {k: v for k, v in checkpoint.items() if k.startswith(LDM_UNET_PREFIX)}
    ema_keys = {k for k in checkpoint if k.startswith(LDM_EMA_PREFIX)}
    if use_ema and ema_keys:
        flat = {k: LDM_EMA_PREFIX + "".join(k.split(".")[1:]) for k in unet_state}
        if all(f in ema_keys for f in flat.values()):
            unet_state = {k: checkpoint[flat[k]] for k in unet_state}
            log.info("using the EMA weights of the UNet (model_ema.*)")
        else:
            log.warning("checkpoint has incomplete model_ema.* weights; using the non-EMA UNet")

    unet_config = _read_config(config_dir / "unet" / "config.json")
    unet_config["in_channels"] = int(checkpoint[conv_in_key].shape[1])
    unet = _unet_with_weights(unet_config, convert_ldm_unet_checkpoint(unet_state, unet_config))

    vae_config = _read_config(config_dir / "vae" / "config.json")
    vae_state = convert_ldm_vae_checkpoint(
        {k: v for k, v in checkpoint.items() if k.startswith(LDM_VAE_PREFIX)}, vae_config
    )
    vae = _with_weights(lambda: AutoencoderKL(**vae_config), vae_state, "VAE")

    text_state = convert_ldm_clip_checkpoint({k: v for k, v in checkpoint.items() if k.startswith(LDM_TEXT_PREFIX)})
    text_encoder = _text_encoder_with_weights(_read_config(config_dir / "text_encoder" / "config.json"), text_state)

    scheduler_config = dict(DDPM_SCHEDULE)
    if (config_dir / "scheduler" / "scheduler_config.json").is_file():
        scheduler_config = training_schedule(_read_config(config_dir / "scheduler" / "scheduler_config.json"))
    return SDComponents(unet, vae, text_encoder, load_tokenizer(), scheduler_config)


def _from_diffusers(location: str, local_only: bool) -> SDComponents:
    from transformers import CLIPTokenizer

    try:
        unet = UNet2DConditionModel.from_pretrained(location, subfolder="unet", local_files_only=local_only)
        vae = AutoencoderKL.from_pretrained(location, subfolder="vae", local_files_only=local_only)
        text_encoder = CLIPTextModel.from_pretrained(location, subfolder="text_encoder", local_files_only=local_only)
        try:
            tokenizer = CLIPTokenizer.from_pretrained(
                location, subfolder="tokenizer", local_files_only=local_only, model_max_length=77
            )
        except (OSError, ValueError):
            tokenizer = load_tokenizer()  # every SD v1 model shares the CLIP ViT-L/14 tokenizer
        scheduler_config = dict(DDPM_SCHEDULE)
        try:
            from diffusers import DDPMScheduler

            scheduler_config = training_schedule(
                dict(DDPMScheduler.load_config(location, subfolder="scheduler", local_files_only=local_only))
            )
        except (OSError, ValueError):
            log.warning("%s: no scheduler config; using the SD v1.5 training schedule", location)
    except (OSError, ValueError) as e:
        raise CheckpointError(f"{location}: cannot load diffusers model ({_first_line(e)})") from None
    unet = widen_conv_in(unet.float(), UNET_IN_CHANNELS)
    try:  # an InstructCV export says how it answers, and keeps the training schedule its scheduler lacks
        info = read_model_info(location) if local_only else {}
    except ValueError as e:
        raise CheckpointError(str(e)) from None
    scheduler_config.update(info.get("scheduler_config", {}))
    return SDComponents(unet, vae.float(), text_encoder.float(), tokenizer, scheduler_config,
                        info.get("objective", "diffusion"))


def _from_hub(repo_id: str) -> SDComponents:
    from huggingface_hub import constants, try_to_load_from_cache

    offline = constants.HF_HUB_OFFLINE or os.environ.get("HF_HUB_OFFLINE", "").upper() in ("1", "ON", "YES", "TRUE")
    if offline:
        cached = any(
            isinstance(try_to_load_from_cache(repo_id, name), str) for name in ("model_index.json", "unet/config.json")
        )
        if not cached:
            raise CheckpointError(
                f"{repo_id}: not in the local Hugging Face cache and HF_HUB_OFFLINE=1 forbids downloading it; "
                "pass a local path instead (a diffusers folder, a .ckpt/.safetensors file, or logs/<run>; "
                "see scripts/download_checkpoints.sh)"
            )
    return _from_diffusers(repo_id, local_only=offline)


# ---- helpers -----------------------------------------------------------------------------------


def training_schedule(scheduler_config: dict[str, Any]) -> dict[str, Any]:
    """The DDPM training-schedule entries of any diffusers scheduler config (defaults: SD v1.5).

    A config that names no ``timestep_spacing`` gets none: the sampler then uses its diffusers
    default, so answers equal ``StableDiffusionInstructPix2PixPipeline``'s on the same folder.
    """
    return {k: scheduler_config.get(k, v) for k, v in DDPM_SCHEDULE.items()
            if k in scheduler_config or k != "timestep_spacing"}


def _read_config(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise CheckpointError(f"missing model config {path}")
    config = json.loads(path.read_text())
    return {k: v for k, v in config.items() if not k.startswith("_") and k not in ("architectures", "torch_dtype")}


def _strip(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def _as_float32(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: (v.float() if v.is_floating_point() and v.dtype != torch.float32 else v) for k, v in state.items()}


def _with_weights(make, state: dict[str, torch.Tensor], what: str):
    """Build a module without random initialisation (meta device) and fill it from ``state``."""
    with torch.device("meta"):
        module = make()
    state = _as_float32(state)
    expected = set(module.state_dict())
    missing, unexpected = expected - set(state), set(state) - expected
    if missing or unexpected:
        detail = ", ".join(
            f"{n} {kind} (e.g. {sorted(keys)[0]})" for n, kind, keys in
            ((len(missing), "missing", missing), (len(unexpected), "unexpected", unexpected)) if keys
        )
        raise CheckpointError(f"{what} weights do not match the architecture: {detail}")
    module.load_state_dict(state, strict=True, assign=True)
    return module.eval()


def _unet_with_weights(config: dict[str, Any], state: dict[str, torch.Tensor]) -> UNet2DConditionModel:
    unet = _with_weights(lambda: UNet2DConditionModel(**config), state, "UNet")
    return widen_conv_in(unet, UNET_IN_CHANNELS)


def _text_encoder_with_weights(config: dict[str, Any], state: dict[str, torch.Tensor]) -> CLIPTextModel:
    # Built for real (not on the meta device): its position_ids buffer is not in the state dict.
    text_encoder = CLIPTextModel(CLIPTextConfig(**config))
    state = {k: v for k, v in _as_float32(state).items() if not k.endswith("position_ids")}
    # Original checkpoints say "text_model.embeddings...", as transformers 4 did; transformers 5 dropped
    # that level. Match whichever the installed transformers expects.
    nested = any(k.startswith("text_model.") for k in text_encoder.state_dict())
    state = {_text_key(k, nested): v for k, v in state.items()}
    expected = {k for k in text_encoder.state_dict() if not k.endswith("position_ids")}
    missing, unexpected = expected - set(state), set(state) - expected
    if missing or unexpected:
        raise CheckpointError(
            f"text encoder weights do not match the architecture: {len(missing)} missing, "
            f"{len(unexpected)} unexpected (e.g. {sorted(missing or unexpected)[0]})"
        )
    text_encoder.load_state_dict(state, strict=False)
    return text_encoder.eval()


def _text_key(key: str, nested: bool) -> str:
    if nested:
        return key if key.startswith("text_model.") else "text_model." + key
    return key.removeprefix("text_model.")


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__
