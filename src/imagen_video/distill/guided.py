"""Guided distillation (Meng et al. 2022, stage 1; SPEC §7): fold classifier-free guidance into a w input."""

from __future__ import annotations

from collections.abc import Callable

import torch
from einops import reduce
from torch import Tensor

from imagen_video.diffusion import expand_like, guided_v, v_loss_weight

# student(z [B, ...], t [B], guidance_weight [B]) -> v; teacher(z, t) -> v (conditioning bound by the caller)
GuidedStudent = Callable[[Tensor, Tensor, Tensor], Tensor]
Denoiser = Callable[[Tensor, Tensor], Tensor]


def guided_loss(
    student: GuidedStudent,
    teacher_cond: Denoiser,
    teacher_uncond: Denoiser,
    x: Tensor,
    schedule,
    w_min: float,
    w_max: float,
    weighting: str = "snr_trunc",
    generator: torch.Generator | None = None,
    guidance_weight: Tensor | None = None,
    t: Tensor | None = None,
    noise: Tensor | None = None,
) -> Tensor:
    """E_{t, eps, w ~ U[w_min, w_max]} w(log_snr) ||x_hat_student(z_t, w) - x_w||^2 (Meng et al. stage 1).

    The target is x_w = (1 + w) x_hat(z_t, c) - w x_hat(z_t), the teacher's guided prediction.
    x_hat = alpha z - sigma v is affine in v, so the guided x target equals the guided v target
    (1 + w) v_hat(z_t, c) - w v_hat(z_t) and the weighted x-MSE equals the weighted v-MSE (diffusion.v_loss).
    `guidance_weight` [B] replaces the uniform draw of w (e.g. to train on a fixed grid of w); t [B] and
    noise = eps [B, ...] replace theirs (the training loop draws them per example).
    """
    batch, dtype = x.shape[0], x.dtype
    if t is None:
        t = torch.rand(batch, generator=generator, device=x.device, dtype=dtype)
    eps = torch.randn(x.shape, generator=generator, device=x.device, dtype=dtype) if noise is None else noise
    if guidance_weight is None:
        u = torch.rand(batch, generator=generator, device=x.device, dtype=dtype)
        guidance_weight = w_min + (w_max - w_min) * u
    alpha, sigma = schedule.alpha_sigma(t)
    z_t = expand_like(alpha, x) * x + expand_like(sigma, x) * eps
    with torch.no_grad():
        target = guided_v(teacher_cond(z_t, t).to(dtype), teacher_uncond(z_t, t).to(dtype), guidance_weight)
    v_student = student(z_t, t, guidance_weight)
    per_sample = reduce((target - v_student.to(dtype)) ** 2, "b ... -> b", "mean")
    return (v_loss_weight(schedule.log_snr(t), weighting) * per_sample).mean()


@torch.no_grad()
def guidance_fidelity(
    student: GuidedStudent,
    teacher_cond: Denoiser,
    teacher_uncond: Denoiser,
    z_t: Tensor,
    t: Tensor,
    guidance_weight: float,
) -> tuple[float, float, float]:
    """(relative error, guidance captured, effective w) of a w-conditioned student at one w > 0, in v.

    relative error = ||v_s(z_t, w) - v_w|| / ||v_w|| with v_w = (1 + w) v(z_t, c) - w v(z_t), the guided
    teacher; guidance captured = <v_s(w) - v_s(0), v_w - v(z_t, c)> / ||v_w - v(z_t, c)||^2, the share of
    the guidance direction the student's w input reproduces: 1 for a faithful student, 0 for one that
    ignores w. effective w = <v_s(w) - v(z_t, c), d> / ||d||^2 with d = v(z_t, c) - v(z_t): the guidance
    weight the student applies along the teacher's direction, w for a faithful student; a student that
    learnt only the mean of its targets applies about the same effective w whatever w it is given
    (guidance captured ~0, yet not the conditional teacher).
    """
    if guidance_weight <= 0:
        raise ValueError(
            f"guidance_fidelity needs w > 0 (w = 0 has no guidance direction), got {guidance_weight}"
        )
    v_cond, v_uncond = teacher_cond(z_t, t).double(), teacher_uncond(z_t, t).double()
    v_w = guided_v(v_cond, v_uncond, guidance_weight)
    w = torch.full_like(t, guidance_weight)
    v_student = student(z_t, t, w).double()
    v_student_0 = student(z_t, t, torch.zeros_like(t)).double()
    error = (v_student - v_w).norm() / v_w.norm()
    direction = v_w - v_cond
    captured = ((v_student - v_student_0) * direction).sum() / direction.pow(2).sum()
    unit = v_cond - v_uncond
    effective_w = ((v_student - v_cond) * unit).sum() / unit.pow(2).sum()
    return float(error), float(captured), float(effective_w)
