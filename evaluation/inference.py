"""Running a model over the queries that have no cached answer yet (``evaluate.py --ckpt``).

The model is the inference API ``edit_cli.py`` uses (``ldm.inference.InstructCV``): every query's input
image and instruction, batched (images whose processed shapes agree share a UNet batch), one generator
per image seeded with ``seed``, so an answer does not depend on the batch it landed in. Each answer is
written to the cache as soon as its batch finishes: an interrupted run loses at most one chunk.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evaluation.answers import AnswerCache
from evaluation.pairs import input_path
from instructcv.images import ImageReadError, load_rgb
from ldm.cli_model import load_model  # noqa: F401 (evaluate.py loads --ckpt with the command lines' loader)

log = logging.getLogger("evaluate")


@dataclass
class Generation:
    """What a generation pass did."""

    generated: int = 0
    reused: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)  # (sample, reason)
    model_loaded: bool = False


def _image_size(path: Path) -> tuple[int, int]:
    from PIL import Image

    try:
        with Image.open(path) as im:
            return im.size
    except OSError:
        return (0, 0)  # unreadable: reported when it is loaded


def generate_answers(queries: list[dict[str, Any]], pairs_dir: str | Path, cache: AnswerCache,
                     get_model: Callable[[], Any], *, have: set[str], steps: int, cfg_text: float,
                     cfg_image: float, resolution: int, seed: int, batch_size: int,
                     progress: bool = True) -> Generation:  # fmt: skip
    """Answer every query whose sample is not in ``have``; ``get_model`` is called only if one is left."""
    from tqdm.auto import tqdm

    report = Generation(reused=sum(q["sample"] in have for q in queries))
    todo = [q for q in queries if q["sample"] not in have]
    if not todo:
        return report
    # equal shapes share UNet batches: order by input size
    todo.sort(key=lambda q: (_image_size(input_path(pairs_dir, q)), q["sample"]))
    model = get_model()
    report.model_loaded = True
    log.info("answering %d queries with %s", len(todo), model)
    chunk = max(32, 8 * batch_size)  # bounds memory: generate() keeps the resized inputs of a chunk
    with tqdm(total=len(todo), desc="answering", unit="query", disable=not progress, file=sys.stderr,
              dynamic_ncols=True) as bar:  # fmt: skip
        for start in range(0, len(todo), chunk):
            items, images = [], []
            for q in todo[start : start + chunk]:
                if not str(q.get("edit") or "").strip():
                    report.failed.append((q["sample"], "no instruction ('edit') in metadata"))
                    bar.update(1)
                    continue
                try:
                    images.append(load_rgb(input_path(pairs_dir, q), exif_transpose=False))
                    items.append(q)
                except ImageReadError as e:
                    report.failed.append((q["sample"], f"input unreadable ({e})"))
                    bar.update(1)
            if not items:
                continue
            for i, answer in model.generate(images, [q["edit"] for q in items], steps=steps, cfg_text=cfg_text,
                                            cfg_image=cfg_image, resolution=resolution, seed=seed,
                                            batch_size=batch_size, progress=bar):  # fmt: skip
                cache.save(items[i]["sample"], answer)
                report.generated += 1
    return report
