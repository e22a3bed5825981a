"""The InstructCV model: diffusers/transformers components, training module, data, loading, sampling."""
