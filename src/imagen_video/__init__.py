"""Imagen Video in PyTorch: a cascade of video diffusion models (Ho et al. 2022, arXiv:2210.02303)."""

__version__ = "0.1.0"
