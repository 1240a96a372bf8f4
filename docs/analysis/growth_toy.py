"""Can the base U-Net learn a frame-dependent conditional mean at all? A two-prompt toy.

"a red circle growing" / "... shrinking", 4 frames of 16x16, v-loss at log_snr ~ U[LOW, HIGH], batch 16, AdamW
1e-3. Every 100 steps: the share of d = E[x | growing] - E[x | shrinking] that the mean prediction at
log_snr -6 reproduces (as in motion_mean_share.py; 1 = the ideal denoiser, 0 = no frame-dependent mean).

    python docs/analysis/growth_toy.py [STEPS] [LOG_SNR_LOW LOG_SNR_HIGH]     # default 600 -8 4

Session 8, 2-core CPU, 1500 steps (~11 min): share -0.001, -0.031, -0.007, 0.063, 0.256, -0.051, 0.044, 0.036,
0.012 at steps 100-900, then 0.296, 0.330, 0.397, 0.508, 0.282, 0.247 at 1000-1500: learnable, slowly and
unsteadily, where the colour of the full data set reaches ~1 within 2000 steps of batch 8. Trained at high
noise only (`800 -10 0`): 0.003, 0.023, 0.035, -0.018, 0.022, 0.040, 0.402, 0.376 at steps 100-800 (one run
each: an earlier onset, perhaps; not a measured speed-up).
"""

import sys

import numpy as np
import torch
from motion_mean_share import circle_clips, pair_share  # this folder: run as a script

from imagen_video.diffusion import alpha_sigma_from_log_snr, expand_like, v_from_x_eps
from imagen_video.models import VideoUNet
from imagen_video.models.presets import tiny
from imagen_video.text.encoder import load_text_encoder

T, H, W, FPS, BATCH = 4, 16, 16, 4, 16
MOTIONS = ("growing", "shrinking")


def clips(rng: np.random.Generator, motion: str, n: int, color: str = "red") -> torch.Tensor:
    """n rendered circle clips [n, 3, T, H, W] in [-1, 1]."""
    return circle_clips(rng, color, motion, n, T, H, W, FPS)


def v_step(net, opt, x: torch.Tensor, emb, mask, low: float, high: float) -> float:
    """One optimizer step on the v-loss (SPEC section 5) of clips x at log_snr ~ U[low, high]; the loss."""
    return v_step_at(net, opt, x, emb, mask, torch.empty(len(x), device=x.device).uniform_(low, high))


def v_step_at(net, opt, x: torch.Tensor, emb, mask, log_snr: torch.Tensor) -> float:
    """One optimizer step on the v-loss (SPEC section 5) of clips x at the given log_snr [B]; the loss."""
    alpha, sigma = alpha_sigma_from_log_snr(log_snr)
    eps = torch.randn_like(x)
    z = expand_like(alpha, x) * x + expand_like(sigma, x) * eps
    loss = ((net(z, log_snr, emb, mask) - v_from_x_eps(x, eps, alpha, sigma)) ** 2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss.item()


def main(steps: int, low: float, high: float) -> None:
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    cfg = tiny()["base"].replace(text_dim=384, frame_embedding=True, temporal_rotary=True)
    net = VideoUNet(cfg)
    emb, mask = load_text_encoder("minilm", 32).encode([f"a red circle {m}" for m in MOTIONS])
    d = clips(rng, MOTIONS[0], 512).mean(0) - clips(rng, MOTIONS[1], 512).mean(0)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    for step in range(1, steps + 1):
        label = torch.randint(0, 2, (BATCH,))
        x = torch.cat([clips(rng, MOTIONS[int(i)], 1) for i in label])
        loss = v_step(net, opt, x, emb[label], mask[label], low, high)
        if step % 100 == 0:
            net.eval()
            share = pair_share(net, emb, mask, d, -6.0)
            print(f"step {step}: loss {loss:.4f}, share {share:.3f}", flush=True)
            net.train()


if __name__ == "__main__":
    torch.set_num_threads(2)
    low, high = (float(a) for a in sys.argv[2:4]) if len(sys.argv) > 3 else (-8.0, 4.0)
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 600, low, high)
