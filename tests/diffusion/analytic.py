"""Exact denoisers for Gaussian data and a two-class Gaussian mixture, the analytic references of the tests.

For x ~ N(m, s^2) per dimension and z = alpha x + sigma eps:
    E[x | z] = m + alpha s^2 / (alpha^2 s^2 + sigma^2) (z - alpha m),
    Var[x | z] = s^2 sigma^2 / (alpha^2 s^2 + sigma^2),
and the exact v-prediction is v_hat = (alpha z - E[x | z]) / sigma (sigma > 0 under the truncated schedule).
"""

from __future__ import annotations

import torch
from torch import Tensor

from imagen_video.diffusion import CosineSchedule, alpha_sigma_from_log_snr, expand_like


def gaussian_x_hat(z: Tensor, alpha: Tensor, sigma: Tensor, mean: Tensor, std: Tensor) -> Tensor:
    """E[x | z] = m + alpha s^2 / (alpha^2 s^2 + sigma^2) (z - alpha m); alpha, sigma broadcast to z."""
    return mean + alpha * std**2 / (alpha**2 * std**2 + sigma**2) * (z - alpha * mean)


class GaussianModel:
    """Exact v-model for x ~ N(mean, std^2) per dimension; mean, std broadcast against one sample z[b]."""

    def __init__(self, mean, std, schedule: CosineSchedule | None = None) -> None:
        self.mean = torch.as_tensor(mean, dtype=torch.float64)
        self.std = torch.as_tensor(std, dtype=torch.float64)
        self.schedule = schedule if schedule is not None else CosineSchedule()
        self.calls = 0

    def __call__(self, z: Tensor, t: Tensor, cond=None) -> Tensor:
        self.calls += 1
        alpha, sigma = (expand_like(a, z) for a in self.schedule.alpha_sigma(t.to(torch.float64)))
        z64 = z.to(torch.float64)
        x_hat = gaussian_x_hat(z64, alpha, sigma, self.mean, self.std)
        return ((alpha * z64 - x_hat) / sigma).to(z.dtype)


class MixtureModel:
    """Exact cond/uncond v-models for x ~ 1/2 N(means[0], std^2) + 1/2 N(means[1], std^2) per dimension.

    cond is a LongTensor [B] of class labels (the class-conditional Gaussian denoiser); cond=None is the
    unconditional model, the mixture posterior mean E[x | z] = sum_c p(c | z) E[x | z, c] with
    p(c | z) proportional to N(z; alpha m_c, alpha^2 s^2 + sigma^2).
    """

    def __init__(self, means, std: float, schedule: CosineSchedule | None = None) -> None:
        self.means = torch.as_tensor(means, dtype=torch.float64)  # [2, D]
        self.std = float(std)
        self.schedule = schedule if schedule is not None else CosineSchedule()

    def x_hat_from_log_snr(self, z: Tensor, log_snr: Tensor, cond: Tensor | None) -> Tensor:
        """Exact E[x | z, c] (cond given) or E[x | z] (cond None) at per-example log_snr [B]."""
        alpha, sigma = (expand_like(a, z) for a in alpha_sigma_from_log_snr(log_snr))
        if cond is not None:
            return gaussian_x_hat(z, alpha, sigma, self.means[cond], self.std)
        per_class = torch.stack([gaussian_x_hat(z, alpha, sigma, m, self.std) for m in self.means])
        var = alpha**2 * self.std**2 + sigma**2
        log_lik = torch.stack(
            [(-((z - alpha * m) ** 2) / (2 * var)).sum(-1, keepdim=True) for m in self.means]
        )
        return (torch.softmax(log_lik, dim=0) * per_class).sum(0)

    def __call__(self, z: Tensor, t: Tensor, cond: Tensor | None = None) -> Tensor:
        log_snr = self.schedule.log_snr(t.to(torch.float64))
        alpha, sigma = (expand_like(a, z) for a in alpha_sigma_from_log_snr(log_snr))
        z64 = z.to(torch.float64)
        return ((alpha * z64 - self.x_hat_from_log_snr(z64, log_snr, cond)) / sigma).to(z.dtype)
