"""The InstructCV web demo: upload an image, give an instruction, see the answer image and what it means.

    python app.py --ckpt alaa-lab/InstructCV          # then open http://127.0.0.1:7860
    python app.py --tiny                              # a random tiny model: tries the page, answers are noise

The answer image is what the model draws; when the instruction's task is recognised
(``tasks.parse_instruction``) it is also read back the way ``edit_cli.py --decode`` reads it: boxes
drawn on the input, the mask laid over the input, the class verdict with its score, or the depth as
a colour map. gradio is an optional extra (``pip install -e .[demo]``); nothing else in the project
imports it.
"""

from __future__ import annotations

import argparse
import logging
import os
from dataclasses import dataclass

import numpy as np
from PIL import Image

import tasks
from instructcv.cli import UsageError, run, setup_logging
from ldm.answers import parsed_record
from tasks import parse_instruction
from tasks.render import overlay_mask  # noqa: F401  (the page's mask view; tests draw with it)

log = logging.getLogger("app")

EXAMPLE_INSTRUCTIONS = [
    "Detect the dog.",
    "Segment the cat.",
    "Show red if there is a cat in the picture, otherwise show green.",
    "Estimate the depth of this image.",
]
USAGE_EXAMPLES = """\
examples:
  python app.py --tiny                                   # random tiny model, to try the page (answers are noise)
  python app.py --ckpt alaa-lab/InstructCV               # the released weights (or checkpoints/InstructCV)
  python app.py --ckpt logs/2025-01-01T00-00-00_demo     # a main.py run folder (its last checkpoint)
  python app.py --ckpt model.safetensors --device cuda --dtype bf16 --port 8080
  python app.py --ckpt exported/ --host 0.0.0.0          # reachable from other machines on your network

Then open the printed address (http://127.0.0.1:7860 by default), upload an image, type or pick an
instruction and press Answer. --ckpt takes what edit_cli.py takes: a Hugging Face id, a diffusers
folder, a .ckpt/.safetensors file or a main.py run folder. Needs the demo extra: pip install -e .[demo]
"""


# ------------------------------------------------------------------------------------ decoding


@dataclass
class Decoded:
    """What an answer means: the task (None when not recognised), a picture of it, and one line of text."""

    task: str | None
    view: np.ndarray | None  # RGB uint8 (H, W, 3) at the input's size, or None (cls, unknown task)
    summary: str
    label: str = "Decoded"  # caption of the view on the page


def decode_answer(answer: Image.Image, image: Image.Image, instruction: str) -> Decoded:
    """Read ``answer`` (at ``image``'s size) back as the task ``instruction`` asks for.

    The task's ``read_answer``, ``render`` and ``describe`` (``tasks/``): the page shows exactly
    what ``edit_cli.py --decode`` would save.
    """
    parsed = parse_instruction(instruction)
    if not parsed.ok:
        return Decoded(None, None, f"Task not recognised ({parsed.reason}); only the answer image is shown.")
    task = tasks.task(parsed.task)
    rgb = np.asarray(image.convert("RGB"))
    if parsed.reason.startswith("unknown colour"):  # a colour no model was taught, no decoder reads
        return Decoded(task.tag, None, f"{task.title}: {parsed.reason}.")
    record = parsed_record(parsed, instruction)
    try:
        prediction = task.read_answer(answer, record, image.size, image=rgb)
    except ValueError as e:
        return Decoded(task.tag, None, f"{task.title}: {e}, so the answer cannot be read.")
    return Decoded(task.tag, task.render(prediction, rgb), task.describe(prediction, record), task.view_label)


# ------------------------------------------------------------------------------------- handler


class Demo:
    """The model and the page's fixed settings; ``answer`` is what the Answer button runs."""

    def __init__(self, model, resolution: int = 512, max_steps: int = 200):
        self.model = model
        self.resolution = resolution
        self.max_steps = max_steps

    def answer(self, image: Image.Image | np.ndarray | None, instruction: str | None, steps: float = 100,
               cfg_text: float = 7.5, cfg_image: float = 1.5, seed: float = 0) -> tuple[Image.Image, Decoded]:
        """The answer image at the input's size and what it means (``decode_answer``).

        Raises ``UsageError`` for what the user can fix (no image, empty instruction, bad numbers).
        """
        if image is None:
            raise UsageError("Upload an image first.")
        instruction = " ".join((instruction or "").split())
        if not instruction:
            raise UsageError("Type an instruction, e.g. 'Segment the cat.', or pick one of the examples.")
        image = Image.fromarray(np.asarray(image)) if isinstance(image, np.ndarray) else image
        image = image.convert("RGB")
        steps = int(steps)
        if not 1 <= steps <= self.max_steps:
            raise UsageError(f"steps must be between 1 and {self.max_steps}, got {steps}")
        (answer,) = self.model(
            [image], instruction, steps=steps, cfg_text=float(cfg_text), cfg_image=float(cfg_image),
            resolution=self.resolution, seed=int(seed), progress=False,
        )
        decoded = decode_answer(answer, image, instruction)
        log.info("%r, %d steps, seed %d: %s", instruction, steps, int(seed), decoded.summary)
        return answer, decoded


# ------------------------------------------------------------------------------------------ page


def make_handler(demo: Demo):
    """The Answer button's function: page inputs -> (answer image, decoded view update, summary)."""
    import gradio as gr

    def on_answer(image, instruction, steps, cfg_text, cfg_image, seed):
        try:
            answer, decoded = demo.answer(image, instruction, steps, cfg_text, cfg_image, seed)
        except (UsageError, ValueError) as e:  # user errors: a message on the page, not a traceback
            raise gr.Error(str(e)) from None
        view = gr.update(value=decoded.view, visible=decoded.view is not None, label=decoded.label)
        return answer, view, decoded.summary

    return on_answer


def build_ui(demo: Demo, *, default_steps: int = 100, title: str = "InstructCV"):
    """The gradio page around ``demo.answer`` (gradio is imported here, never at module import)."""
    import gradio as gr

    on_answer = make_handler(demo)
    with gr.Blocks(title=title, analytics_enabled=False) as page:
        gr.Markdown(
            f"# {title}\nOne model, four vision tasks, asked in words: **detect** or **segment** a class, "
            "**classify** by answering with a colour, **estimate depth**. The answer is an image; when "
            "the task is recognised it is also read back (boxes, mask, verdict, depth in metres)."
        )
        with gr.Row():
            with gr.Column():
                image = gr.Image(type="pil", label="Input image", elem_id="input-image", sources=["upload", "clipboard"])
                instruction = gr.Textbox(label="Instruction", placeholder="e.g. Segment the cat.", lines=1,
                                         elem_id="instruction")
                gr.Examples(examples=[[x] for x in EXAMPLE_INSTRUCTIONS], inputs=[instruction],
                            label="Example instructions (one per task)")
                one_step = getattr(demo.model, "objective", "diffusion") == "one_step"
                with gr.Accordion("Sampling (ignored: this model answers in one step)" if one_step else "Sampling",
                                  open=not one_step):
                    steps = gr.Slider(1, demo.max_steps, value=default_steps, step=1, label="Steps")
                    cfg_text = gr.Slider(1.0, 15.0, value=7.5, step=0.1, label="Text guidance scale")
                    cfg_image = gr.Slider(0.5, 5.0, value=1.5, step=0.05, label="Image guidance scale")
                    seed = gr.Number(value=0, precision=0, label="Seed")
                button = gr.Button("Answer", variant="primary", elem_id="submit")
            with gr.Column():
                answer = gr.Image(type="pil", label="Answer image", elem_id="answer", interactive=False,
                                  format="png")
                summary = gr.Textbox(label="What the answer says", elem_id="summary", interactive=False)
                view = gr.Image(label="Decoded", elem_id="decoded", interactive=False, visible=False, format="png")
        inputs = [image, instruction, steps, cfg_text, cfg_image, seed]
        outputs = [answer, view, summary]
        button.click(on_answer, inputs=inputs, outputs=outputs)
        instruction.submit(on_answer, inputs=inputs, outputs=outputs)
    return page


def page_theme():
    """The default look with system fonts only: the stock theme fetches Google Fonts, unreachable offline."""
    import gradio as gr

    return gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"],
                             font_mono=["ui-monospace", "monospace"])


# ------------------------------------------------------------------------------------- command


def build_parser() -> argparse.ArgumentParser:
    from ldm.sampling import DEFAULT_SCHEDULER, SCHEDULERS

    p = argparse.ArgumentParser(
        prog="app.py",
        description=__doc__.split("\n\n")[0],
        epilog=USAGE_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    src = p.add_mutually_exclusive_group()
    src.add_argument("--ckpt", default=None,
                     help="model to load, as edit_cli.py takes it (default: checkpoints/InstructCV if present, "
                          "else alaa-lab/InstructCV)")
    src.add_argument("--tiny", action="store_true", help="a random tiny model (no download): to try the page")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=7860, help="port (7860)")
    p.add_argument("--share", action="store_true", help="also make a public gradio.live link (off by default)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (auto: GPU if there is one)")
    p.add_argument("--dtype", default="auto", choices=["auto", "fp32", "bf16", "fp16"],
                   help="weights and activations (auto: bf16/fp16 on GPU, fp32 on CPU)")
    p.add_argument("--resolution", type=int, default=None, help="long side images are sampled at (512; --tiny: 64)")
    p.add_argument("--steps", type=int, default=None, help="the steps slider's starting value (100; --tiny: 10)")
    p.add_argument("--max-steps", type=int, default=200, help="the steps slider's maximum (200)")
    p.add_argument("--scheduler", default=DEFAULT_SCHEDULER, choices=list(SCHEDULERS), help=f"sampler ({DEFAULT_SCHEDULER})")
    p.add_argument("--no-ema", dest="use_ema", action="store_false",
                   help="use the trained rather than the EMA UNet weights where a checkpoint has both")
    p.add_argument("--allow-unsafe-pickle", action="store_true",
                   help="allow a checkpoint that needs full unpickling (only for files you trust)")
    p.add_argument("--verbose", action="store_true", help="debug logging")
    return p


def load_model(args: argparse.Namespace):
    """The InstructCV model the options name (``--tiny``: random tiny components), as edit_cli.py loads it."""
    from ldm import cli_model  # diffusers and transformers: seconds, not for --help

    return cli_model.load_model(cli_model.TINY if args.tiny else args.ckpt, device=args.device, dtype=args.dtype,
                                scheduler=args.scheduler, use_ema=args.use_ema,
                                allow_unsafe_pickle=args.allow_unsafe_pickle, verbose=args.verbose)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.verbose)
    if not args.verbose:  # gradio's HTTP client logs every request it makes to itself
        logging.getLogger("httpx").setLevel(logging.WARNING)
    resolution = args.resolution if args.resolution is not None else (64 if args.tiny else 512)
    default_steps = args.steps if args.steps is not None else (10 if args.tiny else 100)
    if resolution < 64:
        raise UsageError(f"--resolution must be at least 64, got {resolution}")
    if not 1 <= default_steps <= args.max_steps:
        raise UsageError(f"--steps must be between 1 and --max-steps ({args.max_steps}), got {default_steps}")
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be between 0 and 65535, got {args.port}")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no calls home from an offline demo
    try:
        import gradio  # noqa: F401
    except ImportError:
        raise UsageError("the web demo needs gradio: pip install -e .[demo]") from None

    model = load_model(args)
    log.info("model: %s, resolution %d", "random tiny" if args.tiny else (args.ckpt or "default"), resolution)
    page = build_ui(Demo(model, resolution=resolution, max_steps=args.max_steps), default_steps=default_steps)
    page.queue(max_size=16).launch(server_name=args.host, server_port=args.port, share=args.share,
                                   inbrowser=False, show_error=True, ssr_mode=False, theme=page_theme())
    return 0


if __name__ == "__main__":
    run(main)
