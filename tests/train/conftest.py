"""Shared tiny run configs for the training tests: a real VideoUNet at toy size, hash text, ShapesDataset."""

from pathlib import Path

import pytest
import torch
import yaml
from train_helpers import BASE, merge


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
