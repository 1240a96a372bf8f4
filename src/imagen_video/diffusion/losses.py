"""The v-prediction training loss (SPEC §5) and its weightings, written as weights on the x-MSE.

For z = alpha x + sigma eps and x_hat = alpha z - sigma v_hat: x - x_hat = sigma (v_hat - v), so
||v - v_hat||^2 = (1 + SNR) ||x - x_hat||^2 and ||eps - eps_hat||^2 = SNR ||x - x_hat||^2.
Weightings (weight on the x-MSE):  "v" -> SNR + 1 (default),  "eps" -> SNR,  "snr_trunc" -> max(SNR, 1).
The loss is evaluated as a weight on the v-MSE, weight / (1 + SNR) = 1, alpha^2, max(alpha^2, sigma^2),
which is the same number and stays accurate at the extreme log-SNRs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from einops import reduce
from torch import Tensor

from imagen_video.diffusion.parameterization import expand_like, v_from_x_eps
from imagen_video.diffusion.schedule import CosineSchedule
from imagen_video.errors import UserError

WEIGHTINGS = ("v", "eps", "snr_trunc")


def _check_weighting(weighting: str) -> None:
    if weighting not in WEIGHTINGS:
        raise UserError(f"unknown loss weighting {weighting!r}; choose one of {', '.join(WEIGHTINGS)}")


def x_loss_weight(log_snr: Tensor, weighting: str = "v") -> Tensor:
    """Weight on the x-MSE, SNR = exp(log_snr): "v" -> SNR + 1, "eps" -> SNR, "snr_trunc" -> max(SNR, 1)."""
    _check_weighting(weighting)
    snr = log_snr.exp()
    if weighting == "v":
        return snr + 1
    if weighting == "eps":
        return snr
    return snr.clamp(min=1.0)


def v_loss_weight(log_snr: Tensor, weighting: str = "v") -> Tensor:
    """Weight on ||v - v_hat||^2, x_loss_weight / (1 + SNR): 1, sigmoid(log_snr), sigmoid(|log_snr|)."""
    _check_weighting(weighting)
    if weighting == "v":
        return torch.ones_like(log_snr)
    if weighting == "eps":
        return torch.sigmoid(log_snr)
    return torch.sigmoid(log_snr.abs())


def v_loss(
    model: Callable[..., Tensor],
    x: Tensor,
    cond: Any,
    schedule: CosineSchedule,
    weighting: str = "v",
    generator: torch.Generator | None = None,
    t: Tensor | None = None,
    noise: Tensor | None = None,
    per_example: bool = False,
) -> Tensor:
    """E_{t~U[0,1], eps} w(log_snr) ||x - x_hat||^2, x_hat = alpha z - sigma model(z, t, cond) (SPEC §5).

    x [B, ...]; t [B] (drawn uniformly with `generator` when None); noise = eps [B, ...] (drawn when None).
    The squared error is averaged over all non-batch axes. Returns the batch mean (a scalar), or the
    per-example losses [B] when per_example=True.
    """
    _check_weighting(weighting)
    batch = x.shape[0]
    if t is None:
        t = torch.rand(batch, generator=generator, device=x.device, dtype=x.dtype)
    if noise is None:
        noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    alpha, sigma = schedule.alpha_sigma(t)
    z = expand_like(alpha, x) * x + expand_like(sigma, x) * noise
    v = v_from_x_eps(x, noise, alpha, sigma)
    v_hat = model(z, t, cond)
    v_mse = reduce((v - v_hat.to(v.dtype)) ** 2, "b ... -> b", "mean")
    losses = v_loss_weight(schedule.log_snr(t), weighting) * v_mse
    return losses if per_example else losses.mean()
