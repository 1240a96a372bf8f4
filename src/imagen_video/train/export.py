"""Export a checkpoint's EMA weights into the cascade folder format (cascade.yaml + <stage>.safetensors)."""

from __future__ import annotations

from pathlib import Path

import torch
import yaml

from imagen_video.cascade import Stage, cascade_config_from_dict, save_stage_weights
from imagen_video.cascade.cascade import CONFIG_NAME
from imagen_video.cascade.weights import atomic_write
from imagen_video.config import dataclass_from_dict, dataclass_to_dict, read_yaml
from imagen_video.errors import UserError
from imagen_video.models import VideoUNet
from imagen_video.train import checkpoint


def ema_unet(state: dict) -> tuple[Stage, VideoUNet]:
    """The trained Stage and its U-Net with the EMA weights (buffers from the model) of a checkpoint dict."""
    stage = dataclass_from_dict(Stage, state["config"]["stage"], "checkpoint stage")
    with torch.device("meta"):
        unet = VideoUNet(stage.unet)
    weights = {k: state["ema"].get(k, v).to(v.dtype) for k, v in state["model"].items()}
    unet.load_state_dict(weights, strict=True, assign=True)
    return stage, unet.eval().requires_grad_(False)


def _stage_size(stage: dict) -> int:
    return stage["frames"] * stage["height"] * stage["width"]


def export_stage(checkpoint_path: str | Path, cascade_dir: str | Path, stage_name: str | None = None) -> Path:
    """Write the checkpoint's EMA U-Net as `<cascade_dir>/<stage>.safetensors` and put its stage entry into
    cascade.yaml (replacing a stage of that name, else inserted in output-size order; the folder is created
    if needed). The text encoder must match the folder's. An SSR stage trained on frame crops that replaces
    an SSR stage of the folder keeps the folder's frames and fps (its U-Net runs on any number of frames).
    Returns the cascade folder."""
    checkpoint_path, cascade_dir = Path(checkpoint_path), Path(cascade_dir)
    if not checkpoint_path.is_file():
        raise UserError(f"no checkpoint at {checkpoint_path}; train first (imagen-video train CONFIG.yaml)")
    state = checkpoint.load(checkpoint_path)
    stage, unet = ema_unet(state)
    if stage_name:
        stage = dataclass_from_dict(Stage, {**dataclass_to_dict(stage), "name": stage_name}, "export")
    text_encoder = state["config"]["text_encoder"]
    config_path = cascade_dir / CONFIG_NAME
    data = read_yaml(config_path) if config_path.is_file() else {"text_encoder": text_encoder, "stages": []}
    existing = data.get("text_encoder")
    existing = {"name": existing} if isinstance(existing, str) else existing
    if existing.get("name") != text_encoder["name"]:
        raise UserError(
            f"{config_path}: the cascade uses text encoder {existing.get('name')!r} but stage {stage.name!r} "
            f"was trained with {text_encoder['name']!r}; export into another folder"
        )
    entry = dataclass_to_dict(stage)
    replaced = next((s for s in data["stages"] if s.get("name") == stage.name), None)
    if replaced is not None and stage.kind == replaced.get("kind") == "ssr":
        entry.update(frames=replaced["frames"], fps=replaced["fps"])
    stages = [s for s in data["stages"] if s.get("name") != stage.name] + [entry]
    data["stages"] = sorted(stages, key=_stage_size)
    if data["stages"][0]["kind"] == "base":
        cascade_config_from_dict(data, str(config_path))  # a complete chain: check it before writing
    save_stage_weights(cascade_dir / f"{stage.name}.safetensors", unet, stage.name)
    text = yaml.safe_dump(data, sort_keys=False)
    atomic_write(config_path, lambda tmp: tmp.write_text(text))
    return cascade_dir
