"""configs/train/*.yaml parse; each tiny stage matches configs/tiny.yaml and its predecessor."""

from pathlib import Path

import pytest

from imagen_video.cascade import load_cascade_config
from imagen_video.train.config import build_stage, load_train_config

CONFIGS = Path(__file__).parents[2] / "configs"
TRAIN_CONFIGS = sorted((CONFIGS / "train").glob("*.yaml"))
MINILM_DIM = 384
RECIPE_CONFIGS = sorted(p for p in (CONFIGS / "train").rglob("*.yaml") if p.parent.name != "train")


@pytest.mark.parametrize("path", RECIPE_CONFIGS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_recipe_configs_parse(path):
    """The shipped cascade's recipe and the experiment configs in subfolders load and build their stage."""
    stage = build_stage(load_train_config(path), MINILM_DIM)
    assert stage.unet.text_dim == MINILM_DIM


def test_there_is_a_config_for_every_tiny_stage():
    names = {p.stem for p in TRAIN_CONFIGS}
    assert {f"tiny_{s.name}" for s in load_cascade_config(CONFIGS / "tiny.yaml").stages} <= names


@pytest.mark.parametrize("path", TRAIN_CONFIGS, ids=lambda p: p.stem)
def test_train_config_matches_the_tiny_cascade(path):
    config = load_train_config(path)
    stage = build_stage(config, MINILM_DIM)
    if not path.stem.startswith("tiny_"):
        return
    stages = load_cascade_config(CONFIGS / "tiny.yaml").stages
    index = [s.name for s in stages].index(stage.name)
    assert stage == stages[index]  # --export writes exactly the cascade's stage
    cond = config.condition.shape(stage)
    assert cond == (None if index == 0 else stages[index - 1].shape)
