from pathlib import Path

import pytest
import torch

from imagen_video.cascade import Cascade

REPO = Path(__file__).resolve().parents[2]
TINY_YAML = REPO / "configs" / "tiny.yaml"
MICRO_YAML = Path(__file__).resolve().parent / "micro.yaml"


def perturb(cascade: Cascade, seed: int = 1, scale: float = 0.05) -> None:
    """Add noise to every U-Net weight: a fresh VideoUNet has a zero output conv (v = 0 everywhere), so
    without this the videos would not depend on the weights at all."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for stage in cascade.stages:
            for p in cascade.unet(stage.name).parameters():
                p.add_(scale * torch.randn(p.shape, generator=generator))


@pytest.fixture(scope="session")
def tiny_cascade():
    """configs/tiny.yaml with random weights (fixed seed), loaded once."""
    return Cascade.load(TINY_YAML, random_init=True)


@pytest.fixture
def micro_cascade():
    """tests/cascade/micro.yaml (3 stages, ~80K-parameter U-Nets) with perturbed random weights."""
    cascade = Cascade.load(MICRO_YAML, random_init=True)
    perturb(cascade)
    return cascade
