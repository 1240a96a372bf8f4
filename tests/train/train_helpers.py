"""Helpers for the training tests (imported by name: the tests folder is not a package)."""

import copy
import socket
import subprocess
import sys
from pathlib import Path

import torch

from imagen_video.train import checkpoint

TINY_UNET = {
    "preset": "tiny/base",
    "channels": 8,
    "channel_mult": [1, 2],
    "num_res_blocks": 1,
    "spatial_attention": [False, True],
    "cross_attention": [False, True],
    "temporal_levels": [True, True],
    "norm_groups": 4,
    "head_dim": 8,
}

BASE = {
    "seed": 3,
    "stage": {"name": "base", "kind": "base", "frames": 4, "height": 8, "width": 8, "fps": 4,
              "unet": TINY_UNET, "steps": 2},
    "data": {"source": "shapes", "length": 64},
    "text": {"encoder": "hash:8", "max_length": 8, "dropout": 0.25},
    "optim": {"lr": 2e-3, "warmup_steps": 3},
    "loop": {"steps": 4, "batch_size": 2, "checkpoint_every": 2, "sample_every": 0, "log_every": 1,
             "tensorboard": False, "progress": False, "threads": 1},
    "sample": {"count": 2},
}  # fmt: skip


def merge(base: dict, changes: dict) -> dict:
    """Nested dict update (a copy)."""
    out = copy.deepcopy(base)
    for key, value in changes.items():
        out[key] = (
            merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
        )
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_python(code: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run `code` in a fresh Python process; returns the completed process (stdout/stderr captured)."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout)


def tensors(state, prefix: str = ""):
    """(name, tensor) for every tensor nested in a checkpoint dict."""
    if isinstance(state, torch.Tensor):
        yield prefix, state
    elif isinstance(state, dict):
        for key, value in state.items():
            yield from tensors(value, f"{prefix}/{key}")
    elif isinstance(state, (list, tuple)):
        for i, value in enumerate(state):
            yield from tensors(value, f"{prefix}/{i}")


def load_latest(folder: Path) -> dict:
    return checkpoint.load(Path(folder) / checkpoint.LATEST)
