"""Inference speed: images/s and peak memory of InstructCV's path (edit_cli) vs a plain loop of diffusers' pipeline.

Both sides run the very same modules (random weights), the same steps, guidance and seed; the
diffusers side is ``StableDiffusionInstructPix2PixPipeline`` called once per image, the way a
straightforward script would use it. Images are already at the sampled size so neither side resizes.

Parts:
  tiny  tiny random model, 64 px, 20 steps, 16 images; ours at batch 1 and 8   (seconds)
  full  SD v1.5 architecture, random weights, 256 px, 10 steps, 4 images, fp32 and bf16   (minutes on CPU)
  gpu   with a CUDA device: UNet it/s at 512 px (guided step = 3 UNet rows) and seconds per 100-step answer
  one_step  answers/s of a one-step model vs 100-step guidance, same architecture (benchmarks/one_step_speed.py):
        tiny (64 px) and SD v1.5 size (256 px, 100 steps extrapolated) on CPU in fp32 and bf16; with CUDA
        also 512 px at batch 1 and 16 in bf16 + SDPA

Targets: ours >= diffusers at batch 1; >= 2x at batch 8 (tiny); bf16 >= 1.5x fp32 at full size on CPU.

Examples:
  .venv/bin/python benchmarks/bench_infer.py --quick --threads 1   # tiny part only, one run each (~3 min)
  .venv/bin/python benchmarks/bench_infer.py --threads 1           # tiny + full size (CPU: ~30 min on 2 cores)
  .venv/bin/python benchmarks/bench_infer.py --part gpu --device cuda
  .venv/bin/python benchmarks/bench_infer.py --part one_step --threads 2   # CPU ~10 min on 2 cores; + GPU rows
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import one_step_speed  # noqa: E402  (benchmarks/, beside this script)
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from ldm.components import build_random_components  # noqa: E402
from ldm.inference import InstructCV  # noqa: E402
from ldm.sampling import guided_noise, make_scheduler  # noqa: E402

INSTRUCTION = "Segment the cat."
SEED = 0


@dataclass
class Result:
    images_per_s: float
    peak_mib: float


def _reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    else:
        try:  # Linux: "5" resets the process' peak resident set size (VmHWM)
            Path("/proc/self/clear_refs").write_text("5")
        except OSError:
            pass


def _peak_mib(device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() / 2**20
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _images(n: int, size: int, seed: int = 0) -> list[Image.Image]:
    """Smooth random pictures (noise upsampled), distinct per index."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        small = rng.integers(0, 256, (size // 8, size // 8, 3), dtype=np.uint8)
        out.append(Image.fromarray(small).resize((size, size), Image.Resampling.BICUBIC))
    return out


def _measure(paths: dict[str, list[Callable[[], object]]], device: torch.device, repeats: int) -> dict[str, Result]:
    """Time each path, given as a list of chunks (one call each: an image for a loop, a batch for ours).

    The chunks of all paths are interleaved in proportion to their progress, so that load from other
    processes on a shared machine falls on every path alike; a path's time is the sum of its chunks,
    best of ``repeats``; its peak memory is the highest of its chunks.
    """
    schedule = sorted(((k + 0.5) / len(chunks), name, k) for name, chunks in paths.items() for k in range(len(chunks)))
    n_images = {name: sum(getattr(c, "n_images", 1) for c in chunks) for name, chunks in paths.items()}
    best = dict.fromkeys(paths, float("inf"))
    peak = dict.fromkeys(paths, 0.0)
    for _ in range(repeats):
        total = dict.fromkeys(paths, 0.0)
        for _, name, k in schedule:
            _reset_peak(device)
            t0 = time.perf_counter()
            paths[name][k]()
            if device.type == "cuda":
                torch.cuda.synchronize()
            total[name] += time.perf_counter() - t0
            peak[name] = max(peak[name], _peak_mib(device))
        for name in paths:
            best[name] = min(best[name], total[name])
    return {name: Result(n_images[name] / best[name], peak[name]) for name in paths}


class _Chunk:
    """One timed call: ``fn(*args)`` covering ``n_images`` images."""

    def __init__(self, fn: Callable[..., object], n_images: int, *args):
        self.fn, self.n_images, self.args = fn, n_images, args

    def __call__(self) -> object:
        return self.fn(*self.args)


def _pipeline(model):
    from diffusers import StableDiffusionInstructPix2PixPipeline


    c = model.components
    pipe = StableDiffusionInstructPix2PixPipeline(
        vae=c.vae,
        text_encoder=c.text_encoder,
        tokenizer=c.tokenizer,
        unet=c.unet,
        scheduler=make_scheduler("euler_ancestral", c.scheduler_config),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def compare(model, images, size: int, steps: int, batches: list[int], repeats: int) -> list[tuple[str, Result]]:
    pipe = _pipeline(model)

    def ours(imgs: list[Image.Image], batch: int):
        return model(imgs, INSTRUCTION, steps=steps, resolution=size, seed=SEED, batch_size=batch, progress=False)

    def diffusers_one(img: Image.Image):
        return pipe(INSTRUCTION, image=img, num_inference_steps=steps, generator=torch.Generator().manual_seed(SEED))

    # Warm-up (allocator, oneDNN/cuDNN kernel choice) on one image each, untimed.
    model(images[:1], INSTRUCTION, steps=2, resolution=size, progress=False)
    pipe(INSTRUCTION, image=images[0], num_inference_steps=2, generator=torch.Generator().manual_seed(SEED))

    paths = {"diffusers loop": [_Chunk(diffusers_one, 1, img) for img in images]}
    for b in batches:
        paths[f"ours batch {b}"] = [_Chunk(ours, len(images[i : i + b]), images[i : i + b], b)
                                    for i in range(0, len(images), b)]
    return list(_measure(paths, model.device, repeats).items())


def unet_rows(model, size: int) -> None:
    """UNet milliseconds per row at 3 rows (one image with guidance) and 24 rows (eight images):
    equal figures mean the model is compute-bound here and batching cannot pay much."""
    c = model.components
    h = size // c.vae_scale_factor
    t = torch.tensor(500, device=model.device)
    out = []
    for rows in (3, 24):
        x = torch.randn(rows, 8, h, h, device=model.device, dtype=model.dtype)
        e = torch.randn(rows, 77, c.text_encoder.config.hidden_size, device=model.device, dtype=model.dtype)
        with torch.inference_mode():
            c.unet(x, t, encoder_hidden_states=e)
            t0 = time.perf_counter()
            for _ in range(3):
                c.unet(x, t, encoder_hidden_states=e)
            if model.device.type == "cuda":
                torch.cuda.synchronize()
        out.append((time.perf_counter() - t0) / 3 / rows * 1e3)
    print(f"  UNet ms per row: {out[0]:.1f} at 3 rows, {out[1]:.1f} at 24 rows ({out[0] / out[1]:.2f}x from batching)")


def _print(title: str, rows: list[tuple[str, Result]]) -> None:
    base = rows[0][1].images_per_s
    print(f"\n{title}")
    print(f"  {'path':<16} {'images/s':>9} {'s/image':>8} {'vs diffusers':>13} {'peak MiB':>9}")
    for name, r in rows:
        print(f"  {name:<16} {r.images_per_s:9.4f} {1 / r.images_per_s:8.2f} {r.images_per_s / base:12.2f}x "
              f"{r.peak_mib:9.0f}")


def _check(label: str, value: float, target: float) -> bool:
    ok = value >= target
    print(f"  [{'ok' if ok else 'MISS'}] {label}: {value:.2f} (target >= {target})")
    return ok


def part_tiny(device: str, repeats: int) -> bool:

    model = InstructCV.from_components(build_random_components("tiny", seed=0), device=device, dtype="fp32")
    rows = compare(model, _images(16, 64), size=64, steps=20, batches=[1, 8], repeats=repeats)
    _print("tiny model, 64 px, 20 steps, 16 images, fp32", rows)
    unet_rows(model, 64)
    d = dict(rows)
    base = d["diffusers loop"].images_per_s
    ok = _check("batch 1 vs diffusers", d["ours batch 1"].images_per_s / base, 1.0)
    return _check("batch 8 vs diffusers", d["ours batch 8"].images_per_s / base, 2.0) and ok


def part_full(device: str, n_images: int, steps: int, batched: bool) -> bool:

    speeds = {}
    ok = True
    components = build_random_components("sd15", seed=0)
    images = _images(n_images, 256)
    for dtype in ("fp32", "bf16"):
        model = InstructCV.from_components(components, device=device, dtype=dtype)  # casts in place
        rows = compare(model, images, size=256, steps=steps, batches=[1, n_images] if batched else [1], repeats=1)
        _print(f"SD v1.5 architecture (random), 256 px, {steps} steps, {n_images} images, {dtype}", rows)
        speeds[dtype] = d = dict(rows)
        ratio = d["ours batch 1"].images_per_s / d["diffusers loop"].images_per_s
        ok = _check(f"{dtype} batch 1 vs diffusers", ratio, 1.0) and ok
    ratio = speeds["bf16"]["ours batch 1"].images_per_s / speeds["fp32"]["ours batch 1"].images_per_s
    if torch.device(device).type == "cpu":
        return _check("bf16 vs fp32 (ours, batch 1, CPU)", ratio, 1.5) and ok
    print(f"  bf16 vs fp32: {ratio:.2f}x")
    return ok


def part_gpu(compile_unet: bool) -> bool:

    if not torch.cuda.is_available():
        print("\ngpu part: no CUDA device, skipped")
        return True
    model = InstructCV.from_components(build_random_components("sd15", seed=0), device="cuda", dtype="auto")
    c = model.components
    if compile_unet:
        c.unet = torch.compile(c.unet)
    latents = torch.randn(1, 4, 64, 64, device="cuda", dtype=model.dtype)
    image_latents = torch.randn_like(latents)
    text = model.encode_prompt(INSTRUCTION)
    uncond = model.encode_prompt("")
    t = torch.tensor(500, device="cuda")
    with torch.inference_mode():
        for _ in range(5):
            guided_noise(c.unet, latents, t, image_latents, text, uncond, 7.5, 1.5)
        torch.cuda.synchronize()
        n = 30
        t0 = time.perf_counter()
        for _ in range(n):
            guided_noise(c.unet, latents, t, image_latents, text, uncond, 7.5, 1.5)
        torch.cuda.synchronize()
        its = n / (time.perf_counter() - t0)
    image = _images(1, 512)
    model(image, INSTRUCTION, steps=5, resolution=512, progress=False)
    t0 = time.perf_counter()
    model(image, INSTRUCTION, steps=100, resolution=512, progress=False)
    torch.cuda.synchronize()
    answer_s = time.perf_counter() - t0
    print(f"\nGPU {torch.cuda.get_device_name()}, {model.dtype}, channels_last, compile={compile_unet}")
    print(f"  guided UNet steps at 512 px: {its:.1f} it/s   (anchor: A100 ~47 it/s with compile + channels_last)")
    print(f"  one 100-step answer at 512 px: {answer_s:.2f} s")
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny part only, one timing each")
    parser.add_argument("--part", choices=["tiny", "full", "gpu", "one_step", "all"], default="all")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (tiny and full parts)")
    parser.add_argument("--full-images", type=int, default=4)
    parser.add_argument("--full-steps", type=int, default=10)
    parser.add_argument("--full-batched", action="store_true", help="full part: also ours at batch = --full-images")
    parser.add_argument("--repeats", type=int, default=2, help="tiny part: best of N interleaved runs (2)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: torch's choice); on a machine shared with other jobs "
                        "1 thread gives stable figures, oversubscribed OpenMP threads can be 10x slower")
    parser.add_argument("--compile", action="store_true", help="torch.compile the UNet in the gpu part")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from diffusers.utils import logging as dlogging

    dlogging.set_verbosity_error()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}")
    ok = True
    if args.part in ("tiny", "all"):
        ok = part_tiny(args.device, repeats=1 if args.quick else args.repeats) and ok
    if args.part in ("full", "all") and not args.quick:
        ok = part_full(args.device, args.full_images, args.full_steps, args.full_batched) and ok
    if args.part == "gpu" or (args.part == "all" and torch.cuda.is_available() and not args.quick):
        ok = part_gpu(args.compile) and ok
    if args.part in ("one_step", "all"):
        ok = one_step_speed.run_cpu(_images, args.device, quick=args.quick) and ok
        ok = one_step_speed.run_gpu(_images) and ok
    print("\nall targets met" if ok else "\nsome targets missed")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
