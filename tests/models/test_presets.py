"""Presets: the paper's seven stages as in SPEC §1, parameter counts on the meta device, YAML round trips."""

from __future__ import annotations

import math
import re

import pytest
import torch
import yaml

from imagen_video.cli import main as cli_main
from imagen_video.config import dataclass_from_dict, dataclass_to_dict
from imagen_video.errors import UserError
from imagen_video.models import UNetConfig, VideoUNet, presets
from imagen_video.models.blocks import log_snr_to_embedding_input, sinusoidal_embedding

from .helpers import inputs

# SPEC §1: stage -> (temporal layer, has spatial attention)
SPEC_TABLE = {
    "base": ("attention", True),
    "tsr1": ("conv", False),
    "ssr1": ("conv", True),
    "ssr2": ("conv", True),
    "tsr2": ("conv", False),
    "tsr3": ("conv", False),
    "ssr3": ("conv", False),
}


@pytest.mark.parametrize("family", ["paper", "tiny"])
def test_presets_follow_the_spec_table(family):
    configs = getattr(presets, family)()
    assert tuple(configs) == presets.STAGES
    for stage, cfg in configs.items():
        temporal, attention = SPEC_TABLE[stage]
        assert cfg.temporal == temporal and any(cfg.spatial_attention) == attention, stage
        assert any(cfg.cross_attention), f"{stage}: text enters every model"
        assert cfg.lowres_channels == (0 if stage == "base" else 3)
        assert cfg.text_dim == (4096 if family == "paper" else 384)
        assert (cfg.in_channels, cfg.out_channels, cfg.guidance_embedding) == (3, 3, False)


def test_paper_parameter_counts_near_the_paper():
    """Must show 7 (counts): every stage within 10% of its published size, the total within 10% of 11.6B."""
    counts = {stage: presets.count_parameters(cfg) for stage, cfg in presets.paper().items()}
    for stage, n in counts.items():
        assert abs(n / presets.PAPER_PARAMS[stage] - 1) < 0.10, (stage, n)
    assert abs(sum(counts.values()) / 11.6e9 - 1) < 0.10


def test_info_cli_prints_per_stage_counts_and_total(capsys):
    """Must show 7 (CLI): `imagen-video info --preset paper` lists the seven stages and the total vs 11.6B."""
    assert cli_main(["info", "--preset", "paper"]) == 0
    out = capsys.readouterr().out
    for stage in presets.STAGES:
        assert re.search(rf"^{stage} .* [\d.]+[BM] ", out, re.M), stage
    total = re.search(r"^total\s+([\d.]+)B\s+11\.60B\s+([+-][\d.]+)%", out, re.M)
    assert total and abs(float(total.group(2))) < 10


def test_meta_count_equals_real_model_count():
    cfg = presets.tiny()["ssr1"]
    assert presets.count_parameters(cfg) == sum(p.numel() for p in VideoUNet(cfg).parameters())


def test_describe_rejects_unknown_family():
    with pytest.raises(UserError, match="unknown U-Net preset family 'huge'"):
        presets.describe("huge")


@pytest.mark.parametrize("stage", presets.STAGES)
def test_tiny_presets_run_and_start_at_zero(stage):
    """Every tiny stage runs; with the zero-initialised output conv the initial prediction is exactly 0."""
    cfg = presets.tiny()[stage]
    model = VideoUNet(cfg)
    with torch.no_grad():
        out = model(**inputs(cfg, b=1, t=2, h=16, w=16))
    assert out.shape == (1, 3, 2, 16, 16) and torch.equal(out, torch.zeros_like(out))


@pytest.mark.parametrize(
    "cfg", [presets.paper()["ssr2"], presets.tiny()["base"].replace(num_res_blocks=(1, 2, 3))]
)
def test_config_yaml_round_trip(cfg):
    data = yaml.safe_load(yaml.safe_dump(dataclass_to_dict(cfg)))
    assert dataclass_from_dict(UNetConfig, data, "unet.yaml") == cfg


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(spatial_attention=(True,)), "spatial_attention has 1 entries but channel_mult has 3"),
        (dict(temporal="lstm"), "temporal='lstm'"),
        (dict(num_res_blocks=(1, 2)), "num_res_blocks has 2 entries"),
        (dict(channels=20), "not divisible by norm_groups"),
        (dict(temporal_kernel=2), "odd kernel"),
    ],
)
def test_bad_configs_name_the_field(changes, message):
    with pytest.raises(UserError, match=re.escape(message)):
        presets.tiny()["base"].replace(**changes)


def test_noise_level_embedding_inputs():
    """log_snr -> 1000 * atan(exp(-log_snr / 2)) / (pi / 2): 500 at log_snr 0, ~0 at +20, ~1000 at -20."""
    values = log_snr_to_embedding_input(torch.tensor([0.0, 20.0, -20.0, 2 * math.log(3)]))
    expected = torch.tensor([500.0, 1000 * math.atan(math.exp(-10)) / (math.pi / 2), 1000 - 0.02890, 0.0])
    expected[3] = 1000 * math.atan(1 / 3) / (math.pi / 2)
    assert torch.allclose(values, expected, atol=1e-3)
    emb = sinusoidal_embedding(torch.tensor([0.0, 1.0]), 8)
    assert torch.equal(emb[0], torch.tensor([1.0, 1, 1, 1, 0, 0, 0, 0]))
    freqs = torch.tensor([1.0, 10**-1, 10**-2, 10**-3])
    assert torch.allclose(emb[1], torch.cat([torch.cos(freqs), torch.sin(freqs)]))
