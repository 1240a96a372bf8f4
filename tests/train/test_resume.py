"""Exact resume: 20 steps in one run == 10 steps, SIGKILL right after the step-10 checkpoint, resume to 20."""

import signal
from types import SimpleNamespace

import torch
from train_helpers import load_latest, run_python, tensors

from imagen_video.cli import main
from imagen_video.train import checkpoint
from imagen_video.train import loop as loop_module
from imagen_video.train.metrics import read_metrics

KILL_AFTER_CHECKPOINT = """
import os, signal, sys
from imagen_video.train import checkpoint
write = checkpoint.write
def write_then_die(state, folder, step, keep_every=0):
    path = write(state, folder, step, keep_every)
    if step == {kill_step}:
        os.kill(os.getpid(), signal.SIGKILL)
    return path
checkpoint.write = write_then_die
from imagen_video.cli import main
from imagen_video.train import checkpoint
sys.exit(main(["train", {config!r}, "--out", {out!r}, "--max-steps", "{steps}"]))
"""


def test_resume_after_sigkill_is_bit_identical(make_config, tmp_path):
    config = make_config(
        data={"image_fraction": 0.5},
        loop={"steps": 20, "checkpoint_every": 5, "keep_every": 10, "grad_accum": 2, "sample_every": 10},
    )
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert main(["train", str(config), "--out", str(straight)]) == 0

    code = KILL_AFTER_CHECKPOINT.format(kill_step=10, config=str(config), out=str(resumed), steps=20)
    killed = run_python(code)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert load_latest(resumed)["step"] == 10
    assert sorted(p.name for p in resumed.glob("*.pt")) == ["latest.pt", "step_00000010.pt"]
    assert main(["train", str(config), "--out", str(resumed), "--resume"]) == 0

    a, b = load_latest(straight), load_latest(resumed)
    assert a["step"] == b["step"] == 20
    assert checkpoint.load(straight / "step_00000010.pt")["step"] == 10
    names_a, names_b = dict(tensors(a)), dict(tensors(b))
    assert names_a.keys() == names_b.keys()
    compared = [k for k in names_a if k.startswith(("/model", "/ema", "/optimizer"))]
    assert len(compared) > 50
    unequal = [k for k in compared if not torch.equal(names_a[k], names_b[k])]
    assert unequal == []
    assert not torch.equal(a["model"]["out_conv.weight"], a["ema"]["out_conv.weight"])
    # the metrics of steps 11..20 match too, and the killed run's log is continued, not duplicated
    rows_a, rows_b = read_metrics(straight / "metrics.csv"), read_metrics(resumed / "metrics.csv")
    assert [r["step"] for r in rows_b] == list(range(1, 21))
    assert [r["loss"] for r in rows_a] == [r["loss"] for r in rows_b]
    assert sorted(p.name for p in (resumed / "samples").glob("*.gif")) == [
        "step_00000010.gif",
        "step_00000020.gif",
    ]


def test_max_minutes_cuts_the_run_at_a_checkpoint_and_resume_is_exact(make_config, tmp_path):
    """loop.max_minutes stops after the step that ends past it, with a checkpoint there (not at a multiple of
    checkpoint_every); resuming, cut again after every step, ends on the weights of a run never cut."""
    straight_config = make_config("straight.yaml", loop={"checkpoint_every": 10})
    cut_config = make_config("cut.yaml", loop={"checkpoint_every": 10, "max_minutes": 1e-9})
    straight, cut = tmp_path / "straight", tmp_path / "cut"
    assert main(["train", str(straight_config), "--out", str(straight)]) == 0
    assert main(["train", str(cut_config), "--out", str(cut)]) == 0
    steps = [load_latest(cut)["step"]]
    while steps[-1] < 4:
        assert main(["train", str(cut_config), "--out", str(cut), "--resume"]) == 0
        steps.append(load_latest(cut)["step"])
    assert steps == [1, 2, 3, 4]
    a, b = dict(tensors(load_latest(straight))), dict(tensors(load_latest(cut)))
    compared = [k for k in a if k.startswith(("/model", "/ema", "/optimizer"))]
    assert len(compared) > 50 and [k for k in compared if not torch.equal(a[k], b[k])] == []


def test_max_minutes_counts_from_the_start_of_the_run_not_per_step(make_config, tmp_path, monkeypatch):
    """A clock that advances 10 s per reading: no single step lasts a minute, the run does after a few steps;
    with max_minutes=1 it stops there, well before loop.steps."""
    clock = iter(range(0, 10**6, 10))
    monkeypatch.setattr(loop_module, "time", SimpleNamespace(perf_counter=lambda: float(next(clock))))
    config = make_config(loop={"steps": 20, "checkpoint_every": 100, "max_minutes": 1})
    assert main(["train", str(config), "--out", str(tmp_path / "run")]) == 0
    assert 1 < load_latest(tmp_path / "run")["step"] < 20
