"""Answers/s of a one-step model vs the same architecture with 100 guided steps (bench_infer.py --part one_step).

Both models are the very same modules (random weights); only ``components.objective`` differs, so the
comparison is one UNet call vs 100 guided steps (300 UNet rows), with the same VAE encode/decode and text
encoding on either side. Where a full 100-step answer would take minutes (SD v1.5 size on a CPU) it is
*extrapolated*: a 1-step answer is timed (VAE, text, one guided step) and 99 more guided steps added at the
best of three timed guided steps (3 UNet rows each); the table says "extrapolated" on those rows. (The
difference of two timed answers, e.g. 3 steps minus 1, drowns in the load of a shared machine.)

Targets (issue 14): >= 25x at SD v1.5 size on CPU (the VAE dominates a one-step answer there);
on a GPU >= 50x, and a one-step answer at 512 px in <= 50 ms on an H100-class GPU (batch 1, bf16, SDPA).
"""

from __future__ import annotations

import dataclasses
import time

import torch

from ldm.components import build_random_components
from ldm.inference import InstructCV
from ldm.sampling import guided_noise

INSTRUCTION = "Segment the cat."


@dataclasses.dataclass
class Speed:
    answers_per_s: float
    extrapolated: bool = False


def _models(architecture: str, device: str, dtype: str):
    """(one-step model, diffusion model) over the same random modules, on ``device`` in ``dtype``."""

    components = build_random_components(architecture, seed=0)
    one_step = dataclasses.replace(components, objective="one_step")  # the same modules
    one = InstructCV.from_components(one_step, device=device, dtype=dtype)
    return one, InstructCV.from_components(components, device=device, dtype=dtype)


def _seconds(model, images, steps: int, size: int, batch: int, repeats: int) -> float:
    """Best wall time of answering ``images`` (after one untimed warm-up call)."""
    def call():
        model(images, INSTRUCTION, steps=steps, resolution=size, batch_size=batch, progress=False)
        if model.device.type == "cuda":
            torch.cuda.synchronize()

    call()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - t0)
    return best


def _guided_step_seconds(model, size: int, batch: int, repeats: int = 3) -> float:
    """Best time of one guided sampler step (``ldm.sampling.guided_noise``: 3 UNet rows per image)."""

    c = model.components
    h = size // c.vae_scale_factor
    latents = torch.randn(batch, 4, h, h, device=model.device, dtype=model.dtype)
    text = model.encode_prompt(INSTRUCTION).expand(batch, -1, -1)
    uncond = model.encode_prompt("").expand(batch, -1, -1)
    t = torch.tensor(500, device=model.device)
    best = float("inf")
    with torch.inference_mode():
        for _ in range(repeats):
            t0 = time.perf_counter()
            guided_noise(c.unet, latents, t, latents, text, uncond, 7.5, 1.5)
            if model.device.type == "cuda":
                torch.cuda.synchronize()
            best = min(best, time.perf_counter() - t0)
    return best


def measure(architecture: str, device: str, dtype: str, size: int, batch: int, images, *, full_run: bool,
            repeats: int = 1) -> tuple[Speed, Speed]:
    """(one-step, 100-step guided) answers/s of ``images`` at ``batch``; 100 steps extrapolated unless ``full_run``."""
    one, diffusion = _models(architecture, device, dtype)
    one_s = _seconds(one, images, 100, size, batch, repeats)  # steps are ignored by a one-step model
    if full_run:
        many_s = _seconds(diffusion, images, 100, size, batch, repeats)
    else:
        batches = -(-len(images) // batch)
        step = _guided_step_seconds(diffusion, size, batch)
        many_s = _seconds(diffusion, images, 1, size, batch, repeats) + 99 * batches * step
    n = len(images)
    return Speed(n / one_s), Speed(n / many_s, extrapolated=not full_run)


def report(title: str, one: Speed, many: Speed, target: float | None) -> bool:
    """Print one comparison row; True when the speed-up meets ``target`` (or there is none)."""
    ratio = one.answers_per_s / many.answers_per_s
    note = " (100 steps extrapolated: 1-step answer + 99 guided steps)" if many.extrapolated else ""
    print(f"  {title:<44} one-step {one.answers_per_s:9.3f}/s ({1e3 / one.answers_per_s:8.1f} ms)   "
          f"100-step {many.answers_per_s:9.4f}/s   {ratio:7.1f}x{note}")
    if target is None:
        return True
    ok = ratio >= target
    print(f"  [{'ok' if ok else 'MISS'}] one-step vs 100-step: {ratio:.1f}x (target >= {target}x)")
    return ok


def run_cpu(images_of, device: str = "cpu", quick: bool = False) -> bool:
    """Tiny (full 100-step runs) and, unless ``quick``, SD v1.5 size at 256 px (extrapolated), fp32 and bf16."""
    print("\none-step vs 100-step two-way guidance, same architecture, batch 1")
    ok = True
    for dtype in ("fp32", "bf16"):
        one, many = measure("tiny", device, dtype, 64, 1, images_of(2, 64), full_run=True)
        ok = report(f"tiny, 64 px, {dtype}", one, many, None) and ok
    if quick:
        return ok
    for dtype in ("fp32", "bf16"):
        one, many = measure("sd15", device, dtype, 256, 1, images_of(1, 256), full_run=False)
        ok = report(f"SD v1.5 size, 256 px, {dtype}, {device}", one, many, 25.0) and ok
    return ok


def run_gpu(images_of) -> bool:
    """512 px, batch 1 and 16, bf16 with SDPA (InstructCV's attention), full 100-step runs."""
    if not torch.cuda.is_available():
        print("\none-step gpu part: no CUDA device, skipped")
        return True
    print(f"\none-step vs 100-step on {torch.cuda.get_device_name()}, 512 px, bf16, SDPA")
    ok = True
    for batch in (1, 16):
        one, many = measure("sd15", "cuda", "bf16", 512, batch, images_of(batch, 512), full_run=True, repeats=3)
        ok = report(f"SD v1.5 size, 512 px, batch {batch}", one, many, 50.0) and ok
        if batch == 1:
            ms = 1e3 / one.answers_per_s
            print(f"  [{'ok' if ms <= 50 else 'MISS'}] one-step answer at 512 px: {ms:.1f} ms "
                  "(target <= 50 ms on an H100-class GPU)")
            ok = ok and ms <= 50
    return ok
