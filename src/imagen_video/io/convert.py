"""Library videos (float [B, C, T, H, W] in [-1, 1]) <-> edge videos (uint8 [B, T, H, W, C])."""

from __future__ import annotations

import numpy as np
import torch
from einops import rearrange


def to_uint8(video: torch.Tensor) -> np.ndarray:
    """float [B, C, T, H, W] in [-1, 1] -> uint8 [B, T, H, W, C]: round((x + 1) * 127.5), clipped."""
    pixels = ((video.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return rearrange(pixels, "b c t h w -> b t h w c").cpu().numpy()


def from_uint8(video: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 [B, T, H, W, C] -> float [B, C, T, H, W] in [-1, 1]: x = v / 127.5 - 1."""
    pixels = torch.as_tensor(np.asarray(video) if not isinstance(video, torch.Tensor) else video)
    return rearrange(pixels.float() / 127.5 - 1, "b t h w c -> b c t h w")
