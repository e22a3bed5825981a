"""What every baseline script shares: where a model comes from, devices, skipped inputs, result files.

A baseline's ``--model`` is a short name (``segformer``), a Hugging Face id or a local folder;
``--tiny`` replaces it by a random tiny model of the same family so the whole path runs offline.
A hub id that is not cached while ``HF_HUB_OFFLINE=1`` fails at once with one line saying how to
pass a local folder instead. Results are written in the metrics.json layout of DESIGN.md section 6
(``{task: {dataset: {metric: value, "n": n}}}``) plus top-level ``"model"`` and ``"meta"`` keys
that describe what was run, so ``evaluate.py --table`` can merge them with InstructCV's own.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from instructcv.cli import EXIT_OK, EXIT_PARTIAL, UsageError
from instructcv.io import write_json

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = REPO_ROOT / "results"

log = logging.getLogger("baselines")

# Top-level keys of a result file that are not task tags.
DESCRIPTION_KEYS = ("model", "meta")


@dataclass(frozen=True)
class HubModel:
    """A published checkpoint: hub id, the revision to use, and a readable name for tables."""

    repo_id: str
    display: str
    revision: str | None = None


@dataclass(frozen=True)
class ModelSource:
    """Where the weights come from: a hub id (maybe cached), a local folder, or a random tiny model."""

    kind: str  # "hub" | "local" | "tiny"
    location: str  # hub id, folder path, or the family name for tiny models
    display: str
    revision: str | None = None

    def describe(self) -> dict[str, Any]:
        d: dict[str, Any] = {"source": self.kind, "location": self.location}
        if self.revision:
            d["revision"] = self.revision
        return d

    def load_kwargs(self) -> dict[str, Any]:
        return {"revision": self.revision} if self.revision else {}


def hub_offline() -> bool:
    """True when the Hugging Face hub must not be contacted (``HF_HUB_OFFLINE`` / ``TRANSFORMERS_OFFLINE``)."""
    truthy = {"1", "true", "yes", "on"}
    return any(os.environ.get(v, "").strip().lower() in truthy for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def offline_hint(repo_id: str, revision: str | None = None) -> str:
    rev = f" --revision {revision}" if revision else ""
    return (
        f"model {repo_id!r} is not in the local Hugging Face cache and HF_HUB_OFFLINE=1 forbids downloading it; "
        f"on a machine with internet run `hf download {repo_id}{rev} --local-dir <folder>`, "
        f"then pass --model <folder> (or use --tiny for a random tiny model)"
    )


def check_hub_model(repo_id: str, revision: str | None = None) -> None:
    """Raise ``UsageError`` at once when ``repo_id`` cannot be loaded because the hub is offline."""
    if not hub_offline():
        return
    from huggingface_hub import try_to_load_from_cache

    try:
        cached = try_to_load_from_cache(repo_id, "config.json", revision=revision)
    except Exception:  # a malformed id: it cannot be in the cache either
        cached = None
    if not isinstance(cached, str):
        raise UsageError(offline_hint(repo_id, revision))


def _looks_like_hub_id(name: str) -> bool:
    parts = name.split("/")
    return (
        len(parts) == 2
        and all(parts)
        and not name.startswith((".", "~", "/"))
        and " " not in name
        and not name.endswith((".json", ".safetensors", ".bin", ".ckpt", ".pt"))
    )


def resolve_model(model: str, aliases: Mapping[str, HubModel], *, tiny: bool = False, family: str | None = None) -> ModelSource:
    """Turn ``--model`` into a ``ModelSource``: a short name, a local folder, or a hub id.

    ``family`` names the tiny model to build when ``tiny`` is set (defaults to ``model``).
    """
    if tiny:
        return ModelSource("tiny", family or model, f"tiny random {family or model}")
    if model in aliases:
        hub = aliases[model]
        check_hub_model(hub.repo_id, hub.revision)
        return ModelSource("hub", hub.repo_id, hub.display, hub.revision)
    path = Path(model).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise UsageError(f"{path}: not a transformers model folder (no config.json in it)")
        return ModelSource("local", str(path.resolve()), path.name)
    if _looks_like_hub_id(model):
        check_hub_model(model)
        return ModelSource("hub", model, model)
    names = ", ".join(aliases)
    raise UsageError(f"--model {model!r}: no such folder, and not one of {names} or a Hugging Face id (owner/name)")


def load_pretrained(cls: Any, source: ModelSource, **kwargs: Any) -> Any:
    """``cls.from_pretrained`` for a hub id or folder, with a one-line ``UsageError`` when it fails."""
    if source.kind == "tiny":
        raise ValueError("tiny models are built, not loaded")
    try:
        return cls.from_pretrained(source.location, **source.load_kwargs(), **kwargs)
    except ImportError as e:
        msg = str(e).strip().splitlines()
        first = next((line for line in msg if line.strip()), "missing dependency")
        if "timm" in str(e):
            first = "this checkpoint needs the timm library (not installable without torchvision)"
            if "detr" in source.location.lower():
                first += "; use the revision without timm: --model facebook/detr-resnet-50 is loaded with revision 'no_timm' by --model detr"
        raise UsageError(f"cannot load {source.location}: {first}") from None
    except (OSError, ValueError) as e:
        if source.kind == "hub" and hub_offline():
            raise UsageError(offline_hint(source.location, source.revision)) from None
        first = next((line for line in str(e).strip().splitlines() if line.strip()), type(e).__name__)
        raise UsageError(f"cannot load {source.location}: {first}") from None


def pick_device(name: str = "auto") -> Any:
    """``auto`` -> CUDA when available, else CPU; anything else is passed to ``torch.device``."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError(f"--device {name}: CUDA is not available on this machine (use --device cpu)")
    return torch.device(name)


def pick_dtype(name: str, device: Any) -> Any:
    """Autocast dtype: ``auto`` is fp32 on CPU and bf16 on CUDA; ``fp32`` disables autocast."""
    import torch

    table = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
    if name == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if name not in table:
        raise UsageError(f"--dtype {name!r}: expected auto, fp32, bf16 or fp16")
    return table[name]


@contextmanager
def autocast(device: Any, dtype: Any) -> Iterator[None]:
    """Mixed precision when ``dtype`` is not fp32; a no-op otherwise."""
    import torch

    if dtype == torch.float32:
        yield
        return
    with torch.autocast(device_type=device.type, dtype=dtype):
        yield


@dataclass
class Skipped:
    """Inputs that could not be used: each is logged once as ``skipped <path>: <reason>``."""

    items: list[tuple[str, str]] = field(default_factory=list)

    def add(self, path: str | os.PathLike, reason: str) -> None:
        log.warning("skipped %s: %s", path, reason)
        self.items.append((str(path), reason))

    def __len__(self) -> int:
        return len(self.items)

    @property
    def exit_status(self) -> int:
        return EXIT_PARTIAL if self.items else EXIT_OK

    def to_json(self, limit: int = 50) -> list[dict[str, str]]:
        return [{"path": p, "reason": r} for p, r in self.items[:limit]]


def default_result_path(task: str, model_name: str, dataset: str) -> Path:
    """``results/baseline_<task>_<model>_<dataset>.json`` (``results/`` is ignored by git)."""
    slug = "".join(c if c.isalnum() or c in "-_." else "-" for c in model_name).strip("-")
    return RESULTS_DIR / f"baseline_{task}_{slug}_{dataset}.json"


def environment() -> dict[str, str]:
    import torch
    import transformers

    return {"python": platform.python_version(), "torch": torch.__version__, "transformers": transformers.__version__}


def write_result(
    out: str | os.PathLike,
    task: str,
    dataset: str,
    metrics: Mapping[str, Any],
    *,
    model: str,
    meta: Mapping[str, Any],
) -> dict[str, Any]:
    """Write ``{task: {dataset: metrics}, "model": model, "meta": meta}`` atomically and return it."""
    if "n" not in metrics:
        raise ValueError("metrics must carry the sample count 'n'")
    doc = {task: {dataset: dict(metrics)}, "model": model, "meta": {**meta, "environment": environment()}}
    write_json(out, doc, indent=2)
    return doc


@contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; it replaces ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it private; the result is an ordinary folder
    try:
        yield tmp
        old = None
        if path.exists():
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            os.replace(path, old)
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def quiet_transformers() -> None:
    """Silence transformers' own progress bars and advisory warnings; ours say what matters."""
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


class Timer:
    def __init__(self) -> None:
        self.start = time.perf_counter()

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.start


# ---- what the baseline scripts share ---------------------------------------------------------


def add_runtime_args(parser: argparse.ArgumentParser) -> None:
    """The options of an evaluation script (seg.py, det.py, depth.py) after its own: subset, seed,
    device, precision, tiny model, progress bars, logging."""
    parser.add_argument("--limit", type=int, help="score a seeded subset of N images (quick checks)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--dtype", default="fp32", help="fp32 (default) | bf16 | fp16 autocast")
    parser.add_argument("--tiny", action="store_true", help="a random tiny model of the same family (offline tests)")
    parser.add_argument("--no_progress", action="store_true")
    parser.add_argument("-v", "--verbose", action="store_true")


def prepare(args: argparse.Namespace, aliases: Mapping[str, HubModel], default_roots: Mapping[str, str], *,
            family: str | None = None) -> tuple[ModelSource, Any, Any, Path]:
    """A script's start-up once its own arguments are checked: (model source, device, dtype, data root).

    Reads ``args.model``, ``tiny``, ``device``, ``dtype``, ``dataset`` and ``data_root`` (default:
    ``default_roots[dataset]`` in the repository); a data root that does not exist is a ``UsageError``.
    """
    source = resolve_model(args.model, aliases, tiny=args.tiny, family=family)
    quiet_transformers()
    device = pick_device(args.device)
    dtype = pick_dtype(args.dtype, device)
    data_root = args.data_root or REPO_ROOT / default_roots[args.dataset]
    if not Path(data_root).exists():
        raise UsageError(f"{data_root}: dataset root not found (pass --data_root; see data/README.md)")
    return source, device, dtype, data_root


def run_name(model: str, aliases: Mapping[str, HubModel], *, tiny: bool) -> str:
    """The model's name in result file names and summaries: the alias, ``tiny-<alias>``, or the folder's name."""
    if tiny:
        return "tiny-" + model
    return model if model in aliases else Path(model).name


def run_meta(device: Any, timer: Timer, skipped: Skipped) -> dict[str, Any]:
    """The last keys of a result file's ``meta``: where and how long it ran, and what it skipped."""
    return {
        "device": str(device),
        "seconds": round(timer.seconds, 1),
        "skipped": len(skipped),
        "skipped_items": skipped.to_json(),
    }

