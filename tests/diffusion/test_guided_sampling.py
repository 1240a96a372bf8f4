"""Classifier-free guidance on a two-class Gaussian mixture with exact conditional and unconditional models.

x | c ~ N(m_c, s^2), c in {0, 1} equally likely, m = (-0.5, 0.5), s = 0.5 (one dimension).
Per step (proved in `test_guided_x_hat_closed_form`): with k = alpha s^2 / (alpha^2 s^2 + sigma^2),
    x_hat_guided = (1 + w) E[x|z,c] - w E[x|z] = E[x|z,c] + w p(c'|z) (1 - k alpha) (m_c - m_c'),
so guidance pushes every step's prediction away from the other class c', by an amount that grows with w.
The whole sampler's output mean has no closed form for w > 0 (p(c'|z) is a logistic function of z), so it is
checked against a high-precision reference: the guided probability-flow ODE
    dz/dlog_snr = alpha / 2 (x_hat_guided(z) - alpha z)
integrated with RK4 in log_snr from -20 to 20 (DDIM is the first-order exponential integrator of this ODE),
its mean over z_1 ~ N(0, 1) taken by Simpson quadrature on a grid of initial values.
"""

import math

import pytest
import torch

from imagen_video.diffusion import ConstantGuidance, CosineSchedule, alpha_sigma_from_log_snr, sample

from .analytic import MixtureModel

F64 = torch.float64
MEANS, STD = (-0.5, 0.5), 0.5
MIXTURE = MixtureModel([[MEANS[0]], [MEANS[1]]], STD, CosineSchedule())
GRID = torch.linspace(-8.0, 8.0, 801, dtype=F64)  # initial z_1 values for the quadrature


def _simpson_normal_weights(grid: torch.Tensor) -> torch.Tensor:
    """Simpson weights times the N(0, 1) density on an odd-sized uniform grid: sum(w f) = E[f(z_1)]."""
    weights = torch.ones_like(grid)
    weights[1:-1:2], weights[2:-1:2] = 4.0, 2.0
    return weights * (grid[1] - grid[0]) / 3 * torch.exp(-(grid**2) / 2) / math.sqrt(2 * math.pi)


def _guided_x_hat(z: torch.Tensor, log_snr: float, cond: torch.Tensor, w: float) -> torch.Tensor:
    log_snr_b = torch.full((z.shape[0],), log_snr, dtype=F64)
    x_cond = MIXTURE.x_hat_from_log_snr(z, log_snr_b, cond)
    return (1 + w) * x_cond - w * MIXTURE.x_hat_from_log_snr(z, log_snr_b, None)


def _probability_flow_reference(z: torch.Tensor, cond: torch.Tensor, w: float, h: float) -> torch.Tensor:
    """RK4 on dz/dlog_snr = alpha/2 (x_hat_guided - alpha z), log_snr -20 -> 20 in steps h; returns x_hat."""

    def f(z, log_snr):
        alpha = alpha_sigma_from_log_snr(torch.tensor(log_snr, dtype=F64))[0].item()
        return 0.5 * alpha * (_guided_x_hat(z, log_snr, cond, w) - alpha * z)

    log_snr = -20.0
    for _ in range(round(40.0 / h)):
        k1 = f(z, log_snr)
        k2 = f(z + h / 2 * k1, log_snr + h / 2)
        k3 = f(z + h / 2 * k2, log_snr + h / 2)
        k4 = f(z + h * k3, log_snr + h)
        z, log_snr = z + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4), log_snr + h
    return _guided_x_hat(z, 20.0, cond, w)


@pytest.fixture(scope="module")
def reference_means():
    """E[x_out | class 0] of the guided probability flow, w = 0, 1, 3 (h = 0.1, checked against h = 0.2)."""
    weights = _simpson_normal_weights(GRID)
    cond = torch.zeros(len(GRID), dtype=torch.long)
    means = {}
    for w in (0.0, 1.0, 3.0):
        fine = (weights * _probability_flow_reference(GRID[:, None], cond, w, 0.1)[:, 0]).sum().item()
        coarse = (weights * _probability_flow_reference(GRID[:, None], cond, w, 0.2)[:, 0]).sum().item()
        print(f"\nw={w}: RK4 reference h=0.1 vs h=0.2 differ by {abs(fine - coarse):.1e}")
        assert abs(fine - coarse) < 1e-6  # RK4 is 4th order: the h = 0.1 error is ~1/16 of this
        means[w] = fine
    print("\nguided probability-flow mean, class 0 (m_0 = -0.5, m_1 = 0.5, s = 0.5):", means)
    return means


def test_guided_x_hat_closed_form():
    generator = torch.Generator().manual_seed(0)
    z = 2 * torch.randn(64, 1, generator=generator, dtype=F64)
    log_snr = torch.linspace(-8, 8, 64, dtype=F64)
    cond = torch.randint(0, 2, (64,), generator=generator)
    alpha, sigma = (a[:, None] for a in alpha_sigma_from_log_snr(log_snr))
    k = alpha * STD**2 / (alpha**2 * STD**2 + sigma**2)
    means = torch.tensor(MEANS, dtype=F64)
    m_c, m_other = means[cond][:, None], means[1 - cond][:, None]
    variance = alpha**2 * STD**2 + sigma**2
    log_lik_c, log_lik_other = (
        -((z - alpha * m_c) ** 2) / (2 * variance),
        -((z - alpha * m_other) ** 2) / (2 * variance),
    )
    p_other = torch.sigmoid(log_lik_other - log_lik_c)
    for w in (0.0, 1.0, 3.0):
        x_cond = MIXTURE.x_hat_from_log_snr(z, log_snr, cond)
        guided = (1 + w) * x_cond - w * MIXTURE.x_hat_from_log_snr(z, log_snr, None)
        closed_form = m_c + k * (z - alpha * m_c) + w * p_other * (1 - k * alpha) * (m_c - m_other)
        torch.testing.assert_close(guided, closed_form, rtol=0, atol=1e-12)


def test_no_guidance_reproduces_each_class():
    cond = torch.arange(2).repeat_interleave(8192)
    generator = torch.Generator().manual_seed(0)
    x = sample(MIXTURE, (len(cond), 1), steps=256, cond=cond, guidance=ConstantGuidance(0.0),
               generator=generator, dtype=F64)[:, 0]  # fmt: skip
    for c, m in enumerate(MEANS):
        samples = x[cond == c]
        print(f"\nw=0 class {c}: mean {samples.mean():.4f} (m = {m}), std {samples.std():.4f} (s = {STD})")
        assert abs(samples.mean().item() - m) < 0.05 * STD
        assert abs(samples.std().item() / STD - 1) < 0.02


def test_guided_ddim_mean_matches_probability_flow_reference(reference_means):
    weights = _simpson_normal_weights(GRID)
    cond = torch.zeros(len(GRID), dtype=torch.long)
    errors = {}
    for w, reference in reference_means.items():
        for steps in (16, 64, 256):
            out = sample(MIXTURE, (len(GRID), 1), steps=steps, cond=cond, guidance=ConstantGuidance(w),
                         noise=GRID[:, None], dtype=F64)  # fmt: skip
            errors[w, steps] = abs((weights * out[:, 0]).sum().item() - reference)
        print(
            f"\nw={w}: |DDIM mean - reference| for 16/64/256 steps:",
            [f"{errors[w, n]:.2e}" for n in (16, 64, 256)],
        )
        assert errors[w, 256] < 2e-3
        if w > 0:
            assert errors[w, 256] < errors[w, 64] < errors[w, 16]
    # w > 0 moves the class-0 mean away from class 1 (at +0.5), more for larger w
    assert reference_means[3.0] < reference_means[1.0] < reference_means[0.0] - 0.2
    assert reference_means[0.0] == pytest.approx(MEANS[0], abs=1e-4)


def test_guided_samples_from_8192_seeds_match_reference(reference_means):
    cond = torch.cat([torch.zeros(8192, dtype=torch.long), torch.ones(8192, dtype=torch.long)])
    for w in (1.0, 3.0):
        generator = torch.Generator().manual_seed(1)
        x = sample(MIXTURE, (len(cond), 1), steps=256, cond=cond, guidance=ConstantGuidance(w),
                   generator=generator, dtype=F64)[:, 0]  # fmt: skip
        mean_0, mean_1 = x[cond == 0].mean().item(), x[cond == 1].mean().item()
        print(f"\nw={w}: sample means {mean_0:.4f} / {mean_1:.4f}, reference -/+{-reference_means[w]:.4f}")
        assert abs(mean_0 - reference_means[w]) < 0.05 * STD
        assert abs(mean_1 + reference_means[w]) < 0.05 * STD  # by symmetry class 1 mirrors class 0
