"""The cascade config: a text encoder and an ordered list of stages, read from YAML and checked as a chain.

YAML layout (top-level keys `text_encoder` and `stages`, unknown keys rejected):

    text_encoder: {name: minilm, max_length: 64}     # or a local T5 / UMT5 folder; or just: minilm
    stages:
      - {name: base, kind: base, frames: 4, height: 8, width: 8, fps: 3, unet: tiny/base, steps: 16}
      - {name: tsr1, kind: tsr, frames: 8, ..., unet: {preset: tiny/tsr1, channels: 32}}

`unet` is a preset reference "<family>/<key>" (family: `paper` or `tiny`, keys from models.presets), or a
mapping of UNetConfig fields, optionally starting from `preset:` with the other keys as overrides.
A saved cascade folder always stores the full, resolved UNetConfig so it does not depend on presets.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from imagen_video.cascade.stage import Stage
from imagen_video.config import dataclass_from_dict, dataclass_to_dict, read_yaml
from imagen_video.errors import UserError
from imagen_video.models import UNetConfig, presets
from imagen_video.text import DEFAULT_MAX_LENGTH, MINILM, MINILM_INPUT

PRESET_FAMILIES = ("paper", "tiny")  # functions of models.presets returning {key: UNetConfig}
MINILM_DIMS = {MINILM: 384, MINILM_INPUT: 768}


@dataclass(frozen=True)
class TextEncoderConfig:
    """Which frozen text encoder: "minilm", "minilm+input" (text.encoder) or a local T5-family folder (~
    expanded, relative to the CWD)."""

    name: str = MINILM
    max_length: int = DEFAULT_MAX_LENGTH
    dtype: str = "float32"


@dataclass(frozen=True)
class CascadeConfig:
    """A text encoder and the ordered stages (base first, then TSR / SSR stages)."""

    text_encoder: TextEncoderConfig
    stages: tuple[Stage, ...]


def preset_unet(reference: str, where: str) -> UNetConfig:
    """ "tiny/base" -> models.presets.tiny()["base"]; a UserError lists the valid references."""
    family, _, key = str(reference).partition("/")
    table = getattr(presets, family)() if family in PRESET_FAMILIES else {}
    if key not in table:
        valid = [f"{f}/{k}" for f in PRESET_FAMILIES for k in getattr(presets, f)()]
        raise UserError(f"{where}: unknown U-Net preset {reference!r}; valid presets: {', '.join(valid)}")
    return table[key]


def resolve_unet(spec: Any, where: str) -> UNetConfig:
    """A stage's `unet` entry (preset reference, or mapping with optional `preset` plus overrides)."""
    if isinstance(spec, str):
        return preset_unet(spec, where)
    if not isinstance(spec, dict):
        raise UserError(f"{where}: expected a preset name like tiny/base or a mapping of U-Net settings")
    fields = dict(spec)
    base = preset_unet(fields.pop("preset"), where) if "preset" in fields else None
    merged = {**dataclass_to_dict(base), **fields} if base is not None else fields
    return dataclass_from_dict(UNetConfig, merged, where)


def _stage_from_dict(data: Any, where: str) -> Stage:
    if not isinstance(data, dict):
        raise UserError(f"{where}: each stage must be a mapping of stage settings")
    fields = dict(data)
    if "unet" not in fields:
        raise UserError(f"{where}: missing key 'unet' (a preset like tiny/base, or U-Net settings)")
    fields["unet"] = resolve_unet(fields["unet"], f"{where}.unet")
    return dataclass_from_dict(Stage, fields, where)


def check_chain(stages: tuple[Stage, ...], where: str) -> None:
    """Each stage's condition must be the previous stage's output: a TSR multiplies frames and fps by an
    integer k >= 2 at the same size; an SSR keeps frames and fps and enlarges height and width."""
    if not stages:
        raise UserError(f"{where}: no stages; give at least a base stage")
    names = [s.name for s in stages]
    if len(set(names)) != len(names):
        raise UserError(f"{where}: stage names must be unique, got {names}")
    if stages[0].kind != "base":
        raise UserError(
            f"{where}: the first stage must be kind base, got {stages[0].kind} ({stages[0].name!r})"
        )
    for prev, stage in zip(stages, stages[1:], strict=False):
        got = f"{stage.frames}x{stage.height}x{stage.width} at {stage.fps:g} fps"
        have = f"{prev.frames}x{prev.height}x{prev.width} at {prev.fps:g} fps"
        head = f"{where}: stage {stage.name!r} ({stage.kind}) after {prev.name!r} ({have})"
        if stage.kind == "base":
            raise UserError(f"{head}: only the first stage may be kind base")
        if stage.kind == "tsr":
            k = stage.frames // prev.frames
            if (
                stage.frames % prev.frames
                or k < 2
                or (stage.height, stage.width) != (prev.height, prev.width)
            ):
                raise UserError(
                    f"{head}: a TSR stage outputs k x {prev.frames} frames (k >= 2) at the same "
                    f"{prev.height}x{prev.width} size; got {got}"
                )
            if not math.isclose(stage.fps, k * prev.fps, rel_tol=1e-6):
                raise UserError(f"{head}: {k}x the frames needs {k}x the fps = {k * prev.fps:g}; got {got}")
        if stage.kind == "ssr":
            larger = stage.height >= prev.height and stage.width >= prev.width
            if (
                stage.frames != prev.frames
                or not larger
                or (stage.height, stage.width) == (prev.height, prev.width)
            ):
                raise UserError(
                    f"{head}: an SSR stage keeps the {prev.frames} frames and enlarges "
                    f"{prev.height}x{prev.width}; got {got}"
                )
            if not math.isclose(stage.fps, prev.fps, rel_tol=1e-6):
                raise UserError(f"{head}: an SSR stage keeps the fps {prev.fps:g}; got {got}")


def text_encoder_dim(config: TextEncoderConfig) -> int | None:
    """The encoder's token width without loading it (MiniLM: 384, with its input embeddings 768; T5: d_model
    of config.json), if known."""
    if config.name in MINILM_DIMS:
        return MINILM_DIMS[config.name]
    config_file = Path(config.name).expanduser() / "config.json"
    try:
        data = yaml.safe_load(config_file.read_text())
        return int(data.get("d_model") or data["hidden_size"])
    except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError, AttributeError):
        return None


def cascade_config_from_dict(data: Any, where: str) -> CascadeConfig:
    """Mapping (from YAML) -> CascadeConfig: unknown keys rejected, U-Nets resolved, the chain checked."""
    if not isinstance(data, dict):
        raise UserError(f"{where}: expected a mapping with keys text_encoder and stages")
    unknown = sorted(set(data) - {"text_encoder", "stages"})
    if unknown:
        raise UserError(
            f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; valid keys: stages, text_encoder"
        )
    text = data.get("text_encoder", {})
    text = {"name": text} if isinstance(text, str) else text
    text_encoder = dataclass_from_dict(TextEncoderConfig, text, f"{where}: text_encoder")
    stages_data = data.get("stages")
    if not isinstance(stages_data, list):
        raise UserError(f"{where}: 'stages' must be a list of stage mappings")
    stages = tuple(_stage_from_dict(s, f"{where}: stages[{i}]") for i, s in enumerate(stages_data))
    check_chain(stages, where)
    dim = text_encoder_dim(text_encoder)
    for stage in stages:
        if dim is not None and stage.unet.text_dim != dim:
            raise UserError(
                f"{where}: stage {stage.name!r} U-Net has text_dim {stage.unet.text_dim} but the text "
                f"encoder {text_encoder.name!r} gives {dim}-wide token embeddings; set unet.text_dim: {dim}"
            )
    return CascadeConfig(text_encoder, stages)


def load_cascade_config(path: str | Path) -> CascadeConfig:
    """Read and check a cascade YAML file."""
    return cascade_config_from_dict(read_yaml(path), str(path))


def cascade_config_to_dict(config: CascadeConfig) -> dict:
    """CascadeConfig -> plain mapping with every U-Net written out in full (for cascade.yaml)."""
    return {
        "text_encoder": dataclass_to_dict(config.text_encoder),
        "stages": [dataclass_to_dict(stage) for stage in config.stages],
    }


def replace_stage(config: CascadeConfig, name: str, **changes: Any) -> CascadeConfig:
    """A copy of `config` with stage `name` changed (e.g. sampler and steps of a distilled student)."""
    stages = tuple(dataclasses.replace(s, **changes) if s.name == name else s for s in config.stages)
    return CascadeConfig(config.text_encoder, stages)
