"""The InstructCV model: diffusers/transformers components, training module, data, loading, sampling."""

from pathlib import Path

# where a main.py run folder keeps the checkpoint it resumes from and exports (light: main.py's --help reads it)
RUN_CHECKPOINT = Path("checkpoints") / "last.ckpt"
