"""Toys with exact answers for distillation: 2-D Gaussian mixtures with closed-form denoisers, MLP students.

Mixture of K isotropic Gaussians N(m_k, s^2 I) with weights pi_k; for z = alpha x + sigma eps:
    p(k | z) ∝ pi_k N(z; alpha m_k, (alpha^2 s^2 + sigma^2) I),
    E[x | z, k] = m_k + alpha s^2 / (alpha^2 s^2 + sigma^2) (z - alpha m_k),
    E[x | z] = sum_k p(k | z) E[x | z, k];   the exact v-prediction is (alpha z - E[x | z]) / sigma.
A class c selects a subset of the components (the class-conditional data); c = None is the whole mixture.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from imagen_video.diffusion import CosineSchedule, expand_like


class MixtureTeacher:
    """Exact v-model `teacher(z, t, cond)` of a 2-D Gaussian mixture; cond: class labels [B] or None."""

    def __init__(self, means: Tensor, std: float, classes: Tensor | None = None, schedule=None):
        self.means = torch.as_tensor(means, dtype=torch.float64)  # [K, 2]
        self.std = float(std)
        self.classes = torch.zeros(len(self.means), dtype=torch.long) if classes is None else classes  # [K]
        self.schedule = schedule if schedule is not None else CosineSchedule()

    def log_weights(self, cond: Tensor | None, batch: int) -> Tensor:
        """log pi_k [B, K]: uniform over all components (cond None) or over those of class cond[b]."""
        if cond is None:
            return torch.full((batch, len(self.means)), -math.log(len(self.means)), dtype=torch.float64)
        member = self.classes[None] == cond[:, None]
        return torch.where(member, -torch.log(member.sum(1, keepdim=True).double()), -math.inf)

    def x_hat(self, z: Tensor, t: Tensor, cond: Tensor | None = None) -> Tensor:
        """Exact E[x | z_t (, c)] [B, 2] (module docstring), computed in float64."""
        alpha, sigma = (expand_like(a, z) for a in self.schedule.alpha_sigma(t.to(torch.float64)))
        z64, var = z.to(torch.float64), alpha**2 * self.std**2 + sigma**2  # [B, 2], [B, 1]
        diff = z64[:, None, :] - alpha[:, :, None] * self.means[None]  # [B, K, 2]
        log_p = self.log_weights(cond, z.shape[0]) - 0.5 * (diff**2).sum(-1) / var
        posterior = torch.softmax(log_p, dim=-1)  # p(k | z) [B, K]
        means = self.means[None] + (alpha * self.std**2 / var)[:, :, None] * diff  # E[x | z, k] [B, K, 2]
        return (posterior[..., None] * means).sum(1)

    def __call__(self, z: Tensor, t: Tensor, cond: Tensor | None = None) -> Tensor:
        alpha, sigma = (expand_like(a, z) for a in self.schedule.alpha_sigma(t.to(torch.float64)))
        return ((alpha * z.to(torch.float64) - self.x_hat(z, t, cond)) / sigma).to(z.dtype)

    def sample(self, n: int, generator: torch.Generator, cond: Tensor | None = None) -> Tensor:
        """x ~ p(x (| c)) [n, 2], float32."""
        probs = self.log_weights(cond, n).exp()
        k = torch.multinomial(probs, 1, generator=generator)[:, 0]
        noise = torch.randn(n, 2, generator=generator, dtype=torch.float64)
        return (self.means[k] + self.std * noise).float()


def ring(count: int, radius: float) -> Tensor:
    """`count` points evenly spaced on a circle [count, 2]."""
    angle = torch.arange(count, dtype=torch.float64) * 2 * math.pi / count
    return radius * torch.stack([angle.cos(), angle.sin()], dim=-1)


def sinusoidal(x: Tensor, frequencies: Tensor) -> Tensor:
    """[B] -> [B, 2F]: sin and cos of x * f."""
    angles = x[:, None].float() * frequencies
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


class MLPStudent(nn.Module):
    """v = MLP(z, sinusoidal(log_snr) (, one-hot class, sinusoidal(w))): the toy stand-in for a U-Net."""

    def __init__(self, hidden: int = 128, num_classes: int = 0, guidance: bool = False, schedule=None):
        super().__init__()
        self.schedule = schedule if schedule is not None else CosineSchedule()
        self.num_classes = num_classes
        # log_snr spans [-20, 20]; w spans a few units: low frequencies keep w smooth for interpolation
        self.register_buffer("snr_freqs", 0.05 * 2.0 ** torch.arange(8))
        self.register_buffer("w_freqs", 0.015 * 2.0 ** torch.arange(6) if guidance else torch.zeros(0))
        width = 2 + 16 + num_classes + 2 * len(self.w_freqs)
        self.net = nn.Sequential(
            nn.Linear(width, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(),
            nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, 2),
        )  # fmt: skip

    def forward(self, z: Tensor, t: Tensor, cond: Tensor | None = None, w: Tensor | None = None) -> Tensor:
        features = [z.float(), sinusoidal(self.schedule.log_snr(t), self.snr_freqs)]
        if self.num_classes:
            features.append(nn.functional.one_hot(cond, self.num_classes).float())
        if len(self.w_freqs):
            features.append(sinusoidal(w, self.w_freqs))
        return self.net(torch.cat(features, dim=-1)).to(z.dtype)


def relative_rms(value: Tensor, reference: Tensor) -> float:
    """RMS(value - reference) / RMS(reference), over every entry."""
    return float((value - reference).pow(2).mean().sqrt() / reference.pow(2).mean().sqrt())
