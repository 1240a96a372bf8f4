"""Classifier-free guidance (SPEC §6, paper §2.6): guided v, per-step weight schedules, x_hat thresholding.

A guidance schedule is any callable (step_index, num_steps) -> w, where step_index runs 0 .. num_steps - 1
and step 0 is the first (noisiest, t = 1) sampling step. w = 0 means no guidance.
Oscillating guidance is meant for the base model and the first two SR stages (up to 80x48, SPEC §6);
higher-resolution stages use constant guidance. Which stage gets which is the cascade's choice.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from einops import rearrange
from torch import Tensor

from imagen_video.diffusion.parameterization import expand_like
from imagen_video.errors import UserError


def guided_v(v_cond: Tensor, v_uncond: Tensor, w: float | Tensor) -> Tensor:
    """v_guided = (1 + w) v_cond - w v_uncond (w = 0: no guidance; w a float or a per-example tensor [B])."""
    if isinstance(w, Tensor) and w.ndim == 1:
        w = expand_like(w, v_cond)
    return (1 + w) * v_cond - w * v_uncond


@dataclass(frozen=True)
class ConstantGuidance:
    """The same weight w at every step; the paper's "constant = 6" is ConstantGuidance(6.0)."""

    w: float

    def __call__(self, step_index: int, num_steps: int) -> float:
        """w, whatever the step."""
        return float(self.w)


@dataclass(frozen=True)
class OscillatingGuidance:
    """oscillate(high, low) (paper §2.6): `high` for the first steps, then alternating high, low, high, ...

    Exact rule (OUR CHOICE for the constant part, SPEC §6): with n_const = ceil(constant_fraction * N),
    step i (0-based) gets `high` if i < n_const, otherwise `high` when (i - n_const) is even and `low` when
    it is odd. E.g. N = 20: 2 constant steps, then H L H L ...; N = 256: 26 constant steps.
    """

    high: float = 15.0
    low: float = 1.0
    constant_fraction: float = 0.1

    def __post_init__(self) -> None:
        if not 0.0 <= self.constant_fraction <= 1.0:
            raise UserError(
                f"OscillatingGuidance.constant_fraction must be in [0, 1], got {self.constant_fraction}"
            )

    def num_constant_steps(self, num_steps: int) -> int:
        """n_const = ceil(constant_fraction * num_steps) (a 1e-9 tolerance absorbs float error, 0.1*30)."""
        return math.ceil(self.constant_fraction * num_steps - 1e-9)

    def __call__(self, step_index: int, num_steps: int) -> float:
        """high if i < n_const or (i - n_const) even, else low."""
        n_const = self.num_constant_steps(num_steps)
        if step_index < n_const or (step_index - n_const) % 2 == 0:
            return float(self.high)
        return float(self.low)


def _quantile_per_sample(a: Tensor, p: float) -> Tensor:
    """Linear-interpolated p-quantile of each row of a [B, N] (as torch.quantile, but for any N) -> [B]."""
    n = a.shape[1]
    position = p * (n - 1)
    lo = math.floor(position)
    hi = min(lo + 1, n - 1)
    q_lo = torch.kthvalue(a, lo + 1, dim=1).values
    q_hi = torch.kthvalue(a, hi + 1, dim=1).values if hi != lo else q_lo
    return q_lo + (position - lo) * (q_hi - q_lo)


def dynamic_threshold(x: Tensor, p: float = 0.995) -> Tensor:
    """Dynamic thresholding (Imagen): per sample s = max(quantile(|x|, p), 1), x <- clip(x, -s, s) / s."""
    if not 0.0 < p <= 1.0:
        raise UserError(f"dynamic threshold percentile p must be in (0, 1], got {p} (e.g. 0.995)")
    s = _quantile_per_sample(rearrange(x.abs(), "b ... -> b (...)"), p).clamp(min=1.0)
    s = expand_like(s, x)
    return torch.maximum(torch.minimum(x, s), -s) / s


def static_clip(x: Tensor) -> Tensor:
    """Static thresholding: x <- clip(x, -1, 1)."""
    return x.clamp(-1.0, 1.0)
