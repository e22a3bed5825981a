"""Training-step speed and memory: images/s and peak memory of one main.py training step.

The step is the one ``InstructCVModel`` trains with (latents, CFG dropout, noise, UNet forward and
backward, AdamW step, and the EMA update with ``--ema``), timed without Lightning around it. Each
variant runs in its own process (benchmarks/train_step.py) so that its peak resident set size (VmHWM) is its own.

Variants (``--variants``):
  tiny, tiny+cache                configs/tiny.yaml model, 64 px, batch 4
  sd15, sd15+ckpt,                full SD v1.5 architecture (random weights), --resolution (256) px,
  sd15+cache, sd15+cache+ckpt     --batch (1); "cache" = batch from the latent cache (no VAE / text
                                  encoder in the step), "ckpt" = UNet gradient checkpointing

Targets: a full-size step within 16 GB peak RSS; the latent cache >= 1.3x images/s.
With a GPU: ``--device cuda --batch 32 --precision bf16`` (anchor: ~137 images/s per A100 for
SD-2-base with precomputed latents).

Examples:
  .venv/bin/python benchmarks/bench_train.py                         # tiny + 4 full-size variants, 3 steps (~10 min on 2 cores)
  .venv/bin/python benchmarks/bench_train.py --variants tiny tiny+cache --steps 20
  .venv/bin/python benchmarks/bench_train.py --variants sd15+cache+ckpt --ema   # + the EMA copy (3.4 GB more)
  .venv/bin/python benchmarks/bench_train.py --device cuda --batch 32 --precision bf16 --ema \\
      --variants sd15+cache sd15+cache+ckpt sd15+ckpt
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

STEP = Path(__file__).with_name("train_step.py")  # the timed step, run once per variant
VARIANTS = ["tiny", "tiny+cache", "sd15", "sd15+ckpt", "sd15+cache", "sd15+cache+ckpt"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", nargs="+", default=VARIANTS, choices=VARIANTS)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per variant (the fastest counts), after a warm-up")
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--batch", type=int, default=1, help="batch size of the full-size variants")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32", help="bf16 = autocast (bf16-mixed)")
    parser.add_argument("--ema", action="store_true", help="include the EMA copy of the UNet and its update")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()

    settings = {k: getattr(args, k) for k in ("steps", "resolution", "batch", "device", "precision", "ema", "threads")}
    print(f"training step, {args.device}, {args.precision}, EMA {'on' if args.ema else 'off'}, "
          f"fastest of {args.steps} timed steps after 1 warm-up")
    print(f"{'variant':<18}{'px':>5}{'batch':>6}{'s/step':>9}{'mean':>8}{'images/s':>10}{'peak RSS GiB':>14}"
          + (f"{'peak GPU GiB':>14}" if args.device.startswith("cuda") else ""))
    results = {}
    for name in args.variants:
        # each variant in its own process (train_step.py imports torch and the model): its peak RSS is its own
        proc = subprocess.run([sys.executable, str(STEP), json.dumps({"variant": name, **settings})],
                              capture_output=True, text=True)
        line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
        if proc.returncode or line is None:
            tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            print(f"{name:<18} failed (exit {proc.returncode}): {tail}")
            continue
        r = results[name] = json.loads(line[len("RESULT "):])
        print(f"{name:<18}{r['resolution']:>5}{r['batch']:>6}{r['s_per_step']:>9.2f}{r['mean_s_per_step']:>8.2f}"
              f"{r['images_per_s']:>10.3f}"
              f"{r['peak_rss_gib']:>14.2f}" + (f"{r['peak_gpu_gib']:>14.2f}" if "peak_gpu_gib" in r else ""), flush=True)

    for base in ("tiny", "sd15", "sd15+ckpt"):
        cached = base.replace("tiny", "tiny+cache") if base == "tiny" else base.replace("sd15", "sd15+cache")
        if base in results and cached in results:
            ratio = results[cached]["images_per_s"] / results[base]["images_per_s"]
            print(f"latent cache speed-up {base} -> {cached}: {ratio:.2f}x (target >= 1.3x)")
    full = [r for n, r in results.items() if n.startswith("sd15")]
    if full and args.device == "cpu":
        worst = max(full, key=lambda r: r["peak_rss_gib"])
        print(f"largest full-size peak RSS: {worst['peak_rss_gib']:.2f} GiB ({worst['variant']}; target <= 16 GB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
