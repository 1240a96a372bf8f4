"""Fit a base stage's text prior mean b(c) (UNetConfig.text_prior_mean) by least squares on cached residuals.

With the U-Net's layers frozen, b enters the prediction linearly: x_hat = x_hat_layers + sigma^2 U G(c), with
G(c) = SCALE * MLP(masked-mean text) the coarse grid [C, 4, 4, 4] and U its trilinear upsampling. So the
x-space loss ||x - x_hat||^2 at a sample is, up to a constant in G,

    sigma^4 sum_c G_c^T (U^T U) G_c - 2 sigma^2 sum_c G_c^T U^T (x - x_hat_layers)_c

and one pass of the frozen U-Net over N training samples (t in T_RANGE, text dropped at DROPOUT as in
training, so b(no text) is fitted too) gives every statistic the MLP needs: the text mean, sigma^2 and
U^T r (64 numbers per channel). The MLP is then fitted on them for many epochs at no U-Net cost, which
averages away the per-sample noise that held the in-loop fits back (shares 0.3-0.4 after 1000 steps). The
epoch with the lowest loss on a held-out tenth is kept.

    [EPOCHS=400] python docs/analysis/fit_prior_mean.py SOURCE_CASCADE OUT_CASCADE [N_SAMPLES]

writes a copy of the cascade with the base's U-Net layers unchanged and the prior fitted (added if absent);
the statistics are kept in OUT_CASCADE.stats.pt and reused by a rerun (and by prior_ceiling.py).

RESULT (session 19, this 2-core CPU, from the shipped base moved to minilm+input, runs/tiny-minilm-input):
8192 samples, 400 epochs (best held-out epoch early, then overfitting): shares at log_snr -6 left/right /
up/down / growing/shrinking 0.34 / 0.43 / 0.54; 16384 samples (13 min), EPOCHS=60 (1 min): 0.51 / 0.83 / 0.48
(docs/analysis/logs/cpu_prior_fit16k_*.txt), above every in-loop fine-tune (session 18's 20-minute joint run
0.29 / 0.38 / 0.39 at step 300). Sampled (the 16384-sample fit, base alone, 200
held-out prompts, w=6, 64 steps, this CPU; docs/eval/experiment_base_prior_fit16k_base_alone_heldout200_w6_cpu
.json): colour / shape / motion 98.5 / 99.0 / 75.0 %, judge R-precision 79.9 (the shipped base alone 99.0 /
99.0 / 47.5 %, 58.4; session 18's joint fine-tune 98.5 / 98.5 / 61.5 %).
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from imagen_video.cascade import Cascade, CascadeConfig
from imagen_video.data import ShapesDataset
from imagen_video.data.vocab import COLORS, MOTIONS, SHAPES
from imagen_video.diffusion import alpha_sigma_from_log_snr
from imagen_video.models import VideoUNet
from imagen_video.models.blocks import TextPriorMean
from imagen_video.train.text import drop_text

T_RANGE, DROPOUT, BATCH, SEED = (0.85, 0.99), 0.1, 64, 19
EPOCHS = int(os.environ.get("EPOCHS", 400))


def upsample_matrix(grid: tuple[int, int, int], shape: tuple[int, int, int]) -> torch.Tensor:
    """U as a matrix [prod(shape), prod(grid)]: trilinear upsampling (corners aligned) of one channel."""
    basis = torch.eye(grid[0] * grid[1] * grid[2]).reshape(-1, 1, *grid)
    return F.interpolate(basis, size=shape, mode="trilinear", align_corners=True).flatten(1).T


def attribute_codes(attributes: dict) -> list[int]:
    """(colour, shape, motion, count) of a scene's first object as indices (diagnostics only)."""
    return [list(COLORS).index(attributes["color"]), SHAPES.index(attributes["shape"]),
            MOTIONS.index(attributes["motion"]), attributes["count"]]  # fmt: skip


@torch.no_grad()
def residual_statistics(cascade: Cascade, unet: VideoUNet, n: int) -> dict[str, torch.Tensor]:
    """text mean [n, D], sigma^2 [n], U^T (x - x_hat_layers) [n, C, G] of n training samples at high noise."""
    stage = cascade.stages[0]
    data = ShapesDataset(
        stage.frames, stage.height, stage.width, stage.fps, split="train", seed=SEED, length=n
    )
    u = upsample_matrix(TextPriorMean.GRID, stage.shape)
    g = torch.Generator().manual_seed(SEED)
    out = {"text_mean": [], "sigma2": [], "y": [], "dropped": [], "attributes": []}
    start = time.time()
    for first in range(0, n, BATCH):
        items = [data[i] for i in range(first, min(n, first + BATCH))]
        x = torch.stack([item["video"] for item in items])
        b = x.shape[0]
        emb, mask = cascade.text_encoder.encode([item["caption"] for item in items])
        dropped = torch.rand(b, generator=g) < DROPOUT
        emb, mask = drop_text(emb, mask, dropped)
        out["dropped"].append(dropped)
        out["attributes"].append(torch.tensor([attribute_codes(item["attributes"]) for item in items]))
        t = T_RANGE[0] + (T_RANGE[1] - T_RANGE[0]) * torch.rand(b, generator=g)
        log_snr = stage.schedule.log_snr(t)
        alpha, sigma = (a.reshape(-1, 1, 1, 1, 1) for a in alpha_sigma_from_log_snr(log_snr))
        z = alpha * x + sigma * torch.randn(x.shape, generator=g)
        x_hat = alpha * z - sigma * unet(z, log_snr, emb, mask)
        r = (x - x_hat).flatten(2)  # [b, C, T*H*W]
        out["y"].append(r @ u)
        out["sigma2"].append(sigma.flatten() ** 2)
        masked = torch.where(mask[..., None], emb, 0.0)
        out["text_mean"].append(masked.sum(1) / mask.sum(1, keepdim=True).clamp(min=1))
        done = first + b
        if done % (BATCH * 20) == 0 or done == n:
            print(f"  {done}/{n} samples, {time.time() - start:.0f} s", flush=True)
    return {k: torch.cat(v) for k, v in out.items()}


def prior_loss(net, scale: float, stats: dict, m: torch.Tensor, channels: int, pixels: int) -> torch.Tensor:
    """Mean over samples of sigma^4 G^T M G - 2 sigma^2 G^T y (x-space loss up to a constant), per pixel."""
    grid = scale * net(stats["text_mean"]).reshape(len(stats["sigma2"]), channels, -1)
    s2 = stats["sigma2"][:, None]
    quad = torch.einsum("bcg,gh,bch->bc", grid, m, grid)
    lin = (grid * stats["y"]).sum(-1)
    return (s2**2 * quad - 2 * s2 * lin).sum(1).mean() / (channels * pixels)


def fit_net(
    net: torch.nn.Module,
    scale: float,
    inputs: torch.Tensor,
    stats: dict,
    shape,
    optimizer,
    epochs: int,
    channels: int = 3,
    log: bool = False,
) -> float:
    """Fit `net` (inputs -> grid / scale) by prior_loss in minibatches of 512 over the cached statistics; a
    tenth is held out, and the epoch with the best held-out loss is kept. Returns that loss."""
    u = upsample_matrix(TextPriorMean.GRID, shape)
    m, pixels = u.T @ u, u.shape[0]
    held = torch.arange(len(inputs)) % 10 == 0
    parts = {k: stats[k] for k in ("sigma2", "y")} | {"text_mean": inputs}
    train = {k: v[~held] for k, v in parts.items()}
    test = {k: v[held] for k, v in parts.items()}

    def loss_of(part: dict) -> torch.Tensor:
        return prior_loss(net, scale, part, m, channels, pixels)

    g = torch.Generator().manual_seed(SEED)
    best, best_state = float("inf"), None
    if log:
        with torch.no_grad():
            print(f"  held-out loss at b = 0: {loss_of(test):.5f}")
    for epoch in range(epochs):
        order = torch.randperm(len(train["sigma2"]), generator=g)
        for first in range(0, len(order), 512):
            idx = order[first : first + 512]
            loss = loss_of({k: v[idx] for k, v in train.items()})
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            held_loss = loss_of(test).item()
        if held_loss < best:
            best, best_state = held_loss, {k: v.clone() for k, v in net.state_dict().items()}
        if log and (epoch % 50 == 0 or epoch == epochs - 1):
            print(f"  epoch {epoch}: held-out loss {held_loss:.5f} (best {best:.5f})", flush=True)
    net.load_state_dict(best_state)
    return best


def main(source: str, out: str, n: int) -> None:
    cascade = Cascade.load(source)
    base = cascade.stages[0]
    config = base.unet.replace(text_prior_mean=True)
    unet = VideoUNet(config).eval()
    unet.load_state_dict(cascade.unet(base.name).state_dict(), strict=False)
    prior, unet.prior_mean = unet.prior_mean, None  # the layers alone for the residuals
    cache = Path(out).with_suffix(".stats.pt")
    stats = torch.load(cache) if cache.is_file() else residual_statistics(cascade, unet, n)
    torch.save(stats, cache)
    unet.prior_mean = prior
    torch.nn.init.zeros_(prior.net[-1].weight)
    torch.nn.init.zeros_(prior.net[-1].bias)
    with torch.enable_grad():
        optimizer = torch.optim.Adam(prior.net.parameters(), lr=3e-4)
        fit_net(prior.net, prior.SCALE, stats["text_mean"], stats, base.shape, optimizer, EPOCHS, log=True)
    stages = (dataclasses.replace(base, unet=config),) + cascade.stages[1:]
    unets = {s.name: cascade.unet(s.name) for s in stages[1:]} | {base.name: unet.requires_grad_(False)}
    Cascade(CascadeConfig(cascade.config.text_encoder, stages), unets=unets).save(out)
    print(f"wrote {out}")


if __name__ == "__main__":
    torch.set_num_threads(2)
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 16384)
