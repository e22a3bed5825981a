"""Specialist models (transformers checkpoints) scored with the same tasks/ metrics and splits as InstructCV."""
