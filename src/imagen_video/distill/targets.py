"""Progressive-distillation targets as pure functions (Salimans & Ho 2022, Algorithm 2; SPEC §7).

alpha/sigma arguments are per-example tensors [B]; they broadcast against the trailing dims of z or x.
"""

from __future__ import annotations

import torch
from torch import Tensor

from imagen_video.diffusion import expand_like


def progressive_times(i: Tensor, num_steps: int) -> tuple[Tensor, Tensor, Tensor]:
    """Alg. 2 times of an N-step student, i in 1..N: t = i/N, t' = t - 0.5/N, t'' = t - 1/N (float64)."""
    t = i.to(torch.float64) / num_steps
    return t, t - 0.5 / num_steps, t - 1.0 / num_steps


def ddim_step(z_t: Tensor, x_hat: Tensor, alpha_t: Tensor, sigma_t: Tensor, alpha_s: Tensor, sigma_s: Tensor):
    """DDIM t -> s (SPEC §5): z_s = alpha_s x_hat + sigma_s (z_t - alpha_t x_hat) / sigma_t."""
    a_t, s_t, a_s, s_s = (expand_like(v.to(z_t.dtype), z_t) for v in (alpha_t, sigma_t, alpha_s, sigma_s))
    return a_s * x_hat + (s_s / s_t) * (z_t - a_t * x_hat)


def progressive_x_target(
    z_t: Tensor, z_s: Tensor, alpha_t: Tensor, sigma_t: Tensor, alpha_s: Tensor, sigma_s: Tensor
) -> Tensor:
    """x_tilde = (z_s - (sigma_s / sigma_t) z_t) / (alpha_s - (sigma_s / sigma_t) alpha_t) (Alg. 2).

    The x whose single DDIM step t -> s lands on z_s. At s = 0 (sigma_s = 0, alpha_s = 1) it is z_s itself,
    the teacher's last x_hat. The denominator is > 0 whenever SNR_s > SNR_t.
    """
    a_t, s_t, a_s, s_s = (expand_like(v.to(z_t.dtype), z_t) for v in (alpha_t, sigma_t, alpha_s, sigma_s))
    ratio = s_s / s_t
    return (z_s - ratio * z_t) / (a_s - ratio * a_t)
