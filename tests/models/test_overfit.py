"""Must show 6: a tiny U-Net overfits one fixed video under the v-loss (loss / 10 within 2 minutes on CPU)."""

from __future__ import annotations

import time

import torch

from imagen_video.diffusion import CosineSchedule, v_loss
from imagen_video.models import VideoUNet

from .helpers import TEXT_DIM, small_config


def moving_square(frames: int = 4, size: int = 16) -> torch.Tensor:
    """A fixed video `[1, 3, T, H, W]` in [-1, 1]: a coloured square moving right over a colour gradient."""
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    out = []
    for k in range(frames):
        square = ((xx + 0.5 - 0.3 * k).abs() < 0.3) & (yy.abs() < 0.3)
        background = torch.stack([0.5 * xx, 0.5 * yy, torch.full_like(xx, -0.5)])
        out.append(torch.where(square, torch.tensor([1.0, -1.0, 0.8])[:, None, None], background))
    return torch.stack(out, dim=1)[None]


def test_tiny_unet_overfits_one_video_with_v_loss():
    model = VideoUNet(small_config("attention", head_dim=16, norm_groups=8, cross_attention=(False, True)))
    schedule = CosineSchedule()
    video, text = moving_square(), torch.randn(1, 6, TEXT_DIM)

    def net(z, t, cond):
        return model(z, schedule.log_snr(t), text.expand(z.shape[0], -1, -1))

    # a fixed evaluation set: 16 noise levels spread over [0, 1], fixed noise
    g = torch.Generator().manual_seed(0)
    t_eval = (torch.arange(16) + 0.5) / 16
    noise_eval = torch.randn(16, *video.shape[1:], generator=g)

    def eval_loss() -> float:
        with torch.no_grad():
            return v_loss(
                net, video.expand(16, -1, -1, -1, -1), None, schedule, t=t_eval, noise=noise_eval
            ).item()

    optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)
    start, initial, best = time.monotonic(), eval_loss(), float("inf")
    for step in range(1, 601):
        loss = v_loss(net, video.expand(8, -1, -1, -1, -1), None, schedule, generator=g)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 25 == 0:
            best = min(best, eval_loss())
            if initial / best >= 10 or time.monotonic() - start > 110:
                break
    elapsed = time.monotonic() - start
    assert initial / best >= 10, f"loss {initial:.3f} -> {best:.4f} ({initial / best:.1f}x) in {elapsed:.0f}s"
    assert elapsed < 120
