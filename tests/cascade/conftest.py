from pathlib import Path

import pytest

from imagen_video.cascade import Cascade

REPO = Path(__file__).resolve().parents[2]
TINY_YAML = REPO / "configs" / "tiny.yaml"


@pytest.fixture(scope="session")
def tiny_cascade():
    """configs/tiny.yaml with random weights (fixed seed), loaded once."""
    return Cascade.load(TINY_YAML, random_init=True)
