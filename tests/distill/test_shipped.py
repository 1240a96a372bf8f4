"""The packaged tiny-distilled cascade: every stage a w-conditioned student, <= 8 steps of one U-Net call."""

from imagen_video.cascade import Cascade, resolve_cascade
from imagen_video.cascade.registry import PRETRAINED_DIR, default_cascade_path


def test_tiny_distilled_samples_each_stage_in_at_most_8_single_unet_calls():
    distilled, original = Cascade.load("tiny-distilled"), Cascade.load("tiny")
    assert resolve_cascade("tiny-distilled").name == "tiny-distilled"
    calls = {}
    for stage in distilled.stages:
        assert stage.sampler == "stochastic" and 1 <= stage.steps <= 8 and stage.unet.guidance_embedding
        teacher = original.stage(stage.name)  # same shapes as the original cascade, stage by stage
        assert (stage.frames, stage.height, stage.width) == (teacher.frames, teacher.height, teacher.width)
        calls[stage.name] = []
        distilled.unet(stage.name).register_forward_hook(
            lambda module, args, out, seen=calls[stage.name]: seen.append(args[0].shape[0])
        )
    prompt = "a red circle moving to the left"
    result = distilled.generate([prompt], seed=0, guidance="constant:6", progress=False)
    # guidance w = 6 costs one forward of batch 1 per step (no conditional/unconditional pair)
    assert calls == {stage.name: [1] * stage.steps for stage in distilled.stages}
    last = distilled.stages[-1]
    assert result.videos.shape[1:4] == (last.frames, last.height, last.width)


def test_the_default_cascade_is_tiny_distilled():
    """Issue 9: the distilled cascade is the default (`generate` with no --cascade, `Cascade.default()`)."""
    assert default_cascade_path() == resolve_cascade("tiny-distilled") != resolve_cascade("tiny")


def test_the_default_samples_with_the_papers_oscillating_guidance():
    """`generate` with no --guidance samples tiny-distilled as `eval --guidance oscillate:15,1` does (the
    paper's oscillate(15, 1) for the base and first two SR stages, its high weight after them): the row
    measured for issue 8."""
    distilled = Cascade.load("tiny-distilled")
    assert distilled.sampling_plan() == distilled.sampling_plan(guidance="oscillate:15,1")
    assert [type(g).__name__ for _, _, g in distilled.sampling_plan()] == ["OscillatingGuidance"] * 3 + [
        "ConstantGuidance"
    ]


def test_the_packaged_cascades_fit_issue_8s_60_mb():
    """Every packaged cascade (weights and configs) ships inside the wheel: 60 MB in all at most."""
    files = [f for f in PRETRAINED_DIR.rglob("*") if f.is_file()]
    assert {f.parent.name for f in files if f.suffix == ".safetensors"} >= {"tiny", "tiny-distilled"}
    assert sum(f.stat().st_size for f in files) <= 60e6
