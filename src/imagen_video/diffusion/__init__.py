"""Diffusion math (SPEC §5-7): schedules, v-parameterization, losses, guidance, samplers. Pure functions."""

from imagen_video.diffusion.guidance import (
    ConstantGuidance,
    OscillatingGuidance,
    dynamic_threshold,
    guided_v,
    static_clip,
)
from imagen_video.diffusion.losses import WEIGHTINGS, v_loss, v_loss_weight, x_loss_weight
from imagen_video.diffusion.parameterization import (
    EpsModel,
    XModel,
    eps_from_z_v,
    eps_from_z_x,
    expand_like,
    residual_z,
    v_from_residual_v,
    v_from_x_eps,
    v_from_z_eps,
    v_from_z_x,
    x_from_z_eps,
    x_from_z_v,
)
from imagen_video.diffusion.samplers import SAMPLERS, sample
from imagen_video.diffusion.schedule import CosineSchedule, alpha_sigma_from_log_snr

__all__ = [
    "SAMPLERS",
    "WEIGHTINGS",
    "ConstantGuidance",
    "CosineSchedule",
    "EpsModel",
    "OscillatingGuidance",
    "XModel",
    "alpha_sigma_from_log_snr",
    "dynamic_threshold",
    "eps_from_z_v",
    "eps_from_z_x",
    "expand_like",
    "guided_v",
    "residual_z",
    "sample",
    "static_clip",
    "v_from_residual_v",
    "v_from_x_eps",
    "v_from_z_eps",
    "v_from_z_x",
    "v_loss",
    "v_loss_weight",
    "x_from_z_eps",
    "x_from_z_v",
    "x_loss_weight",
]
