"""Answer an instruction on your images with InstructCV: one answer image per input, optionally decoded.

    python edit_cli.py --input imgs/ --output outputs/ --edit "segment the cat."

Each input (a file, or every jpg/png/webp/bmp/tiff under a folder, recursively) gets
``<output>/<relative path without extension>.png`` at its original size. With ``--decode`` the answer
is also read back by the task the instruction asks for (see ldm/answers.py). Finished answers are
kept on a re-run (``--overwrite`` to redo them); unreadable images are named and skipped (exit 2).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from tqdm.auto import tqdm

from instructcv.cli import EXIT_PARTIAL, UsageError, run, setup_logging
from instructcv.images import IMAGE_EXTENSIONS, ImageReadError, list_images, load_rgb
from instructcv.io import save_image
from ldm.answers import decoded_paths, parse, write_decoded
from ldm.sampling import DEFAULT_SCHEDULER, SCHEDULERS

log = logging.getLogger("edit_cli")

PLACEHOLDERS = {"%": ("class_name", "--class"), "*": ("positive", "--positive"), "#": ("negative", "--negative")}

EXAMPLES = """\
examples:
  python edit_cli.py --input imgs/ --output outputs/ --edit "segment the cat."
  python edit_cli.py --input photo.jpg --output out/ --edit "Detect the dog." --ckpt alaa-lab/InstructCV \\
      --steps 100 --cfg-text 7.5 --cfg-image 1.5 --resolution 512 --seed 42 --decode
  python edit_cli.py --input imgs/ --output out/ --edit "Show * if there is a % in the picture, otherwise show #." \\
      --class dog --positive red --negative green --decode
  python edit_cli.py --input imgs/ --output out/ --edit "Estimate the depth of this image." --batch-size 8 \\
      --device cuda --dtype bf16

--ckpt takes a Hugging Face id, a diffusers folder, a .ckpt/.safetensors file or a main.py run folder
(logs/<run>); by default checkpoints/InstructCV (bash scripts/download_pretrained_weights.sh) if present,
else alaa-lab/InstructCV. Options are also accepted with underscores (--cfg_text), as the original spelled them.
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="edit_cli.py",
        description=__doc__.split("\n\n")[0],
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    io = p.add_argument_group("input and output")
    io.add_argument("--input", required=True, help="an image file or a folder of images (searched recursively)")
    io.add_argument("--output", required=True, help="folder for the answers (<relative stem>.png)")
    io.add_argument("--edit", required=True, help='the instruction, e.g. "Segment the cat."')
    io.add_argument("--class", dest="class_name", metavar="NAME", help="fills %% in --edit")
    io.add_argument("--positive", metavar="COLOUR", help="fills * in --edit (colour shown when the class is present)")
    io.add_argument("--negative", metavar="COLOUR", help="fills # in --edit (colour shown when it is absent)")
    io.add_argument("--decode", action="store_true", help="also write boxes/mask/class/depth read back from the answer")
    io.add_argument("--overwrite", action="store_true", help="redo answers that already exist")

    m = p.add_argument_group("model and sampling")
    m.add_argument("--ckpt", default=None, help="model to load (default: checkpoints/InstructCV if present, else alaa-lab/InstructCV)")
    m.add_argument("--steps", type=int, default=100, help="sampling steps (default 100)")
    m.add_argument("--cfg-text", "--cfg_text", dest="cfg_text", type=float, default=7.5, help="text guidance scale (7.5)")
    m.add_argument("--cfg-image", "--cfg_image", dest="cfg_image", type=float, default=1.5, help="image guidance scale (1.5)")
    m.add_argument("--resolution", type=int, default=512, help="long side the image is sampled at (512)")
    m.add_argument("--seed", type=int, default=0, help="random seed; the same image and seed give the same answer (0)")
    m.add_argument("--scheduler", default=DEFAULT_SCHEDULER, choices=list(SCHEDULERS), help=f"sampler ({DEFAULT_SCHEDULER})")
    m.add_argument("--batch-size", "--batch_size", dest="batch_size", type=int, default=1,
                   help="images per UNet batch; images of different sizes are grouped by shape (1)")
    m.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (auto: GPU if there is one)")
    m.add_argument("--dtype", default="auto", choices=["auto", "fp32", "bf16", "fp16"],
                   help="weights and activations (auto: bf16/fp16 on GPU, fp32 on CPU)")
    m.add_argument("--no-ema", "--no_ema", dest="use_ema", action="store_false",
                   help="use the trained rather than the EMA UNet weights where a checkpoint has both")
    m.add_argument("--allow-unsafe-pickle", "--allow_unsafe_pickle", dest="allow_unsafe_pickle", action="store_true",
                   help="allow a checkpoint that needs full unpickling (only for files you trust)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--verbose", action="store_true", help="debug logging")
    return p


def fill_placeholders(edit: str, class_name: str | None, positive: str | None, negative: str | None) -> str:
    """Replace % * # in ``edit`` by --class/--positive/--negative; each placeholder needs its option."""
    values = {"class_name": class_name, "positive": positive, "negative": negative}
    for mark, (key, option) in PLACEHOLDERS.items():
        value = values[key]
        if mark in edit:
            if not value:
                raise UsageError(f"--edit contains '{mark}' but {option} is not given (it fills '{mark}')")
            edit = edit.replace(mark, value.strip())
        elif value:
            log.warning("%s %r is not used: --edit has no '%s' placeholder", option, value, mark)
    return " ".join(edit.split())


def output_stems(paths: list[Path], input_root: Path, output: Path) -> list[Path]:
    """``<output>/<relative path without extension>`` per input; a clash (a.jpg, a.png) keeps the extension."""
    base = input_root if input_root.is_dir() else input_root.parent
    stems = [output / p.relative_to(base).with_suffix("") for p in paths]
    seen: dict[Path, int] = {}
    for s in stems:
        seen[s] = seen.get(s, 0) + 1
    return [
        output / p.relative_to(base).with_name(p.name.replace(".", "_")) if seen[s] > 1 else s
        for p, s in zip(paths, stems, strict=True)
    ]


def answer_path(stem: Path) -> Path:
    """``<stem>.png`` (``with_suffix`` would cut a stem such as ``img.v2`` short)."""
    return stem.with_name(stem.name + ".png")


def find_inputs(input_path: Path, output: Path) -> list[Path]:
    if not input_path.exists():
        raise UsageError(f"{input_path}: no such file or folder")
    paths = list_images(input_path)
    if input_path.is_dir():  # an output folder inside the input folder: never read our own answers back
        out = output.resolve()
        paths = [p for p in paths if out not in p.resolve().parents]
    if not paths:
        raise UsageError(f"{input_path}: no images found (looked for {', '.join(IMAGE_EXTENSIONS)})")
    return paths


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.verbose)
    for name, low in (("steps", 1), ("batch_size", 1), ("resolution", 64)):
        if getattr(args, name) < low:
            raise UsageError(f"--{name.replace('_', '-')} must be at least {low}, got {getattr(args, name)}")
    edit = fill_placeholders(args.edit, args.class_name, args.positive, args.negative)
    if not edit:
        raise UsageError("--edit is empty; write the instruction, e.g. --edit \"Segment the cat.\"")
    reason = parse(edit).reason
    if reason.startswith("unknown colour"):  # a colour no model was taught, no decoder reads
        raise UsageError(f"--edit: {reason}")

    input_path, output = Path(args.input), Path(args.output)
    if input_path.is_dir() and output.resolve() == input_path.resolve():
        raise UsageError(f"--output {output} is the input folder; choose another folder for the answers")
    paths = find_inputs(input_path, output)
    stems = output_stems(paths, input_path, output)
    inputs = {p.resolve() for p in paths}
    for stem in stems:
        if answer_path(stem).resolve() in inputs:
            raise UsageError(f"{answer_path(stem)}: the answer would overwrite this input; choose another --output")

    parsed = None
    if args.decode:
        parsed = parse(edit)
        if not parsed.ok:
            log.warning("cannot tell the task of %r (%s): answers are written as images, nothing is decoded",
                        edit, parsed.reason)
            parsed = None

    todo, decode_only, done = [], [], 0
    for path, stem in zip(paths, stems, strict=True):
        if args.overwrite or not answer_path(stem).is_file():
            todo.append((path, stem))
        elif parsed is not None and not all(p.is_file() for p in _decoded(parsed, stem)):
            decode_only.append((path, stem))
        else:
            done += 1

    start = time.perf_counter()
    failed: list[str] = []
    answered = decoded = 0

    for path, stem in decode_only:  # answers from an earlier run that was not asked to decode
        try:
            image = load_rgb(path)
            answer = load_rgb(answer_path(stem))
            decoded += _decode_one(answer, image, parsed, stem, edit, failed, path)
        except ImageReadError as e:
            failed.append(str(e))
            print(f"skipped {e}", file=sys.stderr)

    if todo:
        answered, n_decoded = _answer_all(args, todo, edit, parsed, failed)
        decoded += n_decoded

    seconds = time.perf_counter() - start
    parts = [f"answered {answered} of {len(paths)} images in {seconds:.1f}s"]
    if done:
        parts.append(f"{done} already done")
    if decoded:
        parts.append(f"{decoded} decoded")
    if failed:
        parts.append(f"{len(failed)} skipped")
    print(", ".join(parts) + f" -> {output}", file=sys.stderr)
    return EXIT_PARTIAL if failed else 0


def _decoded(parsed, stem: Path) -> list[Path]:
    return decoded_paths(parsed.task, stem)


def _decode_one(answer, image, parsed, stem: Path, edit: str, failed: list[str], path: Path) -> int:
    try:
        write_decoded(answer, image, parsed, stem, edit)
        return 1
    except ValueError as e:
        failed.append(f"{path}: cannot decode the answer ({e})")
        print(f"skipped decoding {path}: {e}", file=sys.stderr)
        return 0


def _answer_all(args, todo: list[tuple[Path, Path]], edit: str, parsed, failed: list[str]) -> tuple[int, int]:
    """Run the model over ``todo`` in chunks, writing each answer as soon as its batch is done."""
    from ldm.cli_model import load_model  # diffusers and transformers: seconds, only when there is work

    model = load_model(args.ckpt, device=args.device, dtype=args.dtype, scheduler=args.scheduler,
                       use_ema=args.use_ema, allow_unsafe_pickle=args.allow_unsafe_pickle, verbose=args.verbose)
    log.info("%r on %d images with %s", edit, len(todo), model)
    answered = decoded = 0
    chunk = max(32, 4 * args.batch_size)  # bounds memory; shapes are grouped within a chunk
    with tqdm(total=len(todo), unit="image", disable=args.quiet, file=sys.stderr) as bar:
        for start in range(0, len(todo), chunk):
            items, images = [], []
            for path, stem in todo[start : start + chunk]:
                try:
                    images.append(load_rgb(path))
                    items.append((path, stem))
                except ImageReadError as e:
                    failed.append(str(e))
                    bar.write(f"skipped {e}", file=sys.stderr)
                    bar.update(1)
            if not images:
                continue
            for i, answer in model.generate(
                images,
                edit,
                steps=args.steps,
                cfg_text=args.cfg_text,
                cfg_image=args.cfg_image,
                resolution=args.resolution,
                seed=args.seed,
                batch_size=args.batch_size,
                progress=bar,
            ):
                path, stem = items[i]
                save_image(answer_path(stem), answer)
                answered += 1
                if parsed is not None:
                    decoded += _decode_one(answer, images[i], parsed, stem, edit, failed, path)
    return answered, decoded


if __name__ == "__main__":
    run(main)
