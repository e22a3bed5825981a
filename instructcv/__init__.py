"""InstructCV: one text-to-image model answering vision tasks written as instructions.

Shared helpers live here (atomic file writes, robust image reading, CLI error handling);
the public inference API is ``instructcv.InstructCV`` (imported lazily so that light tools
such as the dataset builder do not pay for torch/diffusers at start-up).
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["InstructCV", "__version__"]


def __getattr__(name: str):
    if name == "InstructCV":
        from ldm.inference import InstructCV  # torch + diffusers (seconds): only when asked for

        return InstructCV
    raise AttributeError(f"module 'instructcv' has no attribute {name!r}")
