"""Samplers against analytic answers (exact Gaussian denoiser) and hand-written references of each rule."""

import math

import pytest
import torch

from imagen_video.diffusion import (
    ConstantGuidance,
    CosineSchedule,
    OscillatingGuidance,
    XModel,
    sample,
    x_from_z_v,
)
from imagen_video.errors import UserError

from .analytic import GaussianModel

F64 = torch.float64
SCHEDULE = CosineSchedule()
MEAN = torch.tensor([0.5, -1.0, 0.0], dtype=F64)
STD = torch.tensor([0.5, 1.0, 0.2], dtype=F64)
SEEDS = 8192
TABLE_STEPS = (16, 64, 256, 1024)


def _gaussian_run(sampler: str, steps: int, batch: int = SEEDS, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return sample(
        GaussianModel(MEAN, STD), (batch, 3), SCHEDULE, steps, sampler, generator=generator, dtype=F64
    )


def _std_error(x: torch.Tensor) -> float:
    """max over dimensions of |std(x_d) / s_d - 1|."""
    return (x.std(0) / STD - 1).abs().max().item()


def _ddim_exact_std_error(steps: int) -> float:
    """DDIM with the exact Gaussian denoiser is an affine map z_1 -> a z_1 + b per dimension; z_1 ~ N(0, 1)
    makes the output std exactly |a|, so pushing z_1 = 0 and z_1 = 1 through it gives the noise-free error."""
    noise = torch.tensor([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]], dtype=F64)
    out = sample(GaussianModel(MEAN, STD), (2, 3), SCHEDULE, steps, "ddim", noise=noise, dtype=F64)
    return ((out[1] - out[0]) / STD - 1).abs().max().item()


@pytest.fixture(scope="module")
def table():
    """Std errors for 16/64/256/1024 steps: DDIM noise-free, and every sampler from 8192 seeds."""
    rows = {}
    for steps in TABLE_STEPS:
        runs = {sampler: _gaussian_run(sampler, steps) for sampler in ("ddim", "ancestral", "stochastic")}
        rows[steps] = {"ddim_exact": _ddim_exact_std_error(steps), "runs": runs}
    print("\nstd error max_d |std/s - 1|, x ~ N(mu, s^2), mu = (0.5, -1, 0), s = (0.5, 1, 0.2), 8192 seeds")
    print(" steps | ddim (noise-free) | ddim    | ancestral | stochastic | max |mean-mu|/s (anc.)")
    for steps, row in rows.items():
        errors = [_std_error(row["runs"][name]) for name in ("ddim", "ancestral", "stochastic")]
        mean_error = ((row["runs"]["ancestral"].mean(0) - MEAN) / STD).abs().max().item()
        print(f" {steps:5d} | {row['ddim_exact']:17.5f} | " + " | ".join(f"{e:7.4f}" for e in errors), end="")
        print(f"    | {mean_error:.4f}")
    return rows


def test_ddim_512_steps_matches_gaussian():
    x = _gaussian_run("ddim", 512)
    mean_error, std_error = ((x.mean(0) - MEAN) / STD).abs().max().item(), _std_error(x)
    print(f"\nddim 512: max |mean - mu| / s = {mean_error:.4f}, max |std / s - 1| = {std_error:.4f}")
    assert mean_error < 0.05
    assert std_error < 0.02


def test_ancestral_1024_steps_matches_gaussian(table):
    x = table[1024]["runs"]["ancestral"]
    mean_error, std_error = ((x.mean(0) - MEAN) / STD).abs().max().item(), _std_error(x)
    print(f"\nancestral 1024: max |mean - mu| / s = {mean_error:.4f}, max |std / s - 1| = {std_error:.4f}")
    assert mean_error < 0.05
    assert std_error < 0.03


def test_stochastic_1024_steps_matches_gaussian(table):
    x = table[1024]["runs"]["stochastic"]
    assert ((x.mean(0) - MEAN) / STD).abs().max() < 0.05
    assert _std_error(x) < 0.03


def test_std_error_shrinks_with_steps(table):
    exact = [table[steps]["ddim_exact"] for steps in TABLE_STEPS]
    for coarse, fine in zip(exact, exact[1:], strict=False):
        assert 0.2 < fine / coarse < 0.3  # first order in the step size: 4x the steps, 1/4 of the error
    for sampler in ("ddim", "ancestral", "stochastic"):
        errors = [_std_error(table[steps]["runs"][sampler]) for steps in TABLE_STEPS]
        assert errors[-1] < errors[0] and errors[-1] < 0.03
    for sampler in ("ancestral", "stochastic"):
        errors = [_std_error(table[steps]["runs"][sampler]) for steps in TABLE_STEPS]
        assert errors == sorted(errors, reverse=True)


@pytest.mark.parametrize("sampler", ["ddim", "ancestral", "stochastic"])
def test_same_seed_same_result(sampler):
    model = GaussianModel(MEAN, STD)

    def run(seed):
        return sample(model, (16, 3), steps=8, sampler=sampler, generator=torch.Generator().manual_seed(seed))

    first, again, other = run(0), run(0), run(1)
    assert first.dtype == torch.float32
    assert torch.equal(first, again)
    assert not torch.allclose(first, other)
    noise = torch.randn(16, 3, generator=torch.Generator().manual_seed(0))
    if sampler == "ddim":  # deterministic given z_1
        assert torch.equal(sample(model, (16, 3), steps=8, noise=noise), first)


@pytest.mark.parametrize("sampler", ["ddim", "ancestral", "stochastic"])
def test_any_step_count_works(sampler):
    for steps in (1, 2, 8, 64, 1000):
        x = _gaussian_run(sampler, steps, batch=256)
        assert x.shape == (256, 3) and torch.isfinite(x).all()
        if steps == 1:  # one step returns x_hat(z_1, t=1) = mu + O(alpha_1 = 4.5e-5)
            torch.testing.assert_close(x, MEAN.expand(256, 3), rtol=0, atol=1e-3)
        if steps == 1000:
            assert ((x.std(0) / STD) - 1).abs().max() < 0.15  # 256 samples: std known to ~5%


def _alpha_sigma(t: float) -> tuple[float, float]:
    alpha, sigma = SCHEDULE.alpha_sigma(torch.tensor([t], dtype=F64))
    return alpha.item(), sigma.item()


def _x_hat(model, z, t):
    alpha, sigma = _alpha_sigma(t)
    return x_from_z_v(z, model(z, torch.full((z.shape[0],), t, dtype=F64), None), alpha, sigma)


@pytest.mark.parametrize("gamma", [0.0, 0.5, 1.0])
def test_ancestral_three_steps_equals_textbook_posterior(gamma):
    """z_s ~ q(z_s | z_t, x_hat) in textbook form:
    mean alpha_{t|s} sigma_s^2 / sigma_t^2 z_t + alpha_s sigma_{t|s}^2 / sigma_t^2 x_hat,
    variance (sigma_{t|s}^2 sigma_s^2 / sigma_t^2)^(1 - gamma) (sigma_{t|s}^2)^gamma."""
    model = GaussianModel([0.3, -0.4], [0.7, 1.2])
    generator = torch.Generator().manual_seed(5)
    z = torch.randn(32, 2, generator=generator, dtype=F64)
    for t, s in ((1.0, 2 / 3), (2 / 3, 1 / 3)):
        (alpha_t, sigma_t), (alpha_s, sigma_s) = _alpha_sigma(t), _alpha_sigma(s)
        alpha_ts = alpha_t / alpha_s
        sigma2_ts = sigma_t**2 - alpha_ts**2 * sigma_s**2
        mean = alpha_ts * sigma_s**2 / sigma_t**2 * z + alpha_s * sigma2_ts / sigma_t**2 * _x_hat(model, z, t)
        variance = (sigma2_ts * sigma_s**2 / sigma_t**2) ** (1 - gamma) * sigma2_ts**gamma
        z = mean + math.sqrt(variance) * torch.randn(32, 2, generator=generator, dtype=F64)
    expected = _x_hat(model, z, 1 / 3)
    got = sample(model, (32, 2), steps=3, sampler="ancestral", generator=torch.Generator().manual_seed(5),
                 dtype=F64, variance_interp=gamma)  # fmt: skip
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-10)


def test_stochastic_three_steps_equals_meng_rule():
    """DDIM from t to u = max(t - 2/N, 0), forward noise q(z_s | z_u) back to s = t - 1/N; last step x_hat."""
    model = GaussianModel([0.3, -0.4], [0.7, 1.2])
    generator = torch.Generator().manual_seed(6)
    z = torch.randn(32, 2, generator=generator, dtype=F64)
    for t, u, s in ((1.0, 1 / 3, 2 / 3), (2 / 3, 0.0, 1 / 3)):
        (alpha_t, sigma_t), (alpha_u, sigma_u), (alpha_s, sigma_s) = map(_alpha_sigma, (t, u, s))
        x_hat = _x_hat(model, z, t)
        z_u = alpha_u * x_hat + sigma_u * (z - alpha_t * x_hat) / sigma_t
        alpha_su = alpha_s / alpha_u
        noise = torch.randn(32, 2, generator=generator, dtype=F64)
        z = alpha_su * z_u + math.sqrt(sigma_s**2 - alpha_su**2 * sigma_u**2) * noise
    expected = _x_hat(model, z, 1 / 3)
    got = sample(
        model, (32, 2), steps=3, sampler="stochastic", generator=torch.Generator().manual_seed(6), dtype=F64
    )
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-10)


def test_static_clip_recomputes_eps_from_clipped_x():
    """Two DDIM steps by hand: x_hat = clip(alpha z - sigma v), eps_hat = (z - alpha x_hat) / sigma."""
    model = GaussianModel([2.0, -3.0], [1.5, 1.0])
    z = torch.randn(8, 2, dtype=F64)
    (alpha_t, sigma_t), (alpha_s, sigma_s) = _alpha_sigma(1.0), _alpha_sigma(0.5)
    x_hat = _x_hat(model, z, 1.0).clamp(-1, 1)
    z_half = alpha_s * x_hat + sigma_s * (z - alpha_t * x_hat) / sigma_t
    expected = _x_hat(model, z_half, 0.5).clamp(-1, 1)
    got = sample(model, (8, 2), steps=2, noise=z, static_clip=True, dtype=F64)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-12)
    assert not torch.allclose(sample(model, (8, 2), steps=2, noise=z, dtype=F64), got)


@pytest.mark.parametrize("sampler", ["ddim", "ancestral", "stochastic"])
def test_thresholding_is_a_no_op_inside_the_unit_box_and_bounds_otherwise(sampler):
    bounded = XModel(lambda z, t, cond: 0.5 * torch.tanh(z))  # |x_hat| <= 0.5: s = max(q, 1) = 1
    kwargs = {"steps": 16, "sampler": sampler, "dtype": F64}
    plain = sample(bounded, (8, 3, 2, 4, 4), generator=torch.Generator().manual_seed(0), **kwargs)
    for option in ({"dynamic_threshold": 0.995}, {"static_clip": True}):
        got = sample(bounded, (8, 3, 2, 4, 4), generator=torch.Generator().manual_seed(0), **kwargs, **option)
        torch.testing.assert_close(got, plain, rtol=0, atol=1e-9)
    wide = GaussianModel(3.0, 2.0)
    for option in ({"dynamic_threshold": 0.995}, {"static_clip": True}):
        got = sample(wide, (8, 3, 2, 4, 4), generator=torch.Generator().manual_seed(0), **kwargs, **option)
        assert got.abs().max() <= 1.0 + 1e-12


class _Counting:
    """A plain v-callable (cond -> Gaussian A, None -> Gaussian B) that counts its calls."""

    def __init__(self):
        self.cond_model, self.uncond_model = GaussianModel([0.5, 0.5], [0.5, 0.5]), GaussianModel(0.0, 1.0)
        self.calls = 0

    def __call__(self, z, t, cond):
        self.calls += 1
        return self.cond_model(z, t) if cond is not None else self.uncond_model(z, t)


class _CountingGuided(_Counting):
    def __init__(self):
        super().__init__()
        self.weights = []

    def guided(self, z, t, cond, w):
        self.weights.append(w)
        return (1 + w) * self.cond_model(z, t) - w * self.uncond_model(z, t)


def test_guidance_calls_and_batched_guided_path_agree():
    kwargs = {"steps": 20, "cond": "text", "generator": None, "dtype": F64}
    noise = torch.randn(8, 2, dtype=F64)
    plain = _Counting()
    unguided = sample(plain, (8, 2), noise=noise, **kwargs)
    assert plain.calls == 20  # w = 0: one conditional call per step
    plain.calls = 0
    two_calls = sample(plain, (8, 2), noise=noise, guidance=ConstantGuidance(3.0), **kwargs)
    assert plain.calls == 40
    guided = _CountingGuided()
    one_call = sample(guided, (8, 2), noise=noise, guidance=ConstantGuidance(3.0), **kwargs)
    assert guided.calls == 0 and guided.weights == [3.0] * 20
    torch.testing.assert_close(one_call, two_calls, rtol=0, atol=1e-12)
    assert not torch.allclose(unguided, two_calls)
    guided.weights = []
    sample(guided, (8, 2), noise=noise, guidance=OscillatingGuidance(15.0, 1.0), **kwargs)
    assert guided.weights == [15.0] * 3 + [1.0, 15.0] * 8 + [1.0]


def test_bad_arguments_raise_user_error():
    model = GaussianModel(0.0, 1.0)
    for steps in (0, -3, 2.5, True):
        with pytest.raises(UserError, match="steps must be an integer >= 1"):
            sample(model, (2, 3), steps=steps)
    with pytest.raises(UserError, match="unknown sampler 'euler'"):
        sample(model, (2, 3), sampler="euler")
    with pytest.raises(UserError, match="noise has shape"):
        sample(model, (2, 3), noise=torch.zeros(2, 4))
    with pytest.raises(UserError, match="percentile"):
        sample(model, (2, 3), dynamic_threshold=99.5)
    with pytest.raises(UserError, match="variance_interp"):
        sample(model, (2, 3), sampler="ancestral", variance_interp=2.0)


def test_progress_bar_runs(capsys):
    x = sample(GaussianModel(0.0, 1.0), (2, 3), steps=4, progress=True)
    assert x.shape == (2, 3)
