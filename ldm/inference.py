"""The public inference API: ``InstructCV`` answers an instruction on images and returns answer images.

    >>> from instructcv import InstructCV
    >>> model = InstructCV.from_pretrained("checkpoints/InstructCV")       # or a hub id, .ckpt, main.py run
    >>> answers = model(["dog.jpg", "street.png"], "Detect the dog.", steps=100, seed=0)
    >>> answers[0].size == PIL.Image.open("dog.jpg").size
    True

What happens to each image: it is resized by the InstructPix2Pix rule (long side to ``resolution``,
both sides multiples of 64, Lanczos), encoded by the VAE (posterior mode, unscaled), denoised with
two-way classifier-free guidance (``ldm.sampling``) -- or, for a one-step model, answered by one UNet
call (``ldm.one_step``; steps and guidance then do nothing) -- decoded, and resized back to its original size.
Images whose processed shapes agree go through the UNet together, ``batch_size`` at a time; each
image has its own ``torch.Generator`` seeded with ``seed``, so an image's answer does not depend on
the batch it lands in, and equals what diffusers' ``StableDiffusionInstructPix2PixPipeline`` gives
for it with ``generator=torch.Generator().manual_seed(seed)``.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Sequence

import torch
from PIL import Image
from tqdm.auto import tqdm

from instructcv.images import load_rgb
from ldm import one_step
from ldm.components import SDComponents
from ldm.sampling import DEFAULT_SCHEDULER, make_scheduler, sample

log = logging.getLogger(__name__)

ImageInput = Image.Image | str | os.PathLike

DTYPES: dict[str, torch.dtype] = {
    "fp32": torch.float32,
    "float32": torch.float32,
    "bf16": torch.bfloat16,
    "bfloat16": torch.bfloat16,
    "fp16": torch.float16,
    "float16": torch.float16,
}
MULTIPLE = 64  # InstructPix2Pix keeps both sides multiples of 64
MAX_PROMPT_CACHE = 256
SAMPLING_DEFAULTS = (100, 7.5, 1.5)  # steps, cfg_text, cfg_image of __call__ and generate (the paper's)


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` is the first CUDA GPU when there is one, else the CPU; a missing GPU is a clear error."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        build = "a CPU-only build of torch" if torch.version.cuda is None else "no CUDA device is visible"
        raise ValueError(f"device {device!r} requested but CUDA is not available ({build}); use --device cpu")
    return dev


def resolve_dtype(dtype: str | torch.dtype = "auto", device: torch.device | str = "cpu") -> torch.dtype:
    """``"auto"``: bf16 on GPUs that support it (fp16 on older ones), fp32 on the CPU."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype == "auto":
        if torch.device(device).type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    try:
        return DTYPES[dtype]
    except KeyError:
        raise ValueError(f"unknown dtype {dtype!r}; choose auto, fp32, bf16 or fp16") from None


def processed_size(size: tuple[int, int], resolution: int = 512) -> tuple[int, int]:
    """The (width, height) an image of ``size`` is sampled at: the InstructPix2Pix rule.

    The long side is scaled to ``resolution``, the short side is then rounded *up* to a multiple of
    64 and the long side scaled by the same factor and rounded down to a multiple of 64 (integer
    arithmetic, so no float rounding surprises). Extreme panoramas would give a huge long side, so
    it is capped at twice ``resolution``.
    """
    if resolution < MULTIPLE:
        raise ValueError(f"resolution must be at least {MULTIPLE}, got {resolution}")
    w, h = size
    if w < 1 or h < 1:
        raise ValueError(f"empty image size {size}")
    long, short = max(w, h), min(w, h)
    short_out = max(MULTIPLE, -(-short * resolution // (long * MULTIPLE)) * MULTIPLE)  # ceil division
    long_out = max(MULTIPLE, (long * short_out) // (short * MULTIPLE) * MULTIPLE)
    long_out = min(long_out, max(MULTIPLE, 2 * resolution // MULTIPLE * MULTIPLE))
    return (long_out, short_out) if w >= h else (short_out, long_out)


def fit_image(image: Image.Image, resolution: int = 512) -> Image.Image:
    """Resize to ``processed_size`` with Lanczos.

    Unlike InstructPix2Pix's ``ImageOps.fit`` this does not crop: the small aspect change is undone
    when the answer is resized back, so answer pixels map exactly onto input pixels (boxes, masks
    and depth stay where they belong).
    """
    size = processed_size(image.size, resolution)
    return image if size == image.size else image.resize(size, Image.Resampling.LANCZOS)


@contextlib.contextmanager
def _quiet_diffusers() -> Iterator[None]:
    from diffusers.utils import logging as dlogging

    level = dlogging.get_verbosity()
    dlogging.set_verbosity_error()
    try:
        yield
    finally:
        dlogging.set_verbosity(level)


class InstructCV:
    """An InstructCV model ready to answer: components on one device and dtype, plus a scheduler choice.

    Build it with ``from_pretrained`` (any checkpoint ``ldm.loading.load_components`` reads) or
    ``from_components``; call it on images. ``scheduler`` may be changed between calls.
    """

    def __init__(
        self,
        components: SDComponents,
        device: str | torch.device = "auto",
        dtype: str | torch.dtype = "auto",
        scheduler: str = DEFAULT_SCHEDULER,
    ):
        from diffusers.image_processor import VaeImageProcessor
        from diffusers.models.attention_processor import AttnProcessor2_0

        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.components = components
        self.scheduler = scheduler  # validated by the setter
        for module in (components.unet, components.vae, components.text_encoder):
            module.requires_grad_(False).eval()
        with _quiet_diffusers():  # diffusers warns on every dtype cast, even with nothing to keep in fp32
            components.to(self.device, self.dtype)
        # Scaled-dot-product attention (flash / memory-efficient kernels where the device has them).
        components.unet.set_attn_processor(AttnProcessor2_0())
        components.vae.set_attn_processor(AttnProcessor2_0())
        if self.device.type == "cuda":  # NHWC convolutions are the fast path on tensor cores
            components.unet.to(memory_format=torch.channels_last)
            components.vae.to(memory_format=torch.channels_last)
        self.image_processor = VaeImageProcessor(vae_scale_factor=components.vae_scale_factor)
        self._prompt_cache: dict[str, torch.Tensor] = {}
        self._noted_ignored = False

    @property
    def objective(self) -> str:
        """``diffusion`` (a guided sampler answers) or ``one_step`` (one UNet call), as the checkpoint says."""
        return self.components.objective

    # -- construction -------------------------------------------------------------------------------

    @classmethod
    def from_pretrained(
        cls,
        source: str | os.PathLike,
        device: str | torch.device = "auto",
        dtype: str | torch.dtype = "auto",
        scheduler: str = DEFAULT_SCHEDULER,
        allow_unsafe_pickle: bool = False,
        use_ema: bool = True,
    ) -> InstructCV:
        """Load a model: hub id, diffusers folder, single-file checkpoint or ``main.py`` checkpoint/run.

        Loading is ``ldm.loading.load_components`` (EMA weights by default; pickles other than plain
        tensors are refused unless ``allow_unsafe_pickle``).
        """
        from ldm.loading import load_components

        components = load_components(source, allow_unsafe_pickle=allow_unsafe_pickle, use_ema=use_ema)
        return cls(components, device=device, dtype=dtype, scheduler=scheduler)

    @classmethod
    def from_components(
        cls,
        components: SDComponents,
        device: str | torch.device = "auto",
        dtype: str | torch.dtype = "auto",
        scheduler: str = DEFAULT_SCHEDULER,
    ) -> InstructCV:
        """Wrap components already in memory (moved to ``device``/``dtype`` in place)."""
        return cls(components, device=device, dtype=dtype, scheduler=scheduler)

    @property
    def scheduler(self) -> str:
        """Name of the diffusers scheduler used for sampling (see ``ldm.sampling.SCHEDULERS``)."""
        return self._scheduler

    @scheduler.setter
    def scheduler(self, name: str) -> None:
        make_scheduler(name, self.components.scheduler_config)  # fail now, not after loading images
        self._scheduler = name

    # -- answering ------------------------------------------------------------------------------------

    def __call__(
        self,
        images: ImageInput | Sequence[ImageInput],
        instruction: str | Sequence[str],
        *,
        steps: int = 100,
        cfg_text: float = 7.5,
        cfg_image: float = 1.5,
        resolution: int = 512,
        seed: int = 0,
        batch_size: int = 1,
        progress: bool = True,
    ) -> list[Image.Image]:
        """Answer ``instruction`` on every image; return RGB answer images at the inputs' original sizes.

        Args:
            images: PIL images or paths (read with ``instructcv.images.load_rgb``: EXIF orientation,
                RGBA/palette/grey/16-bit converted); a single image is accepted too.
            instruction: one instruction for all images, or one per image.
            steps: scheduler steps (100 as in the paper).
            cfg_text, cfg_image: two-way guidance scales (7.5 and 1.5 as in the paper).
            resolution: the long side the image is sampled at (InstructPix2Pix resize rule).
            seed: each image gets its own generator seeded with this, whatever its batch.
            batch_size: images per UNet batch (the UNet sees 3x as many rows for guidance).
            progress: show a tqdm bar over images.

        Raises ``instructcv.images.ImageReadError`` for an unreadable path and ``ValueError`` for an
        empty instruction.
        """
        if isinstance(images, (Image.Image, str, os.PathLike)):
            images = [images]
        answers: list[Image.Image | None] = [None] * len(images)
        for i, answer in self.generate(
            images,
            instruction,
            steps=steps,
            cfg_text=cfg_text,
            cfg_image=cfg_image,
            resolution=resolution,
            seed=seed,
            batch_size=batch_size,
            progress=progress,
        ):
            answers[i] = answer
        return answers  # type: ignore[return-value]

    def generate(
        self,
        images: Sequence[ImageInput],
        instruction: str | Sequence[str],
        *,
        steps: int = 100,
        cfg_text: float = 7.5,
        cfg_image: float = 1.5,
        resolution: int = 512,
        seed: int = 0,
        batch_size: int = 1,
        progress: bool | tqdm = True,
    ) -> Iterator[tuple[int, Image.Image]]:
        """Like ``__call__`` but yields ``(index, answer)`` as each batch finishes (batch order, not input order).

        ``progress`` may also be a tqdm bar owned by the caller; it is advanced once per image.
        """
        instructions = [instruction] * len(images) if isinstance(instruction, str) else list(instruction)
        if len(instructions) != len(images):
            raise ValueError(f"got {len(instructions)} instructions for {len(images)} images")
        for text in set(instructions):
            if not text or not text.strip():
                raise ValueError("the instruction is empty; say what to do, e.g. 'Segment the cat.'")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if not self._noted_ignored:
            self._noted_ignored = one_step.note_ignored(self.objective, steps, cfg_text, cfg_image, SAMPLING_DEFAULTS)

        # Keep only the resized copy of each image (the original may be a 40-megapixel photo).
        fitted: list[Image.Image] = []
        original_sizes: list[tuple[int, int]] = []
        for item in images:
            img = item if isinstance(item, Image.Image) else load_rgb(item)
            img = img if img.mode == "RGB" else img.convert("RGB")
            original_sizes.append(img.size)
            fitted.append(fit_image(img, resolution))

        groups: dict[tuple[int, int], list[int]] = {}
        for i, img in enumerate(fitted):
            groups.setdefault(img.size, []).append(i)
        batches = [idx[k : k + batch_size] for idx in groups.values() for k in range(0, len(idx), batch_size)]

        bar = progress if isinstance(progress, tqdm) else tqdm(total=len(images), unit="image", disable=not progress)
        try:
            for batch in batches:
                answers = self._answer_batch(
                    [fitted[i] for i in batch],
                    [instructions[i] for i in batch],
                    steps=steps,
                    cfg_text=cfg_text,
                    cfg_image=cfg_image,
                    seed=seed,
                )
                for i, answer in zip(batch, answers, strict=True):
                    if answer.size != original_sizes[i]:
                        answer = answer.resize(original_sizes[i], Image.Resampling.LANCZOS)
                    bar.update(1)
                    yield i, answer
        finally:
            if bar is not progress:
                bar.close()

    # -- internals ------------------------------------------------------------------------------------

    def encode_prompt(self, text: str) -> torch.Tensor:
        """CLIP hidden states (1, 77, D) of ``text``, cached: each distinct instruction is encoded once."""
        cached = self._prompt_cache.get(text)
        if cached is not None:
            return cached
        tokenizer, encoder = self.components.tokenizer, self.components.text_encoder
        tokens = tokenizer(
            text, padding="max_length", max_length=tokenizer.model_max_length, truncation=True, return_tensors="pt"
        )
        if len(tokenizer(text).input_ids) > tokenizer.model_max_length:
            log.warning("instruction longer than %d tokens, truncated: %r", tokenizer.model_max_length, text)
        mask = tokens.attention_mask.to(self.device) if getattr(encoder.config, "use_attention_mask", False) else None
        with torch.inference_mode():
            embeds = encoder(tokens.input_ids.to(self.device), attention_mask=mask)[0].to(self.dtype)
        if len(self._prompt_cache) >= MAX_PROMPT_CACHE:
            self._prompt_cache.clear()
        self._prompt_cache[text] = embeds
        return embeds

    def _answer_batch(
        self,
        images: list[Image.Image],
        instructions: list[str],
        *,
        steps: int,
        cfg_text: float,
        cfg_image: float,
        seed: int,
    ) -> list[Image.Image]:
        """Answer images that share one processed shape in a single UNet batch."""
        c = self.components
        text_embeds = torch.cat([self.encode_prompt(t) for t in instructions])
        uncond_embeds = self.encode_prompt("").expand(len(images), -1, -1)
        generators = [torch.Generator("cpu").manual_seed(seed) for _ in images]
        with torch.inference_mode():
            pixels = self.image_processor.preprocess(images).to(device=self.device, dtype=self.dtype)
            image_latents = c.vae.encode(pixels).latent_dist.mode()
            if self.objective == "one_step":  # one UNet call: no scheduler, no guidance, no noise
                latents = one_step.predict_latents(c.unet, image_latents, text_embeds)
            else:
                latents = sample(
                    c.unet,
                    make_scheduler(self._scheduler, c.scheduler_config),
                    image_latents,
                    text_embeds,
                    uncond_embeds,
                    generators,
                    steps=steps,
                    cfg_text=cfg_text,
                    cfg_image=cfg_image,
                )
            decoded = c.vae.decode((latents / c.vae.config.scaling_factor).to(self.dtype), return_dict=False)[0]
            return self.image_processor.postprocess(decoded, output_type="pil")

    def __repr__(self) -> str:
        n = sum(p.numel() for p in self.components.unet.parameters())
        answers = "one step" if self.objective == "one_step" else f"scheduler={self._scheduler!r}"
        return f"InstructCV(unet={n / 1e6:.1f}M params, device={self.device}, dtype={self.dtype}, {answers})"


__all__ = ["InstructCV", "fit_image", "processed_size", "resolve_device", "resolve_dtype"]

