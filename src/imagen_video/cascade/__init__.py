"""The cascade: stages as data, conditioning prep, stage-by-stage generation, folder save / load."""

from imagen_video.cascade.cascade import Cascade, GenerationResult, StageOutput
from imagen_video.cascade.conditioning import (
    augment,
    cond_aug_log_snr,
    condition_to_shape,
    repeat_frames,
    upsample_bilinear,
)
from imagen_video.cascade.config import (
    CascadeConfig,
    TextEncoderConfig,
    cascade_config_from_dict,
    load_cascade_config,
    replace_stage,
)
from imagen_video.cascade.registry import packaged_cascades, resolve_cascade
from imagen_video.cascade.retext import retext, retext_cascade
from imagen_video.cascade.stage import (
    Stage,
    StageDenoiser,
    parse_guidance,
    parse_stage_guidance,
    parse_steps,
)
from imagen_video.cascade.weights import load_stage_weights, save_stage_weights

__all__ = [
    "Cascade",
    "CascadeConfig",
    "GenerationResult",
    "Stage",
    "StageDenoiser",
    "StageOutput",
    "TextEncoderConfig",
    "augment",
    "cascade_config_from_dict",
    "cond_aug_log_snr",
    "condition_to_shape",
    "load_cascade_config",
    "load_stage_weights",
    "packaged_cascades",
    "parse_guidance",
    "parse_stage_guidance",
    "parse_steps",
    "repeat_frames",
    "replace_stage",
    "resolve_cascade",
    "retext",
    "retext_cascade",
    "save_stage_weights",
    "upsample_bilinear",
]
