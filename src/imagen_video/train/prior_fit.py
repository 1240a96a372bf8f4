"""Fit a base stage's text prior mean b(c) (UNetConfig.text_prior_mean) by least squares, U-Net layers frozen.

With the layers frozen, b enters the prediction linearly: x_hat = x_hat_layers + sigma^2 U G(c), where
G(c) = SCALE * MLP(masked-mean text) is the coarse grid [C, 4, 4, 4] and U its trilinear upsampling. The
x-space loss ||x - x_hat||^2 of a sample is therefore, up to a constant in G,

    sigma^4 sum_c G_c^T (U^T U) G_c - 2 sigma^2 sum_c G_c^T U^T (x - x_hat_layers)_c

so one pass of the frozen U-Net over N training samples at high noise (text dropped as in training, so
b(no text) is fitted too) stores everything the fit needs: the text mean, sigma^2 and U^T r (64 numbers per
channel). The MLP is then fitted on them for many epochs at no U-Net cost, keeping the epoch with the lowest
loss on a held-out tenth (OUR CHOICE; docs/analysis/prior_ceiling.py measures what such a prior can hold).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from imagen_video.cascade import Cascade, CascadeConfig
from imagen_video.data import ShapesDataset
from imagen_video.data.vocab import COLORS, MOTIONS, SHAPES
from imagen_video.diffusion import alpha_sigma_from_log_snr
from imagen_video.errors import UserError
from imagen_video.models import VideoUNet
from imagen_video.models.blocks import TextPriorMean, masked_text_mean
from imagen_video.train.text import drop_text

T_RANGE = (0.85, 0.99)  # diffusion times of the statistics: log_snr -2.9 .. -9.9 on tiny's base schedule
DROPOUT = 0.1  # text dropout, as in training
BATCH = 64
HELD_OUT_EVERY = 10  # every tenth sample is held out of the fit
MIN_SAMPLES = 2 * HELD_OUT_EVERY
STAT_KEYS = ("text_mean", "sigma2", "y", "dropped", "attributes")


def upsample_matrix(grid: tuple[int, int, int], shape: tuple[int, int, int]) -> Tensor:
    """U as a matrix [prod(shape), prod(grid)]: trilinear upsampling (corners aligned) of one channel."""
    basis = torch.eye(grid[0] * grid[1] * grid[2]).reshape(-1, 1, *grid)
    return F.interpolate(basis, size=shape, mode="trilinear", align_corners=True).flatten(1).T


def batch_statistics(
    layers: VideoUNet, x: Tensor, log_snr: Tensor, noise: Tensor, emb: Tensor, mask: Tensor, u: Tensor
) -> dict[str, Tensor]:
    """text mean [B, D], sigma^2 [B] and y = U^T (x - x_hat_layers) [B, C, G] of one batch, where
    x_hat_layers = alpha z - sigma v_layers(z) at z = alpha x + sigma noise (the U-Net without its prior)."""
    alpha, sigma = (a.reshape(-1, 1, 1, 1, 1) for a in alpha_sigma_from_log_snr(log_snr))
    z = alpha * x + sigma * noise
    x_hat = alpha * z - sigma * layers(z, log_snr, emb, mask)
    return {
        "text_mean": masked_text_mean(emb, mask),
        "sigma2": sigma.flatten() ** 2,
        "y": (x - x_hat).flatten(2) @ u,
    }


def attribute_codes(attributes: dict) -> list[int]:
    """(colour, shape, motion, count) of a scene's first object as indices (kept for diagnostics)."""
    return [list(COLORS).index(attributes["color"]), SHAPES.index(attributes["shape"]),
            MOTIONS.index(attributes["motion"]), attributes["count"]]  # fmt: skip


@torch.no_grad()
def residual_statistics(
    cascade: Cascade, layers: VideoUNet, n: int, seed: int, progress: bool = True
) -> dict[str, Tensor]:
    """batch_statistics of n ShapesDataset training samples (deterministic per seed) at t ~ U[T_RANGE],
    text dropped with probability DROPOUT; plus `dropped` [n] and `attributes` [n, 4] for diagnostics."""
    stage = cascade.stages[0]
    data = ShapesDataset(
        stage.frames, stage.height, stage.width, stage.fps, split="train", seed=seed, length=n
    )
    u = upsample_matrix(TextPriorMean.GRID, stage.shape)
    g = torch.Generator().manual_seed(seed)
    out: dict[str, list[Tensor]] = {key: [] for key in STAT_KEYS}
    for first in tqdm(range(0, n, BATCH), desc="residual statistics", unit="batch", disable=not progress):
        items = [data[i] for i in range(first, min(n, first + BATCH))]
        x = torch.stack([item["video"] for item in items])
        emb, mask = cascade.text_encoder.encode([item["caption"] for item in items])
        dropped = torch.rand(len(items), generator=g) < DROPOUT
        emb, mask = drop_text(emb, mask, dropped)
        t = T_RANGE[0] + (T_RANGE[1] - T_RANGE[0]) * torch.rand(len(items), generator=g)
        noise = torch.randn(x.shape, generator=g)
        stats = batch_statistics(layers, x, stage.schedule.log_snr(t), noise, emb, mask, u)
        for key, value in stats.items():
            out[key].append(value)
        out["dropped"].append(dropped)
        out["attributes"].append(torch.tensor([attribute_codes(item["attributes"]) for item in items]))
    return {key: torch.cat(values) for key, values in out.items()}


def prior_loss(
    net: Callable[[Tensor], Tensor], scale: float, stats: dict, m: Tensor, channels: int, pixels: int
) -> Tensor:
    """Mean over samples of sigma^4 G^T M G - 2 sigma^2 G^T y with G = scale * net(text_mean), M = U^T U:
    the x-space loss per pixel up to a constant in G."""
    grid = scale * net(stats["text_mean"]).reshape(len(stats["sigma2"]), channels, -1)
    s2 = stats["sigma2"][:, None]
    quad = torch.einsum("bcg,gh,bch->bc", grid, m, grid)
    lin = (grid * stats["y"]).sum(-1)
    return (s2**2 * quad - 2 * s2 * lin).sum(1).mean() / (channels * pixels)


def fit_net(
    net: Callable[[Tensor], Tensor],
    scale: float,
    inputs: Tensor,
    stats: dict,
    shape: tuple[int, int, int],
    optimizer: torch.optim.Optimizer,
    epochs: int,
    seed: int,
    channels: int = 3,
    progress: bool = False,
    module: nn.Module | None = None,
) -> float:
    """Fit `net` (inputs -> grid / scale) by prior_loss in minibatches of 512; every HELD_OUT_EVERY-th sample
    is held out and the epoch with the best held-out loss is kept in `module` (default: `net`, the module
    holding the fitted parameters). Returns that loss (b = 0 scores 0)."""
    module = net if module is None else module
    u = upsample_matrix(TextPriorMean.GRID, shape)
    m, pixels = u.T @ u, u.shape[0]
    held = torch.arange(len(inputs)) % HELD_OUT_EVERY == 0
    parts = {k: stats[k] for k in ("sigma2", "y")} | {"text_mean": inputs}
    train = {k: v[~held] for k, v in parts.items()}
    test = {k: v[held] for k, v in parts.items()}

    def loss_of(part: dict) -> Tensor:
        return prior_loss(net, scale, part, m, channels, pixels)

    g = torch.Generator().manual_seed(seed)
    best, best_state = float("inf"), None
    bar = tqdm(range(epochs), desc="fit prior", unit="epoch", disable=not progress)
    for _ in bar:
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
            best, best_state = held_loss, {k: v.clone() for k, v in module.state_dict().items()}
        bar.set_postfix(held_out=f"{held_loss:.5f}", best=f"{best:.5f}")
    module.load_state_dict(best_state)
    return best


def load_statistics(path: Path, n: int, channels: int) -> dict[str, Tensor]:
    """Cached residual_statistics from `path`, checked against the fit's sample count and channels."""
    try:
        stats = torch.load(path)
    except Exception as err:  # noqa: BLE001 - any unreadable file is the user's to replace
        raise UserError(f"{path}: cannot read cached statistics ({err}); delete it to recompute") from None
    if not isinstance(stats, dict) or set(stats) != set(STAT_KEYS):
        raise UserError(f"{path}: not a statistics file of `imagen-video fit-prior`; delete it to recompute")
    if len(stats["sigma2"]) != n or stats["y"].shape[1] != channels:
        raise UserError(
            f"{path}: cached statistics of {len(stats['sigma2'])} samples x {stats['y'].shape[1]} channels, "
            f"but this fit asks for {n} x {channels}; delete it or pass a matching --samples"
        )
    return stats


def sigma2_log_snr(sigma2: Tensor) -> Tensor:
    """log_snr = log(alpha^2 / sigma^2) = log((1 - sigma^2) / sigma^2) of the statistics' sigma^2."""
    return torch.log((1 - sigma2) / sigma2)


@dataclasses.dataclass(frozen=True)
class PriorFit:
    """The prior's form (UNetConfig.text_prior_*) and its optimiser: AdamW on the statistics' loss."""

    width: int | None = None
    depth: int = 1
    noise_level: bool = False
    rank: int = 0
    lr: float = 3e-4
    weight_decay: float = 0.0


def fit_text_prior(
    cascade: Cascade,
    n: int,
    epochs: int,
    seed: int,
    stats_path: Path | None = None,
    progress: bool = True,
    form: PriorFit = PriorFit(),
) -> tuple[Cascade, float]:
    """A copy of `cascade` whose base has its U-Net layers unchanged and the text prior mean of `form` fitted
    (added if absent or replacing the source's; its hidden layers initialised under `seed`, its output at 0)
    on n samples. Statistics are read from `stats_path` when it exists, else computed (and saved there if
    given). Returns the cascade and the fit's held-out loss (prior_loss; b = 0 scores 0, so below 0 is better
    than no prior)."""
    if n < MIN_SAMPLES:
        raise UserError(f"--samples must be >= {MIN_SAMPLES} (every {HELD_OUT_EVERY}th is held out), got {n}")
    if epochs < 1:
        raise UserError(f"--epochs must be >= 1, got {epochs}")
    base = cascade.stages[0]
    if base.kind != "base":
        raise UserError(f"the first stage {base.name!r} is a {base.kind} stage; the prior belongs to a base")
    config = base.unet.replace(
        text_prior_mean=True, text_prior_width=form.width, text_prior_depth=form.depth,
        text_prior_noise_level=form.noise_level, text_prior_rank=form.rank, text_prior_log_snr_range=None,
    )  # fmt: skip
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        unet = VideoUNet(config).eval().requires_grad_(False)
    source = cascade.unet(base.name).state_dict()
    layers = {k: v for k, v in source.items() if not k.startswith("prior_mean.")}
    unet.load_state_dict(layers, strict=False)  # a prior the source has is refitted from the seeded start
    prior, unet.prior_mean = unet.prior_mean, None  # the layers alone for the residuals
    if stats_path is not None and stats_path.is_file():
        stats = load_statistics(stats_path, n, config.out_channels)
    else:
        stats = residual_statistics(cascade, unet, n, seed, progress)
        if stats_path is not None:
            torch.save(stats, stats_path)
    log_snr = sigma2_log_snr(stats["sigma2"])
    if form.noise_level:  # the prior reads log_snr clamped to the band it is fitted on
        band = (float(log_snr.min()), float(log_snr.max()))
        config = config.replace(text_prior_log_snr_range=band)
        prior.log_snr_range = band
    unet.prior_mean = prior  # freshly built: its output layers start at 0 (TextPriorMean)
    inputs = prior.inputs(stats["text_mean"], log_snr)
    with torch.enable_grad():
        prior.requires_grad_(True)
        optimizer = torch.optim.AdamW(prior.parameters(), lr=form.lr, weight_decay=form.weight_decay)
        held_out = fit_net(
            prior.head, prior.SCALE, inputs, stats, base.shape, optimizer, epochs, seed, config.out_channels,
            progress, module=prior,
        )  # fmt: skip
    prior.requires_grad_(False)
    stages = (dataclasses.replace(base, unet=config),) + cascade.stages[1:]
    unets = {s.name: cascade.unet(s.name) for s in stages[1:]} | {base.name: unet}
    return Cascade(CascadeConfig(cascade.config.text_encoder, stages), unets=unets), held_out
