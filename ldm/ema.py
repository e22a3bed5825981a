"""Exponential moving average of the UNet weights, with the LDM warm-up, kept as a frozen model copy.

The shadow is a full ``UNet2DConditionModel`` so sampling and export use it directly. Its weights
and the update counter live in the Lightning ``state_dict`` as ``ema.model.*`` and
``ema.num_updates``, so they are checkpointed, restored and broadcast like any other state.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


def ema_decay(decay: float, num_updates: int, warmup: bool = True) -> float:
    """Decay used at update number ``num_updates`` (1-based): LDM's ``min(decay, (1+n)/(10+n))``.

    The warm-up makes early updates follow the model closely, so the EMA of a freshly initialised
    run is not dominated by its starting point for the first ~1/(1-decay) steps.
    """
    if not warmup:
        return decay
    return min(decay, (1 + num_updates) / (10 + num_updates))


class EMA(nn.Module):
    """A frozen copy of ``model`` updated towards it after every optimiser step."""

    def __init__(self, model: nn.Module, decay: float = 0.9999, warmup: bool = True):
        super().__init__()
        if not 0.0 <= decay <= 1.0:
            raise ValueError(f"EMA decay must be in [0, 1], got {decay}")
        self.decay = decay
        self.warmup = warmup
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        self.register_buffer("num_updates", torch.tensor(0, dtype=torch.long))

    @torch.no_grad()
    def update(self, model: nn.Module) -> float:
        """Move the shadow weights towards ``model``; returns the decay used."""
        self.num_updates += 1
        decay = ema_decay(self.decay, int(self.num_updates), self.warmup)
        shadow = [p for p in self.model.parameters()]
        current = [p.detach().to(dtype=s.dtype) for p, s in zip(model.parameters(), shadow, strict=True)]
        torch._foreach_lerp_(shadow, current, 1.0 - decay)
        for s, b in zip(self.model.buffers(), model.buffers(), strict=True):
            s.copy_(b)
        return decay

    def train(self, mode: bool = True) -> EMA:
        # the shadow never trains (no dropout, no gradient checkpointing)
        super().train(mode)
        self.model.eval()
        return self
