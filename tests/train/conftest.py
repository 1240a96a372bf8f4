"""Shared tiny run configs for the training tests: a real VideoUNet at toy size, hash text, ShapesDataset."""

import copy
from pathlib import Path

import pytest
import torch
import yaml

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


@pytest.fixture
def make_config(tmp_path):
    """make_config(**section_changes) -> path of a YAML run config (tiny base stage unless changed)."""

    def make(name: str = "run.yaml", **changes) -> Path:
        path = tmp_path / name
        path.write_text(yaml.safe_dump(merge(BASE, changes)))
        return path

    return make


@pytest.fixture(autouse=True)
def _restore_threads():
    """Runs set loop.threads = 1 (fast on a busy CPU); give later tests their thread count back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)
