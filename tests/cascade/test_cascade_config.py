from pathlib import Path

import pytest
import yaml

from imagen_video.cascade import (
    Cascade,
    cascade_config_from_dict,
    parse_guidance,
    parse_steps,
    registry,
    resolve_cascade,
)
from imagen_video.cascade.config import cascade_config_to_dict
from imagen_video.diffusion import ConstantGuidance, OscillatingGuidance
from imagen_video.errors import UserError
from imagen_video.models import presets

HERE = Path(__file__).resolve().parent
TINY_YAML = HERE.parents[1] / "configs" / "tiny.yaml"


def tiny_dict():
    return yaml.safe_load(TINY_YAML.read_text())


def test_tiny_yaml_resolves_presets_and_round_trips_through_dict():
    config = cascade_config_from_dict(tiny_dict(), "tiny")
    assert [s.unet for s in config.stages] == list(presets.tiny().values())
    assert cascade_config_from_dict(cascade_config_to_dict(config), "again") == config


def test_unet_preset_with_overrides():
    data = tiny_dict()
    data["stages"][0]["unet"] = {"preset": "tiny/base", "channels": 16}
    config = cascade_config_from_dict(data, "x")
    assert config.stages[0].unet == presets.tiny()["base"].replace(channels=16)
    data["stages"][0]["unet"] = "tiny/huge"
    with pytest.raises(UserError, match="unknown U-Net preset 'tiny/huge'; valid presets: paper/base"):
        cascade_config_from_dict(data, "x")


@pytest.mark.parametrize(
    ("stage", "changes", "message"),
    [
        (1, {"frames": 6}, "a TSR stage outputs k x 4 frames"),
        (1, {"fps": 3}, "needs 2x the fps = 6"),
        (2, {"frames": 16}, "an SSR stage keeps the 8 frames"),
        (2, {"height": 8, "width": 8}, "enlarges 8x8"),
        (3, {"kind": "base", "unet": "tiny/base"}, "only the first stage may be kind base"),
        (0, {"height": 10}, "not divisible by 4"),
        (1, {"unet": "tiny/base"}, "needs unet.lowres_channels = 3"),
        (0, {"kind": "xsr"}, "kind 'xsr' unknown"),
        (0, {"steps": 0}, "steps must be an integer >= 1"),
        (1, {"cond_aug_level": 2.0}, "cond_aug_level is a level t' in [0, 1]"),
        (0, {"guidance": "osc"}, "guidance 'osc' not understood"),
        (0, {"sampler": "euler"}, "sampler 'euler' unknown"),
        (0, {"name": "a/b"}, "stage name 'a/b'"),
        (1, {"name": "base"}, "stage names must be unique"),
    ],
)
def test_bad_stage_chains_are_named(stage, changes, message):
    data = tiny_dict()
    data["stages"][stage].update(changes)
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace("[", r"\[")):
        cascade_config_from_dict(data, "cfg.yaml")


def test_text_dim_and_top_level_keys():
    data = tiny_dict()
    data["stages"][4]["unet"] = {"preset": "tiny/tsr2", "text_dim": 512}
    with pytest.raises(UserError, match="stage 'tsr2' U-Net has text_dim 512 .* 384-wide"):
        cascade_config_from_dict(data, "x")
    with pytest.raises(UserError, match="unknown key\\(s\\) 'stage'"):
        cascade_config_from_dict({"stage": []}, "x")
    with pytest.raises(UserError, match="unknown key\\(s\\) 'max_len' for TextEncoderConfig"):
        cascade_config_from_dict({**tiny_dict(), "text_encoder": {"max_len": 3}}, "x")
    assert (
        cascade_config_from_dict({**tiny_dict(), "text_encoder": "minilm"}, "x").text_encoder.max_length == 64
    )
    # "minilm+input" gives 768-wide tokens: the tiny presets' 384 are rejected, 768 everywhere is accepted
    with pytest.raises(UserError, match="stage 'base' U-Net has text_dim 384 .* 768-wide"):
        cascade_config_from_dict({**tiny_dict(), "text_encoder": "minilm+input"}, "x")
    wide = tiny_dict()
    for stage in wide["stages"]:
        stage["unet"] = {"preset": stage["unet"], "text_dim": 768}
    assert (
        cascade_config_from_dict({**wide, "text_encoder": "minilm+input"}, "x").stages[0].unet.text_dim == 768
    )


def test_parse_guidance_specs():
    assert parse_guidance("6") == parse_guidance("constant:6") == parse_guidance(6) == ConstantGuidance(6.0)
    assert parse_guidance("oscillate") == OscillatingGuidance(15.0, 1.0)
    assert parse_guidance("oscillate:12,2") == OscillatingGuidance(12.0, 2.0)
    assert parse_guidance("none") is None and parse_guidance("0") is None
    for bad in ("oscillate:1", "constant:", "-1", "nan", "inf"):
        with pytest.raises(UserError, match="guidance"):
            parse_guidance(bad)


def test_parse_steps_specs():
    assert parse_steps(None) is None and parse_steps("64") == parse_steps(64) == 64
    assert parse_steps("base=256, ssr1=8") == {"base": 256, "ssr1": 8}
    for bad, message in [
        ("0", "must be >= 1, got 0"),
        ("x", "not understood"),
        ("base=0", "for stage 'base'"),
    ]:
        with pytest.raises(UserError, match=message):
            parse_steps(bad)


def test_load_paths_and_names(tmp_path, monkeypatch):
    with pytest.raises(UserError, match="not a cascade folder"):
        Cascade.load(tmp_path)
    with pytest.raises(UserError, match="base.safetensors: weight file for stage 'base' is missing"):
        Cascade.load(TINY_YAML)  # a YAML without weights next to it needs random_init=True
    monkeypatch.setitem(registry.PLANNED, "tiny-next", "a cascade planned but not packaged")
    with pytest.raises(UserError, match="has not shipped yet.*--cascade configs/tiny.yaml"):
        resolve_cascade("tiny-next")
    assert resolve_cascade(TINY_YAML) == TINY_YAML
    with pytest.raises(UserError, match="no stage 'ssr9'"):
        Cascade.load(TINY_YAML, random_init=True).unet("ssr9")
