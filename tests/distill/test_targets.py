"""Item 3 of issue 9: the progressive target against explicit teacher DDIM steps, in float64."""

import pytest
import torch

from imagen_video.diffusion import CosineSchedule, guided_v, sample, v_from_z_x, x_from_z_v
from imagen_video.distill.guided import guided_loss
from imagen_video.distill.progressive import halving_schedule, progressive_loss, teacher_two_steps
from imagen_video.distill.targets import ddim_step, progressive_times, progressive_x_target

from .toys import MixtureTeacher, ring

SCHEDULE = CosineSchedule()
TEACHER = MixtureTeacher(ring(5, 1.5), std=0.3, schedule=SCHEDULE)


def alpha_sigma(t: torch.Tensor):
    return SCHEDULE.alpha_sigma(t.to(torch.float64))


def test_progressive_times():
    t, t_mid, t_next = progressive_times(torch.tensor([1, 3, 8]), 8)
    assert torch.equal(t, torch.tensor([1 / 8, 3 / 8, 1.0], dtype=torch.float64))
    assert torch.allclose(t_mid, t - 1 / 16) and torch.allclose(t_next, t - 1 / 8)
    assert t_next[0] == 0.0


def test_halving_schedule():
    assert halving_schedule(64, 4) == [32, 16, 8, 4]
    assert halving_schedule(256, 8) == [128, 64, 32, 16, 8]
    assert halving_schedule(8, 8) == []


@pytest.mark.parametrize("num_steps", [2, 4, 32])
def test_one_student_step_lands_on_two_teacher_steps(num_steps):
    """One DDIM step t -> t'' with x = x_tilde equals two explicit teacher DDIM steps t -> t' -> t''."""
    g = torch.Generator().manual_seed(0)
    batch = 64
    i = torch.randint(2, num_steps + 1, (batch,), generator=g)
    t, t_mid, t_next = (i.double() / num_steps, (i - 0.5).double() / num_steps, (i - 1).double() / num_steps)
    z_t = torch.randn(batch, 2, generator=g, dtype=torch.float64)
    # the teacher's two DDIM steps written out: z_s = alpha_s x_hat + sigma_s (z - alpha x_hat) / sigma
    (a, s), (a1, s1), (a2, s2) = alpha_sigma(t), alpha_sigma(t_mid), alpha_sigma(t_next)
    x0 = TEACHER.x_hat(z_t, t)
    z_mid = a1[:, None] * x0 + s1[:, None] * (z_t - a[:, None] * x0) / s[:, None]
    x1 = TEACHER.x_hat(z_mid, t_mid)
    z_two = a2[:, None] * x1 + s2[:, None] * (z_mid - a1[:, None] * x1) / s1[:, None]

    x_tilde = progressive_x_target(z_t, z_two, a, s, a2, s2)
    z_one = ddim_step(z_t, x_tilde, a, s, a2, s2)
    assert torch.allclose(z_one, z_two, atol=1e-6, rtol=0)
    assert (z_one - z_two).abs().max() < 1e-12  # float64: exact up to rounding
    # the library's teacher_two_steps gives the same z_t''
    z_lib, x_mid = teacher_two_steps(TEACHER, z_t, i, num_steps, SCHEDULE)
    assert torch.allclose(z_lib, z_two, atol=1e-12, rtol=0) and torch.allclose(x_mid, x1, atol=1e-12, rtol=0)


def test_target_at_t_zero_is_the_endpoint():
    """With alpha_0 = 1, sigma_0 = 0 exactly, the formula returns z_t'' (the teacher's two-step result)."""
    g = torch.Generator().manual_seed(1)
    z_t, z_0 = torch.randn(2, 16, 2, generator=g, dtype=torch.float64)
    a, s = alpha_sigma(torch.full((16,), 1 / 4))
    one, zero = torch.ones(16, dtype=torch.float64), torch.zeros(16, dtype=torch.float64)
    assert torch.equal(progressive_x_target(z_t, z_0, a, s, one, zero), z_0)


@pytest.mark.parametrize("num_steps", [1, 4])
def test_oracle_student_samples_exactly_like_the_teacher(num_steps):
    """A student predicting x_tilde, run by diffusion.sample with N DDIM steps, reproduces the teacher's
    2N-step DDIM sample from the same noise: grids and the last step (x_hat, not z_0) match the sampler."""

    def oracle(z, t, cond=None):
        i = torch.round(t * num_steps).long()
        z_next, x_mid = teacher_two_steps(TEACHER, z, i, num_steps, SCHEDULE)
        (a, s), (a2, s2) = alpha_sigma(t), alpha_sigma(t - 1 / num_steps)
        x_tilde = torch.where((i == 1)[:, None], x_mid, progressive_x_target(z, z_next, a, s, a2, s2))
        return v_from_z_x(z, x_tilde, a, s)

    noise = torch.randn(256, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    kwargs = dict(schedule=SCHEDULE, sampler="ddim", noise=noise, dtype=torch.float64)
    teacher_out = sample(TEACHER, (256, 2), steps=2 * num_steps, **kwargs)
    student_out = sample(oracle, (256, 2), steps=num_steps, **kwargs)
    assert (student_out - teacher_out).abs().max() < 1e-6


@pytest.mark.parametrize("weighting", ["snr_trunc", "v"])
def test_progressive_loss_is_zero_for_the_oracle_and_positive_otherwise(weighting):
    g = torch.Generator().manual_seed(3)
    x = TEACHER.sample(512, g).double()

    def oracle(z, t):  # a student whose one step is the teacher's two: infer i from t (N = 4)
        i = torch.round(t * 4).long()
        z_next, x_mid = teacher_two_steps(TEACHER, z, i, 4, SCHEDULE)
        (a, s), (a2, s2) = alpha_sigma(t), alpha_sigma(t - 0.25)
        x_tilde = torch.where((i == 1)[:, None], x_mid, progressive_x_target(z, z_next, a, s, a2, s2))
        return v_from_z_x(z, x_tilde, a, s)

    assert progressive_loss(oracle, TEACHER, x, SCHEDULE, 4, weighting, g) < 1e-20
    assert progressive_loss(TEACHER, TEACHER, x, SCHEDULE, 4, weighting, g) > 1e-4  # 2 teacher steps != 1


def test_guided_loss_matches_the_x_space_formula():
    """The guided target (1 + w) x(z, c) - w x(z), and the loss of a student off by a known amount."""
    teacher = MixtureTeacher(ring(4, 1.5), std=0.3, classes=torch.tensor([0, 0, 1, 1]), schedule=SCHEDULE)
    g = torch.Generator().manual_seed(4)
    c = torch.randint(0, 2, (256,), generator=g)
    x = teacher.sample(256, g, c).double()
    w = torch.rand(256, generator=g, dtype=torch.float64) * 4

    def exact(z, t, w):
        return guided_v(teacher(z, t, c), teacher(z, t, None), w)

    def cond(z, t):
        return teacher(z, t, c)

    def uncond(z, t):
        return teacher(z, t, None)

    z = torch.randn(256, 2, generator=g, dtype=torch.float64)
    t = torch.rand(256, generator=g, dtype=torch.float64)
    a, s = alpha_sigma(t)
    x_guided = (1 + w[:, None]) * teacher.x_hat(z, t, c) - w[:, None] * teacher.x_hat(z, t, None)
    assert torch.allclose(x_from_z_v(z, exact(z, t, w), a, s), x_guided, atol=1e-9)
    assert guided_loss(exact, cond, uncond, x, SCHEDULE, 0.0, 4.0, "v", g, guidance_weight=w) < 1e-20
    off = guided_loss(lambda z, t, w: exact(z, t, w) + 0.1, cond, uncond, x, SCHEDULE, 0.0, 4.0, "v", g)
    assert off == pytest.approx(0.01, rel=1e-9)  # "v" weighting: the v-MSE itself
