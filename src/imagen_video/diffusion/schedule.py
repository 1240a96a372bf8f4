"""Continuous-time variance-preserving noise schedules (SPEC §5): log_snr(t), alpha_t, sigma_t.

z_t = alpha_t x + sigma_t eps with alpha_t^2 + sigma_t^2 = 1 and log_snr_t = log(alpha_t^2 / sigma_t^2);
t = 0 is clean data, t = 1 is (almost) pure noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from imagen_video.errors import UserError


def alpha_sigma_from_log_snr(log_snr: Tensor) -> tuple[Tensor, Tensor]:
    """alpha = sqrt(sigmoid(log_snr)), sigma = sqrt(sigmoid(-log_snr)) (SPEC §5), so alpha^2 + sigma^2 = 1."""
    return torch.sigmoid(log_snr).sqrt(), torch.sigmoid(-log_snr).sqrt()


@dataclass(frozen=True)
class CosineSchedule:
    """Truncated continuous cosine schedule (Progressive Distillation code), optionally shifted.

    Unshifted: b = atan(exp(-log_snr_max / 2)), a = atan(exp(-log_snr_min / 2)) - b,
    log_snr(t) = -2 log tan(a t + b), so log_snr(0) = log_snr_max and log_snr(1) = log_snr_min.

    Shifted cosine (Hoogeboom et al. 2023, "simple diffusion"): `shift` multiplies the SNR by shift^2,
    log_snr_shifted(t) = log_snr(t) + 2 log(shift), with the truncation applied to the unshifted curve as in
    that paper (so the range becomes [log_snr_min + 2 log shift, log_snr_max + 2 log shift]).
    Use shift = base_resolution / resolution (< 1) for a stage larger than the one the schedule was tuned
    for: the same t then carries more noise. shift = 1 is the plain truncated cosine (SPEC default).
    """

    log_snr_min: float = -20.0
    log_snr_max: float = 20.0
    shift: float = 1.0

    def __post_init__(self) -> None:
        if not self.log_snr_min < self.log_snr_max:
            raise UserError(
                f"CosineSchedule needs log_snr_min < log_snr_max, got {self.log_snr_min} >= "
                f"{self.log_snr_max}; swap or fix the two values"
            )
        if not self.shift > 0:
            raise UserError(f"CosineSchedule.shift must be > 0 (a factor on sqrt(SNR)), got {self.shift}")

    @property
    def _b(self) -> float:
        return math.atan(math.exp(-0.5 * self.log_snr_max))

    @property
    def _a(self) -> float:
        return math.atan(math.exp(-0.5 * self.log_snr_min)) - self._b

    def log_snr(self, t: Tensor) -> Tensor:
        """log_snr(t) = -2 log tan(a t + b) + 2 log(shift); computed in float64, returned in t's dtype."""
        t64 = t.to(torch.float64)
        log_snr = -2.0 * torch.log(torch.tan(self._a * t64 + self._b)) + 2.0 * math.log(self.shift)
        return log_snr.to(t.dtype)

    def alpha_sigma(self, t: Tensor) -> tuple[Tensor, Tensor]:
        """(alpha_t, sigma_t) = (sqrt(sigmoid(log_snr(t))), sqrt(sigmoid(-log_snr(t))))."""
        alpha, sigma = alpha_sigma_from_log_snr(self.log_snr(t.to(torch.float64)))
        return alpha.to(t.dtype), sigma.to(t.dtype)

    def t_from_log_snr(self, log_snr: Tensor) -> Tensor:
        """Inverse of log_snr(t): t = (atan(exp(-(log_snr - 2 log shift) / 2)) - b) / a (not clamped)."""
        unshifted = log_snr.to(torch.float64) - 2.0 * math.log(self.shift)
        t = (torch.atan(torch.exp(-0.5 * unshifted)) - self._b) / self._a
        return t.to(log_snr.dtype)
