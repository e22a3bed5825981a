"""Building instruction/image pairs from raw public datasets (and synthetic stand-ins of them)."""
