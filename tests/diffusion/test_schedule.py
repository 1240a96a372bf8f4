import math

import pytest
import torch

from imagen_video.diffusion import CosineSchedule, alpha_sigma_from_log_snr
from imagen_video.errors import UserError

T = torch.linspace(0, 1, 1001, dtype=torch.float64)


def test_endpoints_midpoint_and_monotone():
    schedule = CosineSchedule()
    log_snr = schedule.log_snr(T)
    assert log_snr[0].item() == pytest.approx(20.0, abs=1e-9)
    assert log_snr[-1].item() == pytest.approx(-20.0, abs=1e-9)
    # symmetric range: a/2 + b = pi/4, so tan(pi/4) = 1 and log_snr(1/2) = 0
    assert schedule.log_snr(torch.tensor([0.5], dtype=torch.float64)).item() == pytest.approx(0.0, abs=1e-12)
    assert (log_snr.diff() < 0).all()


def test_matches_spec_formula_for_other_ranges():
    schedule = CosineSchedule(log_snr_min=-15.0, log_snr_max=10.0)
    b = math.atan(math.exp(-0.5 * 10.0))
    a = math.atan(math.exp(-0.5 * -15.0)) - b
    expected = [-2 * math.log(math.tan(a * t + b)) for t in T.tolist()]
    torch.testing.assert_close(schedule.log_snr(T), torch.tensor(expected, dtype=torch.float64))
    assert schedule.log_snr(T)[[0, -1]].tolist() == pytest.approx([10.0, -15.0], abs=1e-9)


def test_alpha_sigma_variance_preserving_and_log_snr():
    schedule = CosineSchedule()
    alpha, sigma = schedule.alpha_sigma(T)
    torch.testing.assert_close(alpha**2 + sigma**2, torch.ones_like(T), rtol=0, atol=1e-14)
    torch.testing.assert_close(torch.log(alpha**2 / sigma**2), schedule.log_snr(T), rtol=0, atol=1e-9)
    assert alpha[-1].item() == pytest.approx(math.exp(-10), rel=1e-6)  # alpha_1 ~ 4.5e-5
    alpha_f, sigma_f = alpha_sigma_from_log_snr(torch.tensor([0.0, 20.0]))
    assert alpha_f.dtype == torch.float32
    assert alpha_f.tolist() == pytest.approx([math.sqrt(0.5), 1.0], abs=1e-6)
    assert sigma_f.tolist() == pytest.approx([math.sqrt(0.5), math.exp(-10)], rel=1e-5)


def test_float32_input_gives_float32_close_to_float64():
    schedule = CosineSchedule()
    log_snr32 = schedule.log_snr(T.float())
    assert log_snr32.dtype == torch.float32
    expected = schedule.log_snr(T.float().double())  # the same (float32-rounded) times, computed in float64
    torch.testing.assert_close(log_snr32.double(), expected, rtol=1e-6, atol=1e-6)
    assert all(a.dtype == torch.float32 for a in schedule.alpha_sigma(T.float()))


@pytest.mark.parametrize("shift", [1.0, 0.5, 0.125, 2.0])
def test_shift_multiplies_snr_and_t_round_trip(shift):
    base, shifted = CosineSchedule(), CosineSchedule(shift=shift)
    torch.testing.assert_close(shifted.log_snr(T) - base.log_snr(T), torch.full_like(T, 2 * math.log(shift)))
    alpha, sigma = shifted.alpha_sigma(T)
    alpha0, sigma0 = base.alpha_sigma(T)
    torch.testing.assert_close((alpha / sigma) ** 2, shift**2 * (alpha0 / sigma0) ** 2, rtol=1e-9, atol=0)
    torch.testing.assert_close(shifted.t_from_log_snr(shifted.log_snr(T)), T, rtol=0, atol=1e-9)


def test_rejects_bad_parameters():
    with pytest.raises(UserError, match="log_snr_min < log_snr_max"):
        CosineSchedule(log_snr_min=5.0, log_snr_max=-5.0)
    with pytest.raises(UserError, match="shift"):
        CosineSchedule(shift=0.0)
