"""Stage weights on disk: one safetensors file per stage, checked against the U-Net config before loading."""

from __future__ import annotations

import itertools
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from imagen_video.atomic import atomic_write
from imagen_video.errors import UserError
from imagen_video.models import UNetConfig, VideoUNet

FORMAT = "imagen-video-stage/1"


def meta_unet(config: UNetConfig) -> VideoUNet:
    """The U-Net built on the meta device: shapes and parameter counts without memory or init time."""
    with torch.device("meta"):
        return VideoUNet(config)


def save_stage_weights(path: str | Path, unet: VideoUNet, stage_name: str) -> None:
    """Write the U-Net's state dict (contiguous CPU tensors) to `path` atomically."""
    state = {k: v.detach().cpu().contiguous() for k, v in unet.state_dict().items()}
    atomic_write(
        Path(path), lambda tmp: save_file(state, tmp, metadata={"format": FORMAT, "stage": stage_name})
    )


def check_stage_weights(path: Path, config: UNetConfig, stage_name: str) -> None:
    """Read only the file header and check every tensor name and shape against the U-Net config."""
    if not path.is_file():
        raise UserError(
            f"{path}: weight file for stage {stage_name!r} is missing; copy it into the cascade folder, "
            "or load the config with random weights (random_init=True / --cascade CONFIG.yaml)"
        )
    try:
        with safe_open(path, framework="pt") as f:
            found = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    except (SafetensorError, OSError) as err:
        raise UserError(f"{path}: not a readable safetensors file for stage {stage_name!r} ({err})") from None
    check_tensor_shapes(found, config, path, stage_name)


def check_tensor_shapes(
    found: dict[str, tuple[int, ...]],
    config: UNetConfig,
    path: Path,
    stage_name: str,
    allow_missing: bool = False,
) -> None:
    """Every stored tensor (name -> shape) must be a U-Net tensor of that shape; every U-Net tensor must be
    stored unless `allow_missing` (fine-tuning: layers the file lacks keep their initialisation)."""
    expected = {k: tuple(v.shape) for k, v in meta_unet(config).state_dict().items()}
    extra = sorted(set(found) - set(expected))
    if extra:
        raise UserError(
            f"{path}: unexpected tensor {extra[0]!r} for stage {stage_name!r} ({len(extra)} in all); "
            "the file was saved for a different U-Net config"
        )
    for key, shape in expected.items():
        if key not in found and not allow_missing:
            raise UserError(
                f"{path}: tensor {key!r} of stage {stage_name!r} is missing; the file does not match "
                "the stage's U-Net config"
            )
        if key in found and found[key] != shape:
            raise UserError(
                f"{path}: tensor {key!r} has shape {list(found[key])}, stage {stage_name!r} expects "
                f"{list(shape)}; the file was saved for a different U-Net config"
            )


def load_stage_weights(
    path: Path, config: UNetConfig, stage_name: str, device: torch.device | str
) -> VideoUNet:
    """Build the U-Net without initialising it and assign the checked weights from `path` (eval mode)."""
    check_stage_weights(path, config, stage_name)
    state = load_file(path, device=str(device))
    unet = meta_unet(config)
    unet.load_state_dict(state, strict=True, assign=True)
    if any(t.is_meta for t in itertools.chain(unet.parameters(), unet.buffers())):
        unet = VideoUNet(config).to(device)  # non-persistent buffers need a real build
        unet.load_state_dict(state, strict=True)
    return unet.eval().requires_grad_(False)


def random_unet(config: UNetConfig, seed: int, device: torch.device | str) -> VideoUNet:
    """The U-Net with its own random initialisation under a fixed seed (global RNG state untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        unet = VideoUNet(config)
    return unet.to(device).eval().requires_grad_(False)
