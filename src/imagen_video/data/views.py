"""Per-stage views of one full-resolution clip (SPEC §3): each stage's target and its conditioning video.

A stage's training target is the clip at the stage's fps (frame skipping) and size (antialiased bilinear
resize). Its condition is the previous stage's view of the same clip, time-aligned so that condition frame j
is target frame j * (fps / cond_fps); the cascade's conditioning prep then repeats frames and upsamples it.
All functions are pure and work on [C, T, H, W] or [B, C, T, H, W] float tensors.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange

from imagen_video.errors import UserError


def resize_video(video: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Antialiased bilinear resize of every frame: [..., C, T, H, W] -> [..., C, T, height, width]."""
    if video.shape[-2:] == (height, width):
        return video
    lead = video.shape[:-4]
    frames = rearrange(video.reshape(-1, *video.shape[-4:]), "b c t h w -> (b t) c h w")
    frames = F.interpolate(frames, size=(height, width), mode="bilinear", antialias=True, align_corners=False)
    out = rearrange(frames, "(b t) c h w -> b c t h w", t=video.shape[-3])
    return out.reshape(*lead, *out.shape[1:])


def resize_cover(video: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Resize keeping the aspect ratio so the frame covers height x width, then centre-crop to it."""
    in_h, in_w = video.shape[-2:]
    scale = max(height / in_h, width / in_w)
    new_h, new_w = max(height, round(in_h * scale)), max(width, round(in_w * scale))
    video = resize_video(video, new_h, new_w)
    top, left = (new_h - height) // 2, (new_w - width) // 2
    return video[..., top : top + height, left : left + width]


def frame_step(source_fps: float, target_fps: float) -> int:
    """Frames skipped per output frame, source_fps / target_fps, which must be a whole number >= 1."""
    ratio = source_fps / target_fps
    step = round(ratio)
    if step < 1 or abs(ratio - step) > 1e-6:
        raise UserError(
            f"cannot make {target_fps} fps from {source_fps} fps by frame skipping; "
            "the source fps must be a whole multiple of the target fps"
        )
    return step


def stage_view(
    clip: torch.Tensor, frames: int, height: int, width: int, source_fps: float, target_fps: float
) -> torch.Tensor:
    """A stage's target: source frames 0, s, 2s, ... (s = source_fps / target_fps), resized."""
    step = frame_step(source_fps, target_fps)
    needed = (frames - 1) * step + 1
    if clip.shape[-3] < needed:
        raise UserError(
            f"a {frames}-frame view at {target_fps} fps needs {needed} frames at {source_fps} fps, "
            f"the clip has {clip.shape[-3]}; use longer clips or fewer frames"
        )
    return resize_video(clip[..., 0:needed:step, :, :], height, width)


def stage_condition(
    clip: torch.Tensor,
    source_fps: float,
    frames: int,
    height: int,
    width: int,
    fps: float,
    cond_frames: int,
    cond_height: int,
    cond_width: int,
    cond_fps: float,
) -> torch.Tensor:
    """A stage's conditioning video: the previous stage's view (cond shape, cond_fps) of the same clip.

    TSR: fewer frames by skipping (cond_frames * fps / cond_fps == frames); SSR: smaller frames by antialiased
    resize. Condition frame j shows the same instant as the stage target's frame j * (fps / cond_fps).
    """
    factor = frame_step(fps, cond_fps)
    if cond_frames * factor != frames or cond_height > height or cond_width > width:
        raise UserError(
            f"condition {cond_frames}x{cond_height}x{cond_width} at {cond_fps} fps does not lead to a "
            f"stage of {frames}x{height}x{width} at {fps} fps; need cond_frames * fps / cond_fps == frames "
            "and a condition no larger than the stage"
        )
    return stage_view(clip, cond_frames, cond_height, cond_width, source_fps, cond_fps)
