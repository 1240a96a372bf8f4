"""Move a trained cascade to a wider text encoder whose token features begin with its old encoder's.

"minilm" -> "minilm+input" (text.encoder): every U-Net reads text through two matrices, the pooled-text
projection and the cross-attention context projection; padding both with zero input columns keeps each
U-Net's output exactly as it was (the appended features are read with weight 0) until it is fine-tuned.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
from torch import Tensor

from imagen_video.cascade.cascade import Cascade
from imagen_video.cascade.config import CascadeConfig, TextEncoderConfig, text_encoder_dim
from imagen_video.errors import UserError
from imagen_video.models import VideoUNet
from imagen_video.text import MINILM, MINILM_INPUT

TEXT_INPUT_WEIGHTS = ("text_pool.weight", "text_proj.0.weight")
PREFIX_OF = {MINILM_INPUT: MINILM}  # wider encoder -> the encoder its first features are


def widen_text_inputs(state: dict[str, Tensor], text_dim: int) -> dict[str, Tensor]:
    """A U-Net state dict with its text-input matrices [out, D] zero-padded to [out, text_dim] columns."""
    widened = dict(state)
    for key in TEXT_INPUT_WEIGHTS:
        weight = state[key]
        if weight.shape[1] > text_dim:
            raise UserError(f"{key} reads {weight.shape[1]} text features, more than the new {text_dim}")
        widened[key] = torch.cat([weight, weight.new_zeros(weight.shape[0], text_dim - weight.shape[1])], 1)
    return widened


def retext(cascade: Cascade, encoder: str) -> Cascade:
    """`cascade` on text encoder `encoder`, every U-Net's text inputs widened with zero columns: the same
    videos from the same seed."""
    old = cascade.config.text_encoder
    if PREFIX_OF.get(encoder) != old.name:
        pairs = ", ".join(f"{b!r} -> {a!r}" for a, b in PREFIX_OF.items())
        raise UserError(
            f"cannot move a cascade on text encoder {old.name!r} to {encoder!r}: only encoders whose "
            f"features begin with the old one's can be swapped in ({pairs})"
        )
    text_encoder = dataclasses.replace(old, name=encoder)
    text_dim = text_encoder_dim(TextEncoderConfig(name=encoder))
    stages, unets = [], {}
    for stage in cascade.stages:
        wide = dataclasses.replace(stage, unet=stage.unet.replace(text_dim=text_dim))
        with torch.device("meta"):
            unet = VideoUNet(wide.unet)
        state = widen_text_inputs(cascade.unet(stage.name).state_dict(), text_dim)
        unet.load_state_dict(state, strict=True, assign=True)
        stages.append(wide)
        unets[stage.name] = unet.eval().requires_grad_(False)
    return Cascade(CascadeConfig(text_encoder, tuple(stages)), unets=unets)


def retext_cascade(source: str | Path, encoder: str, out: str | Path) -> Path:
    """Write cascade `source` (folder or packaged name) moved to text encoder `encoder` (retext) to folder
    `out`. Returns `out`."""
    return retext(Cascade.load(source), encoder).save(out)
