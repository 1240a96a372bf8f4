"""v_loss against the exact denoiser of Gaussian data x ~ N(m, s^2) per dimension.

Per t, the exact model leaves x-MSE = Var[x | z] = s^2 sigma^2 / (alpha^2 s^2 + sigma^2), so the expected
per-example loss is w_x(SNR) s^2 sigma^2 / (alpha^2 s^2 + sigma^2) (averaged over dimensions), i.e.
    "v": s^2 / (alpha^2 s^2 + sigma^2),  "eps": alpha^2 (that),  "snr_trunc": max(alpha^2, sigma^2) (that).
Over t ~ U[0, 1] with the cosine schedule (alpha = cos u, sigma = sin u, u = a t + b) the "v" loss integrates
in closed form: E = (s / a) [atan(tan(a + b) / s) - atan(tan(b) / s)].
"""

import math

import pytest
import torch

from imagen_video.diffusion import CosineSchedule, expand_like, v_loss, x_from_z_v, x_loss_weight
from imagen_video.errors import UserError

from .analytic import GaussianModel

SCHEDULE = CosineSchedule()
MEAN = torch.tensor([0.3, -0.5, 0.0, 1.0], dtype=torch.float64)
STD = torch.tensor([0.5, 1.0, 0.2, 2.0], dtype=torch.float64)


def _per_t_expected(t: torch.Tensor, weighting: str) -> torch.Tensor:
    """Closed-form expected loss of the exact denoiser at times t [K] -> [K] (mean over the dimensions)."""
    alpha, sigma = (expand_like(a, STD[None]) for a in SCHEDULE.alpha_sigma(t))
    v_mse = (STD**2 / (alpha**2 * STD**2 + sigma**2)).mean(-1)
    factor = {"v": 1.0, "eps": alpha[:, 0] ** 2, "snr_trunc": torch.maximum(alpha, sigma)[:, 0] ** 2}[
        weighting
    ]
    return factor * v_mse


def _data(batch: int, generator: torch.Generator) -> torch.Tensor:
    return MEAN + STD * torch.randn(batch, 4, generator=generator, dtype=torch.float64)


def test_loss_is_weighted_x_mse():
    generator = torch.Generator().manual_seed(0)
    x = _data(64, generator)
    noise = torch.randn(x.shape, generator=generator, dtype=torch.float64)
    t = torch.rand(64, generator=generator, dtype=torch.float64)
    wrong_model = GaussianModel(MEAN + 0.3, STD * 0.7)
    alpha, sigma = SCHEDULE.alpha_sigma(t)
    z = expand_like(alpha, x) * x + expand_like(sigma, x) * noise
    x_mse = ((x - x_from_z_v(z, wrong_model(z, t), alpha, sigma)) ** 2).mean(-1)
    for weighting in ("v", "eps", "snr_trunc"):
        expected = x_loss_weight(SCHEDULE.log_snr(t), weighting) * x_mse
        got = v_loss(wrong_model, x, None, SCHEDULE, weighting, t=t, noise=noise, per_example=True)
        torch.testing.assert_close(got, expected, rtol=1e-7, atol=0)
        assert v_loss(wrong_model, x, None, SCHEDULE, weighting, t=t, noise=noise).item() == pytest.approx(
            expected.mean().item(), rel=1e-7
        )


def test_x_loss_weight_values():
    log_snr = torch.tensor([-2.0, 0.0, 3.0], dtype=torch.float64)
    snr = log_snr.exp()
    torch.testing.assert_close(x_loss_weight(log_snr, "v"), snr + 1)
    torch.testing.assert_close(x_loss_weight(log_snr, "eps"), snr)
    torch.testing.assert_close(
        x_loss_weight(log_snr, "snr_trunc"), torch.tensor([1.0, 1.0, snr[2].item()], dtype=torch.float64)
    )


@pytest.mark.parametrize("weighting", ["v", "eps", "snr_trunc"])
def test_exact_denoiser_loss_per_t_matches_closed_form(weighting):
    times = torch.tensor([0.02, 0.25, 0.5, 0.75, 0.98], dtype=torch.float64)
    repeats = 4096
    t = times.repeat_interleave(repeats)
    generator = torch.Generator().manual_seed(1)
    losses = v_loss(GaussianModel(MEAN, STD), _data(len(t), generator), None, SCHEDULE, weighting,
                    generator=generator, t=t, per_example=True).reshape(len(times), repeats)  # fmt: skip
    expected = _per_t_expected(times, weighting)
    standard_error = losses.std(1) / math.sqrt(repeats)
    assert ((losses.mean(1) - expected).abs() < 4 * standard_error).all(), (losses.mean(1), expected)
    assert ((losses.mean(1) / expected - 1).abs() < 0.05).all()


def test_exact_denoiser_loss_over_random_t_matches_closed_form():
    b = math.atan(math.exp(-0.5 * SCHEDULE.log_snr_max))
    a = math.atan(math.exp(-0.5 * SCHEDULE.log_snr_min)) - b
    closed_form = torch.stack(
        [(s / a) * (torch.atan(math.tan(a + b) / s) - torch.atan(math.tan(b) / s)) for s in STD]
    ).mean()
    grid = torch.linspace(0, 1, 20001, dtype=torch.float64)
    torch.testing.assert_close(
        torch.trapezoid(_per_t_expected(grid, "v"), grid), closed_form, rtol=1e-7, atol=0
    )

    generator = torch.Generator().manual_seed(2)
    batch = 65536
    model = GaussianModel(MEAN, STD)
    for weighting in ("v", "eps", "snr_trunc"):
        expected = (
            closed_form if weighting == "v" else torch.trapezoid(_per_t_expected(grid, weighting), grid)
        )
        losses = v_loss(
            model, _data(batch, generator), None, SCHEDULE, weighting, generator, per_example=True
        )
        standard_error = losses.std() / math.sqrt(batch)
        assert abs(losses.mean() - expected) < 4 * standard_error, (weighting, losses.mean(), expected)


def test_loss_reproducible_with_generator_and_rejects_bad_weighting():
    x = _data(16, torch.Generator().manual_seed(3))
    model = GaussianModel(MEAN + 0.1, STD)
    first = v_loss(model, x, None, SCHEDULE, generator=torch.Generator().manual_seed(7))
    second = v_loss(model, x, None, SCHEDULE, generator=torch.Generator().manual_seed(7))
    assert first.ndim == 0 and torch.equal(first, second)
    with pytest.raises(UserError, match="weighting"):
        v_loss(model, x, None, SCHEDULE, weighting="snr")
