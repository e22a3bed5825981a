#!/usr/bin/env python
"""How much a one-step model's answers depend on the instruction's class and on the image.

A check that training learnt to use both: for up to ``--n`` held-out pairs per task, the answer latent of
(image, instruction) is compared with the answers to the same image with the instruction's class replaced
by each other class its task and dataset ask about, and to the same instruction with each other image.
Printed per task: the mean absolute change of the answer latent, relative to the mean absolute answer
latent, when the class changes and when the image changes. A model that ignores its instruction shows
about 0 in the class column (it draws the same answer whatever it is asked); one that ignores the image,
in the image column.

    python scripts/probe_conditioning.py --ckpt outputs/demo/runs/model --pairs outputs/demo/pairs/eval
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from instructcv.cli import UsageError, run  # noqa: E402
from instructcv.pairs import METADATA_FILE, PairSample, read_index  # noqa: E402
from ldm.batch import load_pair_images, to_model_range, tokenize  # noqa: E402
from ldm.loading import load_components  # noqa: E402
from ldm.one_step import predict_latents  # noqa: E402


def swap_class(edit: str, name: str, other: str) -> str:
    """``edit`` asking about ``other`` instead of ``name`` (whole words, any case)."""
    return re.sub(rf"\b{re.escape(name)}\b", other, edit, flags=re.IGNORECASE)


@torch.no_grad()
def probe(components, pairs: Path, n: int = 10, resolution: int = 64) -> dict[str, dict[str, float]]:
    """Per task: ``{"class": relative change when the class changes, "image": ... when the image changes,
    "pairs": how many pairs were probed}`` (NaN where the task has nothing to swap)."""
    rows = sorted((read_index(pairs) or {}).values(), key=lambda r: r["sample"])
    if not rows:
        raise UsageError(f"--pairs {pairs}: no {METADATA_FILE} rows (a pairs folder written by format_dataset.py?)")
    unet, vae, text_encoder = components.unet.eval(), components.vae.eval(), components.text_encoder.eval()
    classes: dict[tuple[str, str], set[str]] = defaultdict(set)
    for r in rows:
        if r.get("class"):
            classes[(r["task"], r["dataset"])].add(r["class"])

    def answers(images: list[np.ndarray], edits: list[str]) -> torch.Tensor:
        x = torch.stack([to_model_range(im) for im in images])
        latents = vae.encode(x).latent_dist.mode()
        return predict_latents(unet, latents, text_encoder(tokenize(components.tokenizer, edits))[0])

    out = {}
    for task in sorted({r["task"] for r in rows}):
        mine = [r for r in rows if r["task"] == task][:n]
        images = [load_pair_images(PairSample(pairs, r["sample"], r["stem"]), resolution)[0] for r in mine]
        base = answers(images, [r["edit"] for r in mine])
        scale = float(base.abs().mean())
        by_class, by_image = [], []
        for i, r in enumerate(mine):
            others = sorted(classes[(task, r["dataset"])] - {r.get("class")}) if r.get("class") else []
            if others:
                swapped = answers([images[i]] * len(others), [swap_class(r["edit"], r["class"], o) for o in others])
                by_class.append(float((swapped - base[i]).abs().mean()))
            if len(mine) > 1:
                rest = [im for j, im in enumerate(images) if j != i]
                moved = answers(rest, [r["edit"]] * len(rest))
                by_image.append(float((moved - base[i]).abs().mean()))
        out[task] = {"class": float(np.mean(by_class)) / scale if by_class else float("nan"),
                     "image": float(np.mean(by_image)) / scale if by_image else float("nan"), "pairs": len(mine)}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--ckpt", required=True, help="a one-step model: main.py run folder, its export, a .ckpt")
    p.add_argument("--pairs", required=True, type=Path, help="held-out pairs folder (format_dataset.py --split eval)")
    p.add_argument("--n", type=int, default=10, help="pairs probed per task (10)")
    p.add_argument("--resolution", type=int, default=64, help="the model's input size in pixels (64)")
    args = p.parse_args(argv)
    torch.manual_seed(0)
    components = load_components(args.ckpt)
    if components.objective != "one_step":
        raise UsageError(f"--ckpt {args.ckpt}: a {components.objective} model; the probe reads one-step answers")
    result = probe(components, args.pairs, args.n, args.resolution)
    print("relative change of the answer latent when the instruction's class / the image changes")
    print(f"{'task':<6} {'pairs':>5} {'class':>8} {'image':>8}")
    for task, r in result.items():
        print(f"{task:<6} {r['pairs']:>5} {r['class']:>8.3f} {r['image']:>8.3f}")
    return 0


if __name__ == "__main__":
    run(main)
