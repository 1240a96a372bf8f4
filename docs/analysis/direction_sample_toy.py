"""Left vs right in samples: does a base U-Net draw the prompted direction, with or without space-time convs?

direction_toy.py measures the high-noise mean only; here the test is the sampler's output. Four prompts,
{red, blue} circle x {moving to the left, moving to the right}, FRAMES frames of 16x16, v-loss over the cosine
schedule (t ~ U[0, 1]), batch 16 (or BATCH), AdamW 1e-3. Every EVERY steps: 16 DDIM-32 samples per direction
("a red circle moving to the left / right", no guidance), and the share whose object centroid moves the
prompted way (centroid of |x - per-pixel median over frames|, least-squares slope over frames; rendered clips
score 1.0). VARIANT `frames` is the U-Net with rotary frame positions and the frame embedding, `spacetime`
also has a (3 x 3 x 3) conv after each temporal layer (UNetConfig.spacetime_conv).

    python docs/analysis/direction_sample_toy.py [STEPS] [VARIANT] [BATCH]      # default 600 frames 16

Session 10, a lent H200, batch 32, both variants side by side (beside a base training run) for 330 s, every
250 steps (logs/gpu_direction_sample_toy_*.txt): `frames` 0.53, 0.34, 0.53, 0.38, 0.44, 0.28, 0.34, 0.34 at
steps 250-2000; `spacetime` 0.50, 0.44, 0.38, 0.44, 0.31, 0.47, 0.53 at 250-1750: neither draws the prompted
direction more often than chance (0.5 of 32 samples), with the space-time conv or without it.
"""

import os
import sys

import numpy as np
import torch
from growth_toy import v_step_at  # this folder: run as a script
from motion_mean_share import circle_clips

from imagen_video.diffusion import CosineSchedule, sample
from imagen_video.models import VideoUNet
from imagen_video.models.presets import tiny
from imagen_video.text.encoder import load_text_encoder

FRAMES, SIZE, FPS, SAMPLES = 8, 16, 8, 16
EVERY = int(os.environ.get("EVERY", "100"))
PROMPTS = [(c, m) for c in ("red", "blue") for m in ("left", "right")]


def x_velocity(videos: torch.Tensor) -> torch.Tensor:
    """Per video [N, C, T, H, W]: least-squares slope over frames of the centroid column of the change
    |x - median over frames| (pixels per frame)."""
    weight = (videos - videos.median(dim=2, keepdim=True).values).abs().sum(1)  # [N, T, H, W]
    cols = torch.arange(videos.shape[-1], dtype=videos.dtype)
    centroid = (weight.sum(2) * cols).sum(-1) / weight.sum((2, 3)).clamp(min=1e-8)  # [N, T]
    t = torch.arange(videos.shape[2], dtype=videos.dtype)
    t = t - t.mean()
    return (centroid - centroid.mean(1, keepdim=True)) @ t / (t @ t)


def direction_accuracy(net, emb, mask, schedule: CosineSchedule, steps: int = 32) -> float:
    """Share of SAMPLES samples per prompt (red left, red right) whose centroid moves the prompted way."""
    net.eval()
    hits = 0
    for i, sign in ((0, -1.0), (1, 1.0)):
        cond = dict(text_emb=emb[[i]].expand(SAMPLES, -1, -1), text_mask=mask[[i]].expand(SAMPLES, -1))
        model = lambda z, t, c: net(z, schedule.log_snr(t), **c)  # noqa: E731
        shape = (SAMPLES, 3, FRAMES, SIZE, SIZE)
        gen = torch.Generator(emb.device).manual_seed(i)
        with torch.no_grad():
            x = sample(model, shape, steps=steps, cond=cond, generator=gen, static_clip=True)
        hits += int((torch.sign(x_velocity(x.cpu())) == sign).sum())
    net.train()
    return hits / (2 * SAMPLES)


def main(steps: int, variant: str, batch: int) -> None:
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    cfg = tiny()["base"].replace(text_dim=384, frame_embedding=True, temporal_rotary=True)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    net = VideoUNet(cfg.replace(spacetime_conv=variant == "spacetime")).to(device)
    prompts = [f"a {c} circle moving to the {m}" for c, m in PROMPTS]
    emb, mask = (a.to(device) for a in load_text_encoder("minilm", 32).encode(prompts))
    real = torch.cat([circle_clips(rng, "red", m, 64, FRAMES, SIZE, SIZE, FPS) for m in ("left", "right")])
    truth = torch.sign(x_velocity(real)) == torch.tensor([-1.0] * 64 + [1.0] * 64)
    print(f"rendered clips: {truth.float().mean():.3f} move the prompted way", flush=True)
    schedule = CosineSchedule()
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    for step in range(1, steps + 1):
        label = torch.randint(0, len(PROMPTS), (batch,)).to(device)
        x = torch.cat([circle_clips(rng, *PROMPTS[i], 1, FRAMES, SIZE, SIZE, FPS) for i in label.tolist()])
        log_snr = schedule.log_snr(torch.rand(batch)).to(device)
        loss = v_step_at(net, opt, x.to(device), emb[label], mask[label], log_snr)
        if step % EVERY == 0:
            print(
                f"step {step}: loss {loss:.4f}, direction {direction_accuracy(net, emb, mask, schedule):.3f}",
                flush=True,
            )


if __name__ == "__main__":
    torch.set_num_threads(int(os.environ.get("THREADS", "2")))
    args = sys.argv[1:]
    main(
        int(args[0]) if args else 600,
        args[1] if len(args) > 1 else "frames",
        int(args[2]) if len(args) > 2 else 16,
    )
