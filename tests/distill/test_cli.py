"""`imagen-video distill guided|progressive` end to end on a tiny random cascade (hash text, a 4x8x8 base and
a 4x16x16 SSR): students written in the cascade folder format, sampler and steps recorded, one U-Net call
per guided step, resume skipping finished halvings. The real run on the trained tiny cascade is the lead's."""

from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from imagen_video.cascade import Cascade, StageDenoiser, cascade_config_from_dict
from imagen_video.cli import main
from imagen_video.diffusion import ConstantGuidance, sample
from imagen_video.distill.config import DistillConfig, ProgressiveConfig, load_config
from imagen_video.distill.task import example_guidance_weight, student_unet, train_config, training_stage
from imagen_video.errors import UserError
from imagen_video.train import checkpoint
from imagen_video.train.text import HashTextEncoder

UNET = {
    "preset": "tiny/base", "channels": 8, "channel_mult": [1, 2], "num_res_blocks": 1,
    "spatial_attention": [False, True], "cross_attention": [False, True], "temporal_levels": [True, True],
    "norm_groups": 4, "head_dim": 8, "text_dim": 8,
}  # fmt: skip
SR_UNET = {**UNET, "preset": "tiny/ssr1", "temporal": "conv", "spatial_attention": [False, False]}
CASCADE = {
    "text_encoder": {"name": "hash:8", "max_length": 8},
    "stages": [
        {"name": "base", "kind": "base", "frames": 4, "height": 8, "width": 8, "fps": 4, "unet": UNET,
         "steps": 8},
        {"name": "sr", "kind": "ssr", "frames": 4, "height": 16, "width": 16, "fps": 4, "unet": SR_UNET,
         "steps": 8},
    ],
}  # fmt: skip
LOOP = {"steps": 2, "batch_size": 2, "checkpoint_every": 1, "sample_every": 0, "log_every": 1,
        "tensorboard": False, "progress": False}  # fmt: skip


@pytest.fixture(scope="module")
def teacher_dir(tmp_path_factory):
    """A random cascade whose U-Nets are perturbed off their zero-initialised output layers (else v = 0)."""
    folder = tmp_path_factory.mktemp("teacher")
    cascade = Cascade(cascade_config_from_dict(CASCADE, "test cascade"))
    g = torch.Generator().manual_seed(0)
    for stage in cascade.stages:
        for p in cascade.unet(stage.name).parameters():
            p.data.add_(0.05 * torch.randn(p.shape, generator=g))
    cascade.save(folder)
    return folder


def write_config(path, **fields):
    data = {"w_min": 0.0, "w_max": 8.0, "data": {"length": 16}, "optim": {"lr": 1e-3, "warmup_steps": 1},
            "loop": LOOP, **fields}  # fmt: skip
    path.write_text(yaml.safe_dump(data))
    return str(path)


def unet_calls(unet):
    calls = []
    unet.register_forward_hook(lambda module, args, output: calls.append(args[0].shape[0]))
    return calls


def test_student_starts_as_the_conditional_teacher(teacher_dir):
    teacher = Cascade.load(teacher_dir).unet("base")
    student = student_unet(teacher, teacher.config.replace(guidance_embedding=True)).eval()
    emb, mask = HashTextEncoder(8, 8).encode(["a red circle", "a blue square moving left"])
    z, log_snr = torch.randn(2, 3, 4, 8, 8), torch.tensor([-3.0, 2.0])
    with torch.no_grad():
        v_teacher = teacher(z, log_snr, emb, mask)
        for w in (0.0, 3.0, 8.0):
            v_student = student(z, log_snr, emb, mask, guidance_weight=torch.full((2,), w))
            assert torch.equal(v_student, v_teacher)


def test_guided_then_progressive_end_to_end(teacher_dir, tmp_path):
    guided_cfg = write_config(
        tmp_path / "guided.yaml", teacher=str(teacher_dir), stage="base", out=str(tmp_path / "guided"),
        run_dir=str(tmp_path / "runs/guided"),
    )  # fmt: skip
    assert main(["distill", "guided", guided_cfg]) == 0
    guided = Cascade.load(tmp_path / "guided")
    base = guided.stage("base")
    assert base.unet.guidance_embedding and (base.sampler, base.steps) == ("ddim", 8)
    assert not guided.stage("sr").unet.guidance_embedding  # the other stage is copied unchanged
    assert checkpoint.load(tmp_path / "runs/guided/latest.pt")["step"] == 2

    progressive_cfg = write_config(
        tmp_path / "progressive.yaml", teacher=str(tmp_path / "guided"), stage="base",
        out=str(tmp_path / "distilled"), run_dir=str(tmp_path / "runs/progressive"),
        start_steps=8, end_steps=2,
    )  # fmt: skip
    assert main(["distill", "progressive", progressive_cfg]) == 0
    for n in (4, 2):
        assert checkpoint.load(tmp_path / f"runs/progressive/steps_{n:04d}/latest.pt")["step"] == 2
    distilled = Cascade.load(tmp_path / "distilled")
    base = distilled.stage("base")
    assert (base.sampler, base.steps, base.unet.guidance_embedding) == ("stochastic", 2, True)

    # the distilled stage samples with guidance w = 6 in one U-Net call (batch B, not 2B) per step
    unet = distilled.unet("base")
    calls = unet_calls(unet)
    emb, mask = HashTextEncoder(8, 8).encode(["a red circle moving left"])
    video = sample(
        StageDenoiser(unet, emb, mask, schedule=base.schedule), (1, 3, 4, 8, 8), schedule=base.schedule,
        steps=base.steps, sampler=base.sampler, cond=True, guidance=ConstantGuidance(6.0),
        generator=torch.Generator().manual_seed(0),
    )  # fmt: skip
    assert calls == [1, 1] and torch.isfinite(video).all()

    # finished halvings are skipped on --resume; without it an existing run is refused
    weights = load_file(tmp_path / "distilled/base.safetensors")
    assert main(["distill", "progressive", progressive_cfg, "--resume"]) == 0
    again = load_file(tmp_path / "distilled/base.safetensors")
    assert weights.keys() == again.keys() and all(torch.equal(weights[k], again[k]) for k in weights)
    assert main(["distill", "progressive", progressive_cfg]) == 2


def test_progressive_out_of_time_writes_the_cut_round_and_resumes_exactly(teacher_dir, tmp_path):
    """loop.max_minutes counts over all halvings: the round it cuts is written as the student (its N), the run
    stops there, and --resume runs (cut after every step here) end on a never-cut run's student."""

    def run(name, **loop):
        return write_config(
            tmp_path / f"{name}.yaml", teacher=str(teacher_dir), stage="base", out=str(tmp_path / name),
            run_dir=str(tmp_path / f"runs/{name}"), start_steps=8, end_steps=2, loop={**LOOP, **loop},
        )  # fmt: skip

    straight, cut = run("straight"), run("cut", max_minutes=1e-9)
    assert main(["distill", "progressive", straight]) == 0
    assert main(["distill", "progressive", cut]) == 0
    written = [Cascade.load(tmp_path / "cut").stage("base").steps]
    rounds = sorted(p.parent.name for p in (tmp_path / "runs/cut").glob("steps_*/latest.pt"))
    for _ in range(3):
        assert main(["distill", "progressive", cut, "--resume"]) == 0
        written.append(Cascade.load(tmp_path / "cut").stage("base").steps)
    assert rounds == ["steps_0004"] and written == [4, 2, 2, 2]
    a, b = load_file(tmp_path / "straight/base.safetensors"), load_file(tmp_path / "cut/base.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_progressive_sr_stage_in_place(teacher_dir, tmp_path):
    """An SR stage (low-res condition path) distilled without guidance embedding, written over its folder."""
    folder = tmp_path / "cascade"
    Cascade.load(teacher_dir).save(folder)
    cfg = write_config(
        tmp_path / "sr.yaml", teacher=str(folder), stage="sr", out=str(folder),
        run_dir=str(tmp_path / "runs"), start_steps=8, end_steps=4, weighting="v",
    )  # fmt: skip
    assert main(["distill", "progressive", cfg]) == 0
    sr = Cascade.load(folder).stage("sr")
    assert (sr.sampler, sr.steps, sr.unet.guidance_embedding) == ("stochastic", 4, False)


def test_guided_on_temporal_crops_keeps_the_stage_frames(teacher_dir, tmp_path, monkeypatch):
    """train_frames=2: the student trains on 2-frame clips conditioned on 2 frames, is written back with the
    stage's 4 frames and a guidance embedding; loop.threads is applied as in training."""
    threads = []
    monkeypatch.setattr(torch, "set_num_threads", threads.append)
    cfg = write_config(
        tmp_path / "crop.yaml", teacher=str(teacher_dir), stage="sr", out=str(tmp_path / "out"),
        run_dir=str(tmp_path / "runs"), train_frames=2, loop={**LOOP, "threads": 1},
    )  # fmt: skip
    assert main(["distill", "guided", cfg]) == 0
    assert threads == [1]
    assert checkpoint.load(tmp_path / "runs/latest.pt")["config"]["stage"]["frames"] == 2
    written = Cascade.load(tmp_path / "out").stage("sr")
    assert (written.frames, written.unet.guidance_embedding) == (4, True)
    config, teacher = load_config(DistillConfig, cfg), Cascade.load(teacher_dir)
    spec = train_config(config, teacher, training_stage(config, teacher.stage("sr")))
    assert (spec.stage["frames"], spec.condition.frames) == (2, 2)


def test_temporal_crops_of_a_tsr_scale_its_condition():
    """The shipped TSR (16 -> 32 frames) on 8-frame crops sees 4 condition frames; 3-frame crops (1.5
    condition frames) and crops longer than the stage are refused, naming train_frames."""
    cascade = Cascade.load("tiny")

    def condition_frames(train_frames):
        config = DistillConfig(teacher="tiny", stage="tsr", out="o", train_frames=train_frames)
        return train_config(config, cascade, training_stage(config, cascade.stage("tsr"))).condition.frames

    assert condition_frames(8) == 4 and condition_frames(32) == 16
    with pytest.raises(UserError, match="train_frames=3 .* not a whole number"):
        condition_frames(3)
    with pytest.raises(UserError, match="train_frames=40 exceeds stage 'tsr'"):
        condition_frames(40)


@pytest.mark.parametrize(
    "method, fields, message",
    [
        ("progressive", {"stage": "base", "start_steps": 8, "end_steps": 3}, "power of two"),
        ("guided", {"stage": "nope"}, "no stage 'nope'"),
        ("guided", {"stage": "base", "end_steps": 2}, "unknown key(s) 'end_steps'"),
        ("guided", {"stage": "base", "w_min": 2.0, "w_max": 1.0}, "w_min"),
        ("guided", {"stage": "base", "weighting": "x"}, "weighting 'x' unknown"),
        ("guided", {"stage": "base", "frozen": "text_proj."}, "frozen must be a list"),
        ("guided", {"stage": "base", "frozen": ["nope."]}, "frozen: 'nope.' names no U-Net parameter"),
    ],
)
def test_bad_configs_are_user_errors(teacher_dir, tmp_path, capsys, method, fields, message):
    paths = {"teacher": str(teacher_dir), "out": str(tmp_path / "o"), "run_dir": str(tmp_path / "r")}
    assert main(["distill", method, write_config(tmp_path / "c.yaml", **paths, **fields)]) == 2
    assert message in capsys.readouterr().err


def test_guided_resume_is_exact(teacher_dir, tmp_path):
    """3 iterations straight == 1 iteration, then --resume to 3 (model, EMA and optimizer bit-identical)."""

    def run(name, steps, *flags):
        cfg = write_config(
            tmp_path / f"{name}.yaml", teacher=str(teacher_dir), stage="sr", out=str(tmp_path / name),
            run_dir=str(tmp_path / "runs" / name), loop={**LOOP, "steps": steps},
        )  # fmt: skip
        assert main(["distill", "guided", cfg, *flags]) == 0

    run("straight", 3)
    run("resumed", 1)
    run("resumed", 3, "--resume")
    a, b = (checkpoint.load(tmp_path / "runs" / name / "latest.pt") for name in ("straight", "resumed"))
    assert a["step"] == b["step"] == 3
    for key in ("model", "ema"):
        assert all(torch.equal(a[key][k], b[key][k]) for k in a[key])
    initial = Cascade.load(teacher_dir).unet("sr").state_dict()
    assert not torch.equal(a["model"]["out_conv.weight"], initial["out_conv.weight"])  # it trained


def test_frozen_weights_stay_the_teachers(teacher_dir, tmp_path):
    """`frozen: [text_proj.]`: guided then progressive, the student's text projection is the teacher's bit for
    bit while the rest trains."""
    paths = {"stage": "base", "frozen": ["text_proj."]}
    guided = write_config(
        tmp_path / "g.yaml", teacher=str(teacher_dir), out=str(tmp_path / "g"), run_dir=str(tmp_path / "rg"),
        **paths,
    )  # fmt: skip
    assert main(["distill", "guided", guided]) == 0
    progressive = write_config(
        tmp_path / "p.yaml", teacher=str(tmp_path / "g"), out=str(tmp_path / "p"),
        run_dir=str(tmp_path / "rp"), start_steps=8, end_steps=4, **paths,
    )  # fmt: skip
    assert main(["distill", "progressive", progressive]) == 0
    teacher = Cascade.load(teacher_dir).unet("base").state_dict()
    for folder in ("g", "p"):
        student = load_file(tmp_path / folder / "base.safetensors")
        frozen = [k for k in teacher if k.startswith("text_proj.")]
        assert frozen and all(torch.equal(student[k], teacher[k]) for k in frozen)
        assert not torch.equal(student["out_conv.weight"], teacher["out_conv.weight"])


def test_text_in_workers_gives_the_same_run(teacher_dir, tmp_path):
    """Captions encoded in a DataLoader worker instead of the main process: bit-identical student."""

    def run(name, **fields):
        cfg = write_config(
            tmp_path / f"{name}.yaml", teacher=str(teacher_dir), stage="sr", out=str(tmp_path / name),
            run_dir=str(tmp_path / "runs" / name), data={"length": 16, "num_workers": 1}, **fields,
        )  # fmt: skip
        assert main(["distill", "guided", cfg]) == 0
        teacher = Cascade.load(teacher_dir)
        spec = train_config(load_config(DistillConfig, cfg), teacher, teacher.stage("sr")).text
        assert spec.in_workers == fields.get("text_in_workers", False)
        return checkpoint.load(tmp_path / "runs" / name / "latest.pt")["model"]

    main_process, workers = run("main"), run("workers", text_in_workers=True)
    assert all(torch.equal(main_process[k], workers[k]) for k in main_process)


def test_example_guidance_weight_is_a_pure_uniform_draw():
    draws = torch.stack(
        [example_guidance_weight(7, step, j, 1.0, 5.0) for step in range(40) for j in range(50)]
    )
    assert 1.0 <= draws.min() and draws.max() <= 5.0
    assert abs(draws.mean().item() - 3.0) < 0.1 and abs(draws.var().item() - 16 / 12) < 0.1
    assert torch.equal(
        draws[:50], torch.stack([example_guidance_weight(7, 0, j, 1.0, 5.0) for j in range(50)])
    )
    assert example_guidance_weight(8, 0, 0, 1.0, 5.0) != draws[0]


def test_shipped_configs_parse():
    folder = Path(__file__).resolve().parents[2] / "configs/distill"
    guided = load_config(DistillConfig, folder / "tiny_guided.yaml")
    progressive = load_config(ProgressiveConfig, folder / "tiny_progressive.yaml")
    assert (guided.stage, guided.w_max) == ("base", 15.0)
    assert (progressive.teacher, progressive.start_steps, progressive.end_steps) == (guided.out, 32, 8)


def test_every_distill_recipe_parses_and_chains():
    """Every committed distill config loads; each stage's progressive run reads the guided run's output."""
    folder = Path(__file__).resolve().parents[2] / "configs/distill"
    for guided_path in folder.rglob("*_guided.yaml"):
        guided = load_config(DistillConfig, guided_path)
        progressive = load_config(ProgressiveConfig, str(guided_path).replace("_guided", "_progressive"))
        assert (progressive.teacher, progressive.stage) == (guided.out, guided.stage), guided_path
        assert progressive.cond_aug_max == guided.cond_aug_max, guided_path
