"""One variant of bench_train.py's training step, timed in a process of its own (its peak RSS is its own).

bench_train.py runs it as ``python benchmarks/train_step.py '<json settings>'`` and reads the
``RESULT {...}`` line it prints; the settings are bench_train.py's options plus ``variant``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

from ldm.components import build_random_components  # noqa: E402
from ldm.model import InstructCVModel  # noqa: E402
from main import model_params  # noqa: E402


def peak_rss_gib() -> float:
    """The process' peak resident set size (VmHWM) in GiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def run_variant(name: str, args: argparse.Namespace) -> dict:
    """Build variant ``name``'s model and batch, time ``args.steps`` training steps, return the figures."""
    if args.threads:
        torch.set_num_threads(args.threads)
    tiny = name.startswith("tiny")
    cache, checkpointing = "+cache" in name, "+ckpt" in name
    device = torch.device(args.device)
    if tiny:
        tiny_cfg = OmegaConf.load(REPO / "configs" / "tiny.yaml")
        overrides = OmegaConf.to_container(tiny_cfg.model.params.architecture_overrides)
        components = build_random_components("tiny", seed=0, overrides=overrides)
        resolution, batch_size = tiny_cfg.data.params.resolution, tiny_cfg.data.params.batch_size
    else:
        components = build_random_components("sd15", seed=0)
        resolution, batch_size = args.resolution, args.batch
    params = model_params(use_ema=args.ema, gradient_checkpointing=checkpointing)  # main.py's DEFAULTS otherwise
    model = InstructCVModel(components, **params).to(device)
    optimizer = model.configure_optimizers()

    g = torch.Generator().manual_seed(0)
    latent = resolution // components.vae_scale_factor
    if cache:  # what CachedPairsDataset yields: float16 latents and text embeddings
        hidden = components.text_encoder.config.hidden_size
        batch = {"input_mode": torch.randn(batch_size, 4, latent, latent, generator=g).half(),
                 "target_mean": torch.randn(batch_size, 4, latent, latent, generator=g).half(),
                 "target_std": torch.full((batch_size, 4, latent, latent), 0.01).half(),
                 "text_embedding": torch.randn(batch_size, 77, hidden, generator=g).half()}
    else:  # what PairsDataset yields: images in [-1, 1] and token ids
        batch = {"input": torch.rand(batch_size, 3, resolution, resolution, generator=g) * 2 - 1,
                 "target": torch.rand(batch_size, 3, resolution, resolution, generator=g) * 2 - 1,
                 "input_ids": torch.randint(0, 49407, (batch_size, 77), generator=g)}
    batch = {k: v.to(device) for k, v in batch.items()}
    autocast = (torch.autocast(device.type, dtype=torch.bfloat16) if args.precision == "bf16"
                else contextlib.nullcontext())

    def step() -> float:
        with autocast:
            loss = model.diffusion_loss(*model.batch_latents(batch))
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if model.ema is not None:
            model.ema.update(model.unet)
        return loss.item()

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.cuda.reset_peak_memory_stats()
    step()  # warm-up: allocator, autotuning, AdamW state
    sync()
    times = []
    for _ in range(args.steps):
        start = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - start)
    # the fastest step: on a shared machine the others carry other people's load, not this code's
    seconds = min(times)
    result = {"variant": name, "resolution": resolution, "batch": batch_size, "s_per_step": seconds,
              "mean_s_per_step": sum(times) / len(times), "images_per_s": batch_size / seconds,
              "peak_rss_gib": peak_rss_gib()}
    if device.type == "cuda":
        result["peak_gpu_gib"] = torch.cuda.max_memory_allocated() / 2**30
    return result


if __name__ == "__main__":
    settings = json.loads(sys.argv[1])
    variant = settings.pop("variant")
    print("RESULT " + json.dumps(run_variant(variant, argparse.Namespace(**settings))), flush=True)
