#!/usr/bin/env python
"""The demo's last stage: the chance scores beside its metrics, and summary.png (one row per task).

summary.png shows, for one held-out image per task: input | expected answer (the pair's target) | the
model's answer | what was read back from it (boxes drawn, mask overlay, verdict, colour depth), drawn by
each task's own ``render`` / ``describe``, because people would rather look than read.

example:
  python scripts/demo_summary.py --pairs outputs/demo/pairs/eval --train outputs/demo/pairs/train \\
      --answers outputs/demo/answers --out outputs/demo --show det=<sample> seg=<sample> ...
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import tasks  # noqa: E402
from evaluation.chance import chance_metrics  # noqa: E402
from evaluation.pairs import input_path, read_pairs, target_path  # noqa: E402
from instructcv.cli import UsageError, run  # noqa: E402
from instructcv.images import ImageReadError, load_rgb  # noqa: E402
from instructcv.io import save_image, write_json  # noqa: E402

CELL = 160  # panel height in pixels
LABEL_WIDTH = 110
HEADER = 26
COLUMNS = ("input", "expected answer", "model's answer", "read back")
TEXT = (20, 20, 20)
WHITE = (255, 255, 255)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("example:", 1)[1].join(["example:", ""]))
    p.add_argument("--pairs", required=True, help="the held-out pairs folder")
    p.add_argument("--train", required=True, help="the training pairs folder (mean training targets)")
    p.add_argument("--answers", required=True, help="folder with <task>/<input stem>.png answers (edit_cli.py)")
    p.add_argument("--out", required=True, help="writes <out>/summary.png and <out>/eval/chance.json")
    p.add_argument("--show", nargs="*", default=[], metavar="TASK=SAMPLE",
                   help="the held-out pairs sample shown for each task (its answer is answers/<task>/)")
    p.add_argument("--colors", nargs=2, default=None, metavar=("POSITIVE", "NEGATIVE"),
                   help="the colours the answers were asked for (when the instruction named them)")
    p.add_argument("--seed", type=int, default=0, help="seed of the evaluation's absent-class queries (0)")
    return p.parse_args(argv)


def fit(image: np.ndarray) -> np.ndarray:
    """``image`` (grey or RGB) as RGB, CELL pixels high."""
    rgb = np.repeat(image[..., None], 3, axis=2) if image.ndim == 2 else image[..., :3]
    if rgb.dtype == bool:
        rgb = rgb.astype(np.uint8) * 255
    width = max(1, round(rgb.shape[1] * CELL / rgb.shape[0]))
    return cv2.resize(np.ascontiguousarray(rgb, dtype=np.uint8), (width, CELL), interpolation=cv2.INTER_NEAREST)


def text_panel(text: str, width: int = CELL) -> np.ndarray:
    """``text`` wrapped onto a white panel CELL pixels high."""
    panel = np.full((CELL, width, 3), 255, np.uint8)
    words, lines = text.split(), [""]
    for word in words:
        trial = f"{lines[-1]} {word}".strip()
        if cv2.getTextSize(trial, cv2.FONT_HERSHEY_SIMPLEX, 0.4, 1)[0][0] > width - 8 and lines[-1]:
            lines.append(word)
        else:
            lines[-1] = trial
    for i, line in enumerate(lines[:10]):
        cv2.putText(panel, line, (4, 16 + 15 * i), cv2.FONT_HERSHEY_SIMPLEX, 0.4, TEXT, 1, cv2.LINE_AA)
    return panel


def task_row(pairs: Path, answers: Path, row: dict[str, Any], colors: list[str] | None) -> list[np.ndarray]:
    """The four panels of one task: input, target, answer, what the task reads back from the answer."""
    task = tasks.task(row["task"])
    image = np.asarray(load_rgb(input_path(pairs, row), exif_transpose=False))
    target = np.asarray(load_rgb(target_path(pairs, row), exif_transpose=False))
    answer_file = answers / row["task"] / f"{input_path(pairs, row).stem}.png"
    answer = np.asarray(load_rgb(answer_file, exif_transpose=False))
    record = {**row, "colors": colors} if colors and row.get("colors") else row
    size = image.shape[1::-1]
    prediction = task.read_answer(answer, record, size, image=image)
    picture = task.render(prediction, image)
    read_back = fit(picture) if picture is not None else text_panel(task.describe(prediction, record))
    return [fit(image), fit(target), fit(answer), read_back]


def sheet(rows: list[tuple[str, list[np.ndarray]]]) -> np.ndarray:
    """Rows of panels under a header, each row named on the left; columns as wide as their widest panel."""
    widths = [max(panels[i].shape[1] for _, panels in rows) for i in range(len(COLUMNS))]
    height = HEADER + len(rows) * (CELL + 4)
    out = np.full((height, LABEL_WIDTH + sum(w + 4 for w in widths), 3), 255, np.uint8)
    x = LABEL_WIDTH
    for title, w in zip(COLUMNS, widths, strict=True):
        cv2.putText(out, title, (x + 2, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, TEXT, 1, cv2.LINE_AA)
        x += w + 4
    for r, (label, panels) in enumerate(rows):
        y = HEADER + r * (CELL + 4)
        for i, line in enumerate(label.split("\n")):
            cv2.putText(out, line, (4, y + 20 + 18 * i), cv2.FONT_HERSHEY_SIMPLEX, 0.5, TEXT, 1, cv2.LINE_AA)
        x = LABEL_WIDTH
        for panel, w in zip(panels, widths, strict=True):
            out[y:y + CELL, x:x + panel.shape[1]] = panel
            x += w + 4
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    pairs, out = Path(args.pairs), Path(args.out)
    rows = {r["sample"]: r for r in read_pairs(pairs)}
    shown = []
    for item in args.show:
        tag, _, sample = item.partition("=")
        if sample not in rows or rows[sample]["task"] != tag:
            raise UsageError(f"--show {item}: no {tag} sample {sample!r} in {pairs}")
        row = rows[sample]
        try:
            panels = task_row(pairs, Path(args.answers), row, args.colors)
        except (ImageReadError, OSError, ValueError) as e:
            raise UsageError(f"--show {item}: {e}") from None
        label = f"{tasks.task(tag).title}\n{row['dataset']}" + (f"\n'{row['class']}'" if row.get("class") else "")
        shown.append((label, panels))
    write_json(out / "eval" / "chance.json", chance_metrics(pairs, args.train, seed=args.seed), indent=2)
    if shown:
        save_image(out / "summary.png", sheet(shown))
    print(f"chance scores: {out / 'eval' / 'chance.json'}; summary picture: {out / 'summary.png'} "
          f"({len(shown)} rows)")
    return 0


if __name__ == "__main__":
    run(main)
