"""Does a base stage's high-noise prediction move with a prompt word as the data's conditional mean does?

For two prompts a, b differing in one word: share = <x_hat(a) - x_hat(b), d> / ||d||^2, where
d = E[x | a] - E[x | b] over rendered ShapesDataset clips and x_hat = alpha z - sigma v is the model's
prediction averaged over noise draws z at one log_snr. At high noise the ideal denoiser returns E[x | prompt],
so share -> 1; share 0 means the word does not reach the output there.

    python docs/analysis/motion_mean_share.py [CASCADE]      # default: the packaged tiny (on cuda if any)
    python docs/analysis/motion_mean_share.py runs/.../latest.pt   # a base run's checkpoint (its EMA weights)
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from imagen_video.cascade import Cascade
from imagen_video.data.shapes import render, scene_attributes
from imagen_video.diffusion import alpha_sigma_from_log_snr, x_from_z_v
from imagen_video.train.export import export_stage

CLIPS, DRAWS = 256, 64
PAIRS = (
    (("red", "still"), ("blue", "still")),
    (("red", "left"), ("red", "right")),
    (("red", "up"), ("red", "down")),
    (("red", "growing"), ("red", "shrinking")),
)
WORDS = {"still": "", "left": " moving to the left", "right": " moving to the right", "up": " moving up",
         "down": " moving down", "growing": " growing", "shrinking": " shrinking"}  # fmt: skip


def circle_clips(
    rng: np.random.Generator, color: str, motion: str, n: int, t: int, h: int, w: int, fps: float
):
    """n rendered ShapesDataset scenes of one <color> circle <motion>, [n, C, T, H, W] in [-1, 1]."""
    clips = [render(scene_attributes(rng, color, "circle", motion, t, h, w, fps), t, h, w) for _ in range(n)]
    return torch.tensor(np.stack(clips), dtype=torch.float32).permute(0, 4, 1, 2, 3) / 127.5 - 1


def data_mean(stage, color: str, motion: str) -> torch.Tensor:
    """E[x | a <color> circle <motion>] in [-1, 1], [C, T, H, W], over CLIPS rendered scenes."""
    rng = np.random.default_rng(0)
    return circle_clips(rng, color, motion, CLIPS, stage.frames, stage.height, stage.width, stage.fps).mean(0)


def mean_prediction(
    unet, emb: torch.Tensor, mask: torch.Tensor, shape: tuple, log_snr: float
) -> torch.Tensor:
    """Mean over DRAWS noise draws z (seed 1) of x_hat = alpha z - sigma v at `log_snr`, [C, T, H, W];
    emb [1, L, D] and mask [1, L]: one prompt's text."""
    device = emb.device
    z = torch.randn(DRAWS, *shape, generator=torch.Generator().manual_seed(1)).to(device)
    ls = torch.full((DRAWS,), log_snr, device=device)
    with torch.no_grad():
        v = unet(z, ls, emb.expand(DRAWS, -1, -1), mask.expand(DRAWS, -1))
    return x_from_z_v(z, v.float(), *alpha_sigma_from_log_snr(ls)).mean(0).cpu()


def pair_share(unet, emb: torch.Tensor, mask: torch.Tensor, d: torch.Tensor, log_snr: float) -> float:
    """<m, d> / ||d||^2 with m = mean_prediction(prompt 0) - mean_prediction(prompt 1), the same noise for
    both: the share of the data's difference d [C, T, H, W] that the model reproduces; emb [2, L, D]."""
    m0, m1 = (mean_prediction(unet, emb[i : i + 1], mask[i : i + 1], tuple(d.shape), log_snr) for i in (0, 1))
    return float(((m0 - m1) * d).sum() / (d * d).sum())


def load_base(name: str, folder: Path) -> Cascade:
    """A cascade; a base run's checkpoint (.pt) is exported into a one-stage cascade in `folder` first (any
    frames, size and U-Net options: the stage config travels in the checkpoint)."""
    if not name.endswith(".pt"):
        return Cascade.load(name)
    export_stage(name, folder)
    return Cascade.load(str(folder))


def main(name: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        cascade = load_base(name, Path(tmp) / "cascade").to("cuda" if torch.cuda.is_available() else "cpu")
        stage = cascade.stages[0]
        unet = cascade.unet(stage.name).eval()
        for a, b in PAIRS:
            d = data_mean(stage, *a) - data_mean(stage, *b)
            emb, mask = cascade.text_encoder.encode([f"a {c} circle{WORDS[m]}" for c, m in (a, b)])
            cells = []
            for log_snr in (-6.0, -2.0, 2.0):
                cells.append(f"log_snr {log_snr:+.0f}: share {pair_share(unet, emb, mask, d, log_snr):6.3f}")
            label = f"{a[0]} vs {b[0]}" if a[0] != b[0] else f"{a[1]} vs {b[1]}"
            print(f"{label:>22}  " + " | ".join(cells))


if __name__ == "__main__":
    torch.set_num_threads(2)
    main(sys.argv[1] if len(sys.argv) > 1 else "tiny")
