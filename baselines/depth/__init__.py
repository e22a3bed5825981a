"""Monocular depth baselines: DPT, GLPN and Depth Anything on NYUv2 and SUN RGB-D."""
