import torch

from imagen_video.diffusion import (
    CosineSchedule,
    EpsModel,
    XModel,
    eps_from_z_v,
    eps_from_z_x,
    expand_like,
    guided_v,
    residual_z,
    sample,
    v_from_residual_v,
    v_from_x_eps,
    v_from_z_eps,
    v_from_z_x,
    x_from_z_eps,
    x_from_z_v,
)

from .analytic import GaussianModel

SCHEDULE = CosineSchedule()


def _batch(generator):
    """Random x, eps [B, C, T, H, W] in float64 with t covering both ends of [0, 1]."""
    x = torch.randn(6, 3, 2, 4, 4, generator=generator, dtype=torch.float64)
    eps = torch.randn(x.shape, generator=generator, dtype=torch.float64)
    t = torch.tensor([0.0, 1e-3, 0.25, 0.5, 0.999, 1.0], dtype=torch.float64)
    return x, eps, t


def test_expand_like_shapes():
    a = torch.arange(6.0)
    x = torch.zeros(6, 3, 2, 4, 4)
    assert expand_like(a, x).shape == (6, 1, 1, 1, 1)
    assert torch.equal((expand_like(a, x) + x)[:, 1, 1, 2, 3], a)


def test_v_conversions_round_trip_float64():
    x, eps, t = _batch(torch.Generator().manual_seed(0))
    alpha, sigma = SCHEDULE.alpha_sigma(t)
    z = expand_like(alpha, x) * x + expand_like(sigma, x) * eps
    v = v_from_x_eps(x, eps, alpha, sigma)
    torch.testing.assert_close(v, expand_like(alpha, x) * eps - expand_like(sigma, x) * x, rtol=0, atol=0)
    torch.testing.assert_close(x_from_z_v(z, v, alpha, sigma), x, rtol=0, atol=1e-6)
    torch.testing.assert_close(eps_from_z_v(z, v, alpha, sigma), eps, rtol=0, atol=1e-6)
    # in fact exact to rounding: alpha^2 + sigma^2 = 1
    assert (x_from_z_v(z, v, alpha, sigma) - x).abs().max() < 1e-12


def test_x_and_eps_conversions_round_trip_float64():
    x, eps, t = _batch(torch.Generator().manual_seed(1))
    alpha, sigma = SCHEDULE.alpha_sigma(t)
    z = expand_like(alpha, x) * x + expand_like(sigma, x) * eps
    v = v_from_x_eps(x, eps, alpha, sigma)
    torch.testing.assert_close(v_from_z_x(z, x, alpha, sigma), v, rtol=0, atol=1e-6)
    torch.testing.assert_close(v_from_z_eps(z, eps, alpha, sigma), v, rtol=0, atol=1e-6)
    torch.testing.assert_close(x_from_z_eps(z, eps, alpha, sigma), x, rtol=0, atol=1e-6)
    torch.testing.assert_close(eps_from_z_x(z, x, alpha, sigma), eps, rtol=0, atol=1e-6)


def test_scalar_and_broadcast_alpha_sigma_agree():
    x, eps, _ = _batch(torch.Generator().manual_seed(2))
    alpha, sigma = 0.6, 0.8
    per_example = v_from_x_eps(
        x, eps, torch.full((6,), alpha, dtype=torch.float64), torch.full((6,), sigma, dtype=torch.float64)
    )
    torch.testing.assert_close(v_from_x_eps(x, eps, alpha, sigma), per_example)


def _eps_and_x_models(gaussian):
    def eps_model(z, t, cond=None):
        alpha, sigma = SCHEDULE.alpha_sigma(t)
        return eps_from_z_v(z, gaussian(z, t, cond), alpha, sigma)

    def x_model(z, t, cond=None):
        alpha, sigma = SCHEDULE.alpha_sigma(t)
        return x_from_z_v(z, gaussian(z, t, cond), alpha, sigma)

    return eps_model, x_model


def test_eps_and_x_adapters_recover_the_v_model():
    gaussian = GaussianModel([0.3, -0.2], [0.5, 1.5])
    eps_model, x_model = _eps_and_x_models(gaussian)
    z = torch.randn(5, 2, dtype=torch.float64)
    t = torch.tensor([0.01, 0.2, 0.5, 0.8, 0.99], dtype=torch.float64)
    torch.testing.assert_close(EpsModel(eps_model, SCHEDULE)(z, t), gaussian(z, t), rtol=0, atol=1e-8)
    torch.testing.assert_close(XModel(x_model)(z, t), gaussian(z, t), rtol=0, atol=1e-8)


def test_adapter_guided_equals_guided_v():
    cond_model = GaussianModel([0.3, -0.2], [0.5, 1.5])
    uncond_model = GaussianModel([0.0, 0.0], [1.0, 1.0])
    eps_cond, _ = _eps_and_x_models(cond_model)
    eps_uncond, _ = _eps_and_x_models(uncond_model)

    def eps_model(z, t, cond):
        return eps_cond(z, t) if cond is not None else eps_uncond(z, t)

    z = torch.randn(5, 2, dtype=torch.float64)
    t = torch.tensor([0.01, 0.2, 0.5, 0.8, 0.99], dtype=torch.float64)
    expected = guided_v(cond_model(z, t), uncond_model(z, t), 2.5)
    torch.testing.assert_close(EpsModel(eps_model).guided(z, t, "c", 2.5), expected, rtol=0, atol=1e-8)

    class WithGuided:
        def __call__(self, z, t, cond):
            return eps_model(z, t, cond)

        def guided(self, z, t, cond, w):
            return (1 + w) * eps_model(z, t, cond) - w * eps_model(z, t, None)

    torch.testing.assert_close(EpsModel(WithGuided()).guided(z, t, "c", 2.5), expected, rtol=0, atol=1e-8)


def test_ddim_on_residual_of_gaussian_reproduces_base_plus_gaussian():
    """The exact v-model of r ~ N(0, s^2), wrapped as residual_z / v_from_residual_v around a base b, is a
    v-model of x = b + r: DDIM 512 steps must give mean b and std s."""
    base = torch.tensor([0.7, -0.4, 0.1], dtype=torch.float64)
    std = torch.tensor([0.3, 0.1, 0.5], dtype=torch.float64)
    residual = GaussianModel(torch.zeros(3), std)

    def model(z, t, cond=None):
        alpha, sigma = (expand_like(a, z) for a in SCHEDULE.alpha_sigma(t.to(torch.float64)))
        return v_from_residual_v(residual(residual_z(z, base, alpha), t), base, sigma)

    x = sample(model, (8192, 3), SCHEDULE, 512, "ddim", generator=torch.Generator().manual_seed(0),
               dtype=torch.float64)  # fmt: skip
    assert ((x.mean(0) - base) / std).abs().max() < 0.05
    assert (x.std(0) / std - 1).abs().max() < 0.02
