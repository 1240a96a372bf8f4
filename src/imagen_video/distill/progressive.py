"""Progressive distillation (Salimans & Ho 2022, Algorithm 2; SPEC §7 stage 2): halve the DDIM step count.

A round distils a teacher sampled with 2N DDIM steps into a student sampled with N: the student's one step
t -> t - 1/N must land where the teacher's two steps t -> t - 0.5/N -> t - 1/N land. Then N <- N/2.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from einops import reduce
from torch import Tensor

from imagen_video.diffusion import expand_like, v_from_z_x, v_loss_weight, x_from_z_v
from imagen_video.distill.targets import ddim_step, progressive_times, progressive_x_target

# model(z [B, ...], t [B]) -> v [B, ...]; the conditioning (text, low-res video, w) is bound by the caller
Denoiser = Callable[[Tensor, Tensor], Tensor]


def halving_schedule(start_steps: int, end_steps: int) -> list[int]:
    """Student step counts of the rounds: start/2, start/4, ..., end (e.g. 64 -> 4: [32, 16, 8, 4])."""
    rounds, n = [], start_steps
    while n > end_steps:
        n //= 2
        rounds.append(n)
    return rounds


def _alpha_sigma(schedule, t64: Tensor, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    alpha, sigma = schedule.alpha_sigma(t64)
    return alpha.to(dtype), sigma.to(dtype)


@torch.no_grad()
def teacher_two_steps(
    teacher: Denoiser, z_t: Tensor, i: Tensor, num_steps: int, schedule
) -> tuple[Tensor, Tensor]:
    """(z_t'', x_hat(z_t')): two teacher DDIM steps t -> t' -> t'' (Alg. 2) of an N = num_steps student."""
    dtype = z_t.dtype
    t, t_mid, t_next = progressive_times(i, num_steps)
    alpha_t, sigma_t = _alpha_sigma(schedule, t, dtype)
    alpha_mid, sigma_mid = _alpha_sigma(schedule, t_mid, dtype)
    alpha_next, sigma_next = _alpha_sigma(schedule, t_next, dtype)
    x_t = x_from_z_v(z_t, teacher(z_t, t.to(dtype)), alpha_t, sigma_t)
    z_mid = ddim_step(z_t, x_t, alpha_t, sigma_t, alpha_mid, sigma_mid)
    x_mid = x_from_z_v(z_mid, teacher(z_mid, t_mid.to(dtype)), alpha_mid, sigma_mid)
    return ddim_step(z_mid, x_mid, alpha_mid, sigma_mid, alpha_next, sigma_next), x_mid


def progressive_loss(
    student: Denoiser,
    teacher: Denoiser,
    x: Tensor,
    schedule,
    num_steps: int,
    weighting: str = "snr_trunc",
    generator: torch.Generator | None = None,
    i: Tensor | None = None,
    noise: Tensor | None = None,
) -> Tensor:
    """Alg. 2 loss of an N-step student: E_i,eps w(log_snr_t) ||x_tilde - x_hat_student(z_t)||^2, t = i/N.

    At the last step (i = 1, t'' = 0) the target is the teacher's x_hat(z_t'), which is what the samplers
    return there; the formula would give z_0, off from it by sigma_0 eps_hat (sigma_0 ~ 4.5e-5, SPEC §5).

    `weighting` names the weight on the x-MSE as in diffusion.v_loss ("snr_trunc": max(SNR, 1); "v": SNR + 1);
    it is evaluated as the equal weighted v-MSE, v_tilde = (alpha_t z_t - x_tilde) / sigma_t. The step
    index i [B] in 1..N and noise = eps [B, ...] are drawn with `generator` unless given.
    """
    batch, dtype = x.shape[0], x.dtype
    if i is None:
        i = torch.randint(1, num_steps + 1, (batch,), generator=generator, device=x.device)
    eps = torch.randn(x.shape, generator=generator, device=x.device, dtype=dtype) if noise is None else noise
    t, _, t_next = progressive_times(i, num_steps)
    alpha_t, sigma_t = _alpha_sigma(schedule, t, dtype)
    alpha_next, sigma_next = _alpha_sigma(schedule, t_next, dtype)
    z_t = expand_like(alpha_t, x) * x + expand_like(sigma_t, x) * eps
    z_next, x_mid = teacher_two_steps(teacher, z_t, i, num_steps, schedule)
    x_tilde = progressive_x_target(z_t, z_next, alpha_t, sigma_t, alpha_next, sigma_next)
    x_tilde = torch.where(expand_like(i == 1, x), x_mid, x_tilde)
    v_tilde = v_from_z_x(z_t, x_tilde, alpha_t, sigma_t)
    v_student = student(z_t, t.to(dtype))
    per_sample = reduce((v_tilde - v_student.to(dtype)) ** 2, "b ... -> b", "mean")
    return (v_loss_weight(schedule.log_snr(t).to(dtype), weighting) * per_sample).mean()
