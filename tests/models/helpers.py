"""Shared helpers for the U-Net tests: small configs, random inputs, un-zeroed weights."""

from __future__ import annotations

import torch
from torch import nn

from imagen_video.models import UNetConfig, VideoUNet

TEXT_DIM = 384


def small_config(temporal: str = "attention", **changes) -> UNetConfig:
    """A 2-level U-Net with every layer kind at the coarse level: fast enough for exact-value tests."""
    base = dict(
        channels=16,
        channel_mult=(1, 2),
        num_res_blocks=1,
        spatial_attention=(False, True),
        cross_attention=(True, True),
        temporal=temporal,
        temporal_levels=(True, True),
        head_dim=8,
        norm_groups=4,
        text_dim=TEXT_DIM,
    )
    base.update(changes)
    return UNetConfig(**base)


def randomize_zero_init(model: nn.Module, std: float = 1.0) -> nn.Module:
    """Give the zero-initialised residual-branch layers (and bias tables) random weights.

    At init every residual branch is the identity and the output conv is zero, so tests that ask whether a
    layer matters (temporal mixing, text) must first make those layers non-trivial.
    """
    generator = torch.Generator().manual_seed(1234)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1 and not p.any():
                p.copy_(torch.randn(p.shape, generator=generator) * std / p[0].numel() ** 0.5)
    return model


def make_model(config: UNetConfig) -> VideoUNet:
    torch.manual_seed(0)
    return randomize_zero_init(VideoUNet(config)).eval()


def inputs(
    config: UNetConfig, b: int = 2, t: int = 4, h: int = 8, w: int = 8, text_len: int = 5, seed: int = 0
):
    """Random z, log_snr, text (the second row half padded) and, for SR configs, lowres + its level."""
    g = torch.Generator().manual_seed(seed)
    kwargs = dict(
        z=torch.randn(b, config.in_channels, t, h, w, generator=g),
        log_snr=torch.linspace(-5.0, 5.0, b),
        text_emb=torch.randn(b, text_len, config.text_dim, generator=g),
        text_mask=torch.arange(text_len)[None].expand(b, -1)
        < torch.tensor([text_len, text_len // 2 + 1])[:b, None],
    )
    if config.lowres_channels:
        kwargs["lowres"] = torch.randn(b, config.lowres_channels, t, h, w, generator=g)
        kwargs["cond_aug_log_snr"] = torch.full((b,), 3.0)
    return kwargs
