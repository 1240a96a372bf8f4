"""Samplers over a v-predicting `model(z, t, cond)` on the time grid t_i = i / N, i = N .. 0 (SPEC §5, §7).

Every step evaluates the model once at the current grid time t (guided: see `_predict`), forms
x_hat = alpha_t z - sigma_t v_hat, optionally thresholds it, and sets eps_hat = (z - alpha_t x_hat) / sigma_t.
The final step returns x_hat itself (z_0 would differ only by sigma_0 ~ 4.5e-5 under the truncated
schedule). z_1 is standard normal noise; at t = 1, alpha_1 ~ 4.5e-5 for log_snr_min = -20, so the true
marginal N(alpha_1 x, sigma_1^2) is N(0, 1) to that accuracy.

Samplers, one step from t to s = t - 1/N:
- "ddim" (eta = 0): z_s = alpha_s x_hat + sigma_s eps_hat.
- "ancestral": z_s ~ q(z_s | z_t, x = x_hat), mean alpha_s x_hat + sigma_s sqrt(r) eps_hat with
  r = exp(log_snr_t - log_snr_s), variance exp(gamma log sigma^2_{t|s} + (1 - gamma) log sigma~^2_{s|t})
  between the posterior ("small") variance sigma~^2_{s|t} = (1 - r) sigma_s^2 (gamma = 0, default, OUR
  CHOICE) and the upper bound sigma^2_{t|s} = (1 - r) sigma_t^2 (gamma = 1); `variance_interp` is gamma.
- "stochastic" (Meng et al. 2022, for distilled models): a DDIM step of twice the step length to
  u = max(t - 2/N, 0), z_u = alpha_u x_hat + sigma_u eps_hat, then back up to s = t - 1/N with fresh
  forward-process noise, z_s = (alpha_s / alpha_u) z_u + sqrt(sigma_s^2 - (alpha_s / alpha_u)^2 sigma_u^2) n,
  n ~ N(0, I) (the VP transition q(z_s | z_u)). The last step (t = 1/N) is a plain DDIM step to 0,
  i.e. it returns x_hat.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor
from tqdm.auto import trange

from imagen_video.diffusion.guidance import dynamic_threshold as apply_dynamic_threshold
from imagen_video.diffusion.guidance import guided_v
from imagen_video.diffusion.guidance import static_clip as apply_static_clip
from imagen_video.diffusion.parameterization import eps_from_z_v, eps_from_z_x, x_from_z_v
from imagen_video.diffusion.schedule import CosineSchedule, alpha_sigma_from_log_snr
from imagen_video.errors import UserError

SAMPLERS = ("ddim", "ancestral", "stochastic")
Guidance = Callable[[int, int], float]


def _predict(model: Callable[..., Tensor], z: Tensor, t: Tensor, cond: Any, w: float) -> Tensor:
    """v_hat: model(z, t, cond) when w = 0; else model.guided(z, t, cond, w) if the model has it (one
    batched forward), else (1 + w) model(z, t, cond) - w model(z, t, None)."""
    if w == 0:
        return model(z, t, cond)
    if hasattr(model, "guided"):
        return model.guided(z, t, cond, w)
    return guided_v(model(z, t, cond), model(z, t, None), w)


def _check_args(sampler: str, steps: int, dynamic_threshold: float | None, variance_interp: float) -> None:
    if sampler not in SAMPLERS:
        raise UserError(f"unknown sampler {sampler!r}; choose one of {', '.join(SAMPLERS)}")
    if isinstance(steps, bool) or not isinstance(steps, numbers.Integral) or steps < 1:
        raise UserError(f"sampling steps must be an integer >= 1, got {steps!r}")
    if dynamic_threshold is not None and not 0.0 < dynamic_threshold <= 1.0:
        raise UserError(f"dynamic_threshold is a percentile p in (0, 1], e.g. 0.995; got {dynamic_threshold}")
    if not 0.0 <= variance_interp <= 1.0:
        raise UserError(f"variance_interp (gamma) must be in [0, 1], got {variance_interp}")


def sample(
    model: Callable[..., Tensor],
    shape: Sequence[int],
    schedule: CosineSchedule | None = None,
    steps: int = 64,
    sampler: str = "ddim",
    cond: Any = None,
    guidance: Guidance | None = None,
    dynamic_threshold: float | None = None,
    static_clip: bool = False,
    generator: torch.Generator | None = None,
    noise: Tensor | None = None,
    progress: bool = False,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
    variance_interp: float = 0.0,
) -> Tensor:
    """Draw x [shape] by running `sampler` for `steps` model evaluations from z_1 = noise (module docstring).

    guidance(step_index, steps) -> w per step (None: w = 0, one unguided call per step). dynamic_threshold
    is the percentile p applied to x_hat every step (SPEC §6); static_clip clips x_hat to [-1, 1]. With
    `generator` (or `noise`, the initial z_1) runs are reproducible. variance_interp is the ancestral gamma.
    """
    _check_args(sampler, steps, dynamic_threshold, variance_interp)
    steps = int(steps)
    schedule = schedule if schedule is not None else CosineSchedule()
    shape = tuple(shape)
    if device is None:
        device = noise.device if noise is not None else (generator.device if generator is not None else "cpu")
    if noise is None:
        z = torch.randn(shape, generator=generator, device=device, dtype=dtype)
    elif tuple(noise.shape) != shape:
        raise UserError(f"noise has shape {tuple(noise.shape)}, the sample shape is {shape}; make them match")
    else:
        z = noise.to(device=device, dtype=dtype)
    batch = shape[0]

    def fresh_noise() -> Tensor:
        return torch.randn(shape, generator=generator, device=device, dtype=dtype)

    def log_snr_at(time: float) -> float:
        return schedule.log_snr(torch.tensor([time], dtype=torch.float64)).item()

    def alpha_sigma(log_snr: float) -> tuple[float, float]:
        alpha, sigma = alpha_sigma_from_log_snr(torch.tensor(log_snr, dtype=torch.float64))
        return alpha.item(), sigma.item()

    x_hat = z
    for step_index in trange(steps, disable=not progress, desc=f"{sampler} sampling", leave=False):
        i = steps - step_index
        t, s = i / steps, (i - 1) / steps
        log_snr_t = log_snr_at(t)
        alpha_t, sigma_t = alpha_sigma(log_snr_t)
        w = float(guidance(step_index, steps)) if guidance is not None else 0.0
        t_batch = torch.full((batch,), t, device=device, dtype=dtype)
        v_hat = _predict(model, z, t_batch, cond, w).to(dtype)
        x_hat = x_from_z_v(z, v_hat, alpha_t, sigma_t)
        if dynamic_threshold is not None:
            x_hat = apply_dynamic_threshold(x_hat, dynamic_threshold)
        if static_clip:
            x_hat = apply_static_clip(x_hat)
        if dynamic_threshold is not None or static_clip:
            eps_hat = eps_from_z_x(z, x_hat, alpha_t, sigma_t)
        else:
            eps_hat = eps_from_z_v(z, v_hat, alpha_t, sigma_t)
        if i == 1:
            break  # the last step, t = 1/N -> 0, returns x_hat
        log_snr_s = log_snr_at(s)
        alpha_s, sigma_s = alpha_sigma(log_snr_s)
        if sampler == "ddim":
            z = alpha_s * x_hat + sigma_s * eps_hat
        elif sampler == "ancestral":
            one_minus_r = -math.expm1(log_snr_t - log_snr_s)  # r = SNR_t / SNR_s
            small, large = one_minus_r * sigma_s**2, one_minus_r * sigma_t**2
            std = math.sqrt(small ** (1 - variance_interp) * large**variance_interp)
            z = alpha_s * x_hat + sigma_s * math.sqrt(1 - one_minus_r) * eps_hat + std * fresh_noise()
        else:
            log_snr_u = log_snr_at(max(t - 2 / steps, 0.0))
            alpha_u, sigma_u = alpha_sigma(log_snr_u)
            z_u = alpha_u * x_hat + sigma_u * eps_hat
            # q(z_s | z_u): mean (alpha_s / alpha_u) z_u, variance sigma_s^2 - (alpha_s/alpha_u)^2 sigma_u^2
            std = math.sqrt(-math.expm1(log_snr_s - log_snr_u) * sigma_s**2)
            z = (alpha_s / alpha_u) * z_u + std * fresh_noise()
    return x_hat
