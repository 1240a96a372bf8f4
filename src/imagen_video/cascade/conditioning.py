"""Super-resolution conditioning (SPEC §3; Cascaded Diffusion Models): pure functions on [B, C, T, H, W].

TSR: repeat frames of the low-fps video (or fill blank frames); SSR: bilinear upsampling; both then noise
conditioning augmentation c_aug = alpha' c + sigma' noise at level t', whose log-SNR the U-Net also sees.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange, repeat
from torch import Tensor

from imagen_video.diffusion import CosineSchedule, expand_like

FRAME_FILLS = ("repeat", "blank")


def repeat_frames(video: Tensor, factor: int, fill: str = "repeat") -> Tensor:
    """[B, C, T, H, W] -> [B, C, T * factor, H, W]: "repeat" gives [a, a, b, b] for factor 2; "blank" keeps
    each frame first in its group and fills the rest with zeros (mid-grey in [-1, 1]): [a, 0, b, 0]."""
    if fill == "repeat":
        return repeat(video, "b c t h w -> b c (t k) h w", k=factor)
    if fill == "blank":
        groups = torch.zeros(
            *video.shape[:3], factor, *video.shape[3:], dtype=video.dtype, device=video.device
        )
        groups[:, :, :, 0] = video
        return rearrange(groups, "b c t k h w -> b c (t k) h w")
    raise ValueError(f"unknown frame fill {fill!r}; choose one of {FRAME_FILLS}")


def upsample_bilinear(video: Tensor, height: int, width: int) -> Tensor:
    """[B, C, T, h, w] -> [B, C, T, height, width], bilinear per frame (align_corners=False; antialiased
    only where a size shrinks, since plain bilinear downsampling aliases)."""
    b, _, _, h, w = video.shape
    if (h, w) == (height, width):
        return video
    frames = rearrange(video, "b c t h w -> (b t) c h w")
    shrink = height < h or width < w
    frames = F.interpolate(
        frames, size=(height, width), mode="bilinear", align_corners=False, antialias=shrink
    )
    return rearrange(frames, "(b t) c h w -> b c t h w", b=b)


def condition_to_shape(video: Tensor, frames: int, height: int, width: int, fill: str = "repeat") -> Tensor:
    """A previous stage's output [B, C, t, h, w] -> the next stage's condition [B, C, frames, height, width]:
    frames repeated by frames / t (TSR), then bilinear resize to (height, width) (SSR)."""
    if video.shape[2] != frames:
        video = repeat_frames(video, frames // video.shape[2], fill)
    return upsample_bilinear(video, height, width)


def cond_aug_log_snr(
    cond_aug_level: float | Tensor, batch: int, schedule: CosineSchedule | None = None
) -> Tensor:
    """log-SNR [B] of augmentation level t' (what the U-Net is told); t' = 0 gives log_snr_max (clean)."""
    schedule = schedule if schedule is not None else CosineSchedule()
    level = torch.as_tensor(cond_aug_level, dtype=torch.float64).reshape(-1).expand(batch)
    return schedule.log_snr(level).float()


def augment(
    cond: Tensor,
    cond_aug_level: float | Tensor,
    generator: torch.Generator | None = None,
    schedule: CosineSchedule | None = None,
) -> Tensor:
    """Noise conditioning augmentation: c_aug = alpha' c + sigma' noise with (alpha', sigma') at t'.

    t' is a float or a per-example tensor [B] in [0, 1]. Where t' == 0 the condition is returned exactly
    (no noise), although the truncated schedule has sigma(0) ~ 4.5e-5. OUR CHOICE: the level is read on the
    plain cosine schedule (no shift), so one t' means the same SNR for every stage; t' = 1/3 is SNR 3
    (log_snr 1.10) and t' = 0.268 is about SNR 5, the paper's fixed sampling levels.
    """
    schedule = schedule if schedule is not None else CosineSchedule()
    level = torch.as_tensor(cond_aug_level, dtype=torch.float64, device=cond.device).reshape(-1)
    level = level.expand(cond.shape[0])
    alpha, sigma = schedule.alpha_sigma(level)
    noise = torch.randn(cond.shape, generator=generator, device=cond.device, dtype=cond.dtype)
    c_aug = expand_like(alpha.to(cond.dtype), cond) * cond + expand_like(sigma.to(cond.dtype), cond) * noise
    return torch.where(expand_like(level == 0, cond), cond, c_aug)
