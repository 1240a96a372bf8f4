from pathlib import Path

import av
import numpy as np
import pytest
import torch
import yaml

from imagen_video.cascade import Cascade, StageDenoiser, parse_guidance, parse_stage_guidance
from imagen_video.diffusion import ConstantGuidance, OscillatingGuidance
from imagen_video.errors import UserError
from imagen_video.io import read_video, to_uint8, write_video
from imagen_video.models import presets

HERE = Path(__file__).resolve().parent
TINY_YAML, MICRO_YAML = HERE.parents[1] / "configs" / "tiny.yaml", HERE / "micro.yaml"


def test_tiny_paper_pattern_generates_declared_shape_and_files(tiny_cascade, tmp_path):
    kinds = [s.kind for s in tiny_cascade.stages]
    assert kinds == ["base", "tsr", "ssr", "ssr", "tsr", "tsr", "ssr"]
    final = tiny_cascade.stages[-1]
    result = tiny_cascade.generate(
        ["a red circle moving left"], seed=3, steps=2, progress=False, keep_stages=True
    )
    assert result.videos.dtype == np.uint8
    assert result.videos.shape == (1, final.frames, final.height, final.width, 3)
    assert result.fps == final.fps == 24
    assert [o.videos.shape[1:4] for o in result.stages] == [s.shape for s in tiny_cascade.stages]
    assert [o.fps for o in result.stages] == [s.fps for s in tiny_cascade.stages]
    assert set(result.seconds) == {"text", "total", *(s.name for s in tiny_cascade.stages)}

    mp4 = write_video(tmp_path / "out.mp4", result.videos[0], result.fps)
    with av.open(str(mp4)) as container:
        stream = container.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
        assert float(stream.average_rate) == 24.0
    assert len(frames) == final.frames and frames[0].shape == (final.height, final.width, 3)
    gif_video, gif_fps = read_video(write_video(tmp_path / "out.gif", result.videos[0], result.fps))
    assert gif_video.shape == result.videos[0].shape
    assert gif_fps == pytest.approx(25.0)  # GIF keeps 10 ms units: 1/24 s is stored as 40 ms
    # GIF is palette-quantized, not lossless; it still shows the same pictures
    assert np.abs(gif_video.astype(int) - result.videos[0].astype(int)).mean() < 20


def test_save_load_round_trip_is_bit_identical(micro_cascade, tmp_path):
    first = micro_cascade.generate(["a blue square"], seed=5, progress=False, num_videos=2)
    folder = micro_cascade.save(tmp_path / "saved")
    assert sorted(p.name for p in folder.iterdir()) == [
        "base.safetensors",
        "cascade.yaml",
        "ssr.safetensors",
        "tsr.safetensors",
    ]
    loaded = Cascade.load(folder)
    assert loaded.config == micro_cascade.config
    again = loaded.generate(["a blue square"], seed=5, progress=False, num_videos=2)
    assert np.array_equal(first.videos, again.videos)
    # non-vacuous: the videos depend on the seed, on the weights, and the two samples per prompt differ
    assert not np.array_equal(first.videos[0], first.videos[1])
    assert not np.array_equal(
        first.videos, loaded.generate(["a blue square"], seed=6, progress=False, num_videos=2).videos
    )
    plain = Cascade.load(MICRO_YAML, random_init=True).generate(
        ["a blue square"], seed=5, progress=False, num_videos=2
    )
    assert not np.array_equal(first.videos, plain.videos)


def test_guided_is_one_batched_forward_and_matches_formula(micro_cascade):
    unet = micro_cascade.unet("tsr")
    calls = []
    unet.register_forward_hook(lambda module, args, out: calls.append(args[0].shape[0]))
    b, emb = 2, torch.randn(2, 3, 384)
    mask = torch.tensor([[True, True, False], [True, True, True]])
    lowres = torch.randn(b, 3, 4, 8, 8)
    denoiser = StageDenoiser(unet, emb, mask, lowres, torch.tensor([1.1, 1.1]))
    z, t = torch.randn(b, 3, 4, 8, 8), torch.tensor([0.5, 0.7])
    guided = denoiser.guided(z, t, True, 6.0)
    assert calls == [2 * b]  # cond and uncond in one forward of 2B samples
    v_cond, v_uncond = denoiser(z, t, True), denoiser(z, t, None)
    torch.testing.assert_close(guided, 7.0 * v_cond - 6.0 * v_uncond, atol=1e-4, rtol=1e-4)
    assert not torch.allclose(v_cond, v_uncond)  # the text matters
    # unconditional = text mask all False
    log_snr = denoiser.schedule.log_snr(t)
    direct = unet(z, log_snr, emb, torch.zeros_like(mask), lowres, torch.tensor([1.1, 1.1]))
    torch.testing.assert_close(v_uncond, direct)


def test_oscillating_guidance_only_up_to_first_two_sr_stages(tiny_cascade):
    plan = tiny_cascade.sampling_plan(steps=4, guidance="oscillate:15,1")
    schedules = [g for _, _, g in plan]
    assert schedules[:3] == [OscillatingGuidance(15.0, 1.0)] * 3
    assert schedules[3:] == [ConstantGuidance(15.0)] * 4
    assert {n for _, n, _ in plan} == {4}
    assert all(g == ConstantGuidance(6.0) for _, _, g in tiny_cascade.sampling_plan())
    assert all(g is None for _, _, g in tiny_cascade.sampling_plan(guidance="none"))


def test_per_stage_step_counts(tiny_cascade):
    """{stage: N} overrides only the named stages; unknown names and bad counts are refused up front."""
    plan = tiny_cascade.sampling_plan(steps={"base": 3, "ssr3": 2})
    expected = {s.name: s.steps for s in tiny_cascade.stages} | {"base": 3, "ssr3": 2}
    assert {stage.name: n for stage, n, _ in plan} == expected
    with pytest.raises(UserError, match="unknown stage 'nope'; the stages are: base, tsr1"):
        tiny_cascade.sampling_plan(steps={"nope": 2})
    with pytest.raises(UserError, match="integer >= 1"):
        tiny_cascade.sampling_plan(steps={"base": 0})


def test_per_stage_guidance(tiny_cascade, micro_cascade, tmp_path):
    """A per-stage spec (base=oscillate:15,1,ssr3=...) overrides only the named stages (an oscillation still
    becomes constant after stage 2); generating with it equals generating a cascade whose config has it."""
    plan = tiny_cascade.sampling_plan(guidance="base=oscillate:15,1, ssr3=oscillate:12,2,tsr1=none")
    expected = {s.name: parse_guidance(s.guidance) for s in tiny_cascade.stages}
    expected |= {"base": OscillatingGuidance(15.0, 1.0), "tsr1": None, "ssr3": ConstantGuidance(12.0)}
    assert {stage.name: g for stage, _, g in plan} == expected
    assert parse_stage_guidance("oscillate:15,1") == "oscillate:15,1"
    with pytest.raises(UserError, match="unknown stage 'nope'"):
        tiny_cascade.sampling_plan(guidance={"nope": 2})
    with pytest.raises(UserError, match="not understood"):
        parse_stage_guidance("base=oscillate:15")
    folder = micro_cascade.save(tmp_path / "edited")
    config = yaml.safe_load((folder / "cascade.yaml").read_text())
    next(s for s in config["stages"] if s["name"] == "tsr")["guidance"] = "constant:3"
    (folder / "cascade.yaml").write_text(yaml.safe_dump(config))
    own = Cascade.load(folder).generate(["a red star"], seed=1, steps=2, progress=False).videos
    override = micro_cascade.generate(["a red star"], seed=1, steps=2, guidance="tsr=3", progress=False)
    assert np.array_equal(own, override.videos)
    plain = micro_cascade.generate(["a red star"], seed=1, steps=2, progress=False).videos
    assert not np.array_equal(own, plain)


def test_describe_lists_every_stage(tiny_cascade):
    text = tiny_cascade.describe()
    for stage in tiny_cascade.stages:
        assert f" {stage.name} " in text
    assert "32 frames, 32x32 (WxH) at 24 fps" in text


def test_paper_yaml_describes_without_weights():
    cascade = Cascade.load(TINY_YAML.parent / "paper.yaml", random_init=True)
    assert [s.shape for s in cascade.stages] == [
        (16, 24, 40),
        (32, 24, 40),
        (32, 48, 80),
        (32, 192, 320),
        (64, 192, 320),
        (128, 192, 320),
        (128, 768, 1280),
    ]
    assert [s.fps for s in cascade.stages] == [3, 6, 6, 6, 12, 24, 24]
    assert [s.steps for s in cascade.stages] == [256] + [128] * 6
    total = sum(presets.count_parameters(s.unet) for s in cascade.stages)
    assert abs(total - 11.6e9) < 0.1 * 11.6e9  # SPEC §1: 11.6B in all
    assert f"U-Net parameters in all: {total / 1e9:.1f}B" in cascade.describe()


def test_generate_stage_chain_reproduces_generate(micro_cascade):
    """Each stage alone, fed the previous stage's float output, gives generate()'s video bit for bit."""
    prompts, kwargs = ["a blue square", "a red circle moving left"], dict(seed=4, guidance="oscillate:5,1")
    full = micro_cascade.generate(prompts, progress=False, **kwargs).videos
    video, outputs = None, []
    for stage in micro_cascade.stages:
        video = micro_cascade.generate_stage(stage.name, prompts, video, **kwargs)
        outputs.append(video)
    assert np.array_equal(to_uint8(video), full)
    # the SR stage samples from its condition: another condition, another video
    other = micro_cascade.generate_stage("ssr", prompts, outputs[1].flip(-1), **kwargs)
    assert not torch.equal(other, video)
    with pytest.raises(UserError, match="is the base"):
        micro_cascade.generate_stage("base", prompts, outputs[0])
    with pytest.raises(
        UserError, match=r"needs a condition of shape \[2, 3, 2, 8, 8\].*got \[2, 3, 4, 8, 8\]"
    ):
        micro_cascade.generate_stage("tsr", prompts, outputs[1])  # the TSR's own shape
    with pytest.raises(UserError, match="got none"):
        micro_cascade.generate_stage("ssr", prompts)
    with pytest.raises(UserError, match="no stage 'ssr9'"):
        micro_cascade.generate_stage("ssr9", prompts)


def test_on_stage_announces_each_stage_before_its_unet_runs(micro_cascade):
    """generate(on_stage=...) calls back with each stage's name, in order, before that stage's first U-Net
    call and after the previous stage's last; the videos are those of a run without it."""
    events = []
    hooks = [
        micro_cascade.unet(s.name).register_forward_hook(lambda *_, n=s.name: events.append(("unet", n)))
        for s in micro_cascade.stages
    ]
    prompts, kwargs = ["a red circle moving left"], dict(seed=2, progress=False)
    video = micro_cascade.generate(prompts, on_stage=lambda name: events.append(("start", name)), **kwargs)
    for hook in hooks:
        hook.remove()
    starts = [i for i, event in enumerate(events) if event[0] == "start"]
    assert [events[i][1] for i in starts] == [s.name for s in micro_cascade.stages]
    for begin, end, stage in zip(starts, [*starts[1:], len(events)], micro_cascade.stages, strict=True):
        calls = events[begin + 1 : end]
        assert calls and set(calls) == {("unet", stage.name)}
    assert np.array_equal(video.videos, micro_cascade.generate(prompts, **kwargs).videos)
