import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from imagen_video.cascade import Cascade  # noqa: E402  (after the offline switches above)


@pytest.fixture(autouse=True)
def _seed_and_one_thread():
    """A fixed seed, and one intra-op thread: the tests run many tiny tensor ops, where extra OpenMP threads
    only add synchronisation (10-50x slower on a busy 2-core machine); restored afterwards."""
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


MICRO_YAML = Path(__file__).resolve().parent / "cascade" / "micro.yaml"


def perturb(cascade: Cascade, seed: int = 1, scale: float = 0.05) -> None:
    """Add noise to every U-Net weight: a fresh VideoUNet has a zero output conv (v = 0 everywhere), so
    without this the videos would not depend on the weights at all."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for stage in cascade.stages:
            for p in cascade.unet(stage.name).parameters():
                p.add_(scale * torch.randn(p.shape, generator=generator))


@pytest.fixture
def micro_cascade():
    """tests/cascade/micro.yaml (3 stages, ~80K-parameter U-Nets) with perturbed random weights."""
    cascade = Cascade.load(MICRO_YAML, random_init=True)
    perturb(cascade)
    return cascade
