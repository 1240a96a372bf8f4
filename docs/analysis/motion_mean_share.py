"""Does a base stage's high-noise prediction move with a prompt word as the data's conditional mean does?

For two prompts a, b differing in one word: share = <x_hat(a) - x_hat(b), d> / ||d||^2, where
d = E[x | a] - E[x | b] over rendered ShapesDataset clips and x_hat = alpha z - sigma v is the model's
prediction averaged over noise draws z at one log_snr. At high noise the ideal denoiser returns E[x | prompt],
so share -> 1; share 0 means the word does not reach the output there.

    python docs/analysis/motion_mean_share.py [CASCADE]      # default: the packaged tiny
"""

from __future__ import annotations

import sys

import numpy as np
import torch

from imagen_video.cascade import Cascade
from imagen_video.data.shapes import render, scene_attributes

CLIPS, DRAWS = 256, 64
PAIRS = (
    (("red", "still"), ("blue", "still")),
    (("red", "left"), ("red", "right")),
    (("red", "up"), ("red", "down")),
    (("red", "growing"), ("red", "shrinking")),
)
WORDS = {"still": "", "left": " moving to the left", "right": " moving to the right", "up": " moving up",
         "down": " moving down", "growing": " growing", "shrinking": " shrinking"}  # fmt: skip


def data_mean(stage, color: str, motion: str) -> torch.Tensor:
    """E[x | a <color> circle <motion>] in [-1, 1], [C, T, H, W], over CLIPS rendered scenes."""
    rng = np.random.default_rng(0)
    t, h, w = stage.frames, stage.height, stage.width
    clips = [render(scene_attributes(rng, color, "circle", motion, t, h, w, stage.fps, None), t, h, w)
             for _ in range(CLIPS)]  # fmt: skip
    return torch.tensor(np.stack(clips), dtype=torch.float32).permute(0, 4, 1, 2, 3).mean(0) / 127.5 - 1


def model_mean(cascade, stage, prompt: str, log_snr: float) -> torch.Tensor:
    """Mean over DRAWS noise draws of x_hat = alpha z - sigma v at `log_snr` (z pure noise), [C, T, H, W]."""
    emb, mask = cascade.text_encoder.encode([prompt] * DRAWS)
    z = torch.randn(
        DRAWS, 3, stage.frames, stage.height, stage.width, generator=torch.Generator().manual_seed(1)
    )
    ls = torch.full((DRAWS,), log_snr)
    alpha, sigma = (
        torch.sigmoid(ls).sqrt().view(-1, 1, 1, 1, 1),
        torch.sigmoid(-ls).sqrt().view(-1, 1, 1, 1, 1),
    )
    with torch.no_grad():
        v = cascade.unet(stage.name)(z, ls, emb, mask)
    return (alpha * z - sigma * v).mean(0)


def main(name: str) -> None:
    cascade = Cascade.load(name)
    stage = cascade.stages[0]
    cascade.unet(stage.name).eval()
    for a, b in PAIRS:
        d = data_mean(stage, *a) - data_mean(stage, *b)
        cells = []
        for log_snr in (-6.0, -2.0, 2.0):
            m = model_mean(cascade, stage, f"a {a[0]} circle{WORDS[a[1]]}", log_snr)
            m = m - model_mean(cascade, stage, f"a {b[0]} circle{WORDS[b[1]]}", log_snr)
            cells.append(f"log_snr {log_snr:+.0f}: share {float((m * d).sum() / (d * d).sum()):6.3f}")
        label = f"{a[0]} vs {b[0]}" if a[0] != b[0] else f"{a[1]} vs {b[1]}"
        print(f"{label:>22}  " + " | ".join(cells))


if __name__ == "__main__":
    torch.set_num_threads(2)
    main(sys.argv[1] if len(sys.argv) > 1 else "tiny")
