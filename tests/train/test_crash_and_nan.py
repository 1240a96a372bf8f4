"""A kill mid-checkpoint leaves the previous one intact; NaN/inf stops training with a clear message."""

import hashlib
import signal

import pytest
import torch
from train_helpers import load_latest, run_python

from imagen_video.cli import main
from imagen_video.train import checkpoint
from imagen_video.train.config import load_train_config
from imagen_video.train.loop import TrainingDiverged
from imagen_video.train.run import train
from imagen_video.train.stage import StageTask

KILL_MID_WRITE = """
import io, os, signal, sys, torch
real_save = torch.save
calls = 0
def save_half_then_die(obj, f, *args, **kwargs):
    global calls
    calls += 1
    if calls < {kill_call}:
        return real_save(obj, f, *args, **kwargs)
    buffer = io.BytesIO()
    real_save(obj, buffer, *args, **kwargs)
    data = buffer.getvalue()
    f.write(data[: len(data) // 2])
    f.flush()
    os.fsync(f.fileno())
    os.kill(os.getpid(), signal.SIGKILL)
torch.save = save_half_then_die
from imagen_video.cli import main
sys.exit(main(["train", {config!r}, "--out", {out!r}]))
"""


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_kill_during_checkpoint_write_keeps_previous_checkpoint(make_config, tmp_path):
    config = make_config(loop={"steps": 4, "checkpoint_every": 2})
    out = tmp_path / "run"
    killed = run_python(KILL_MID_WRITE.format(kill_call=2, config=str(config), out=str(out)))
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    half_written = list(out.glob(".*.tmp"))
    assert len(half_written) == 1 and half_written[0].stat().st_size > 0  # the crash really was mid-write
    state = load_latest(out)  # loads: not corrupt, not half-written
    assert state["step"] == 2
    assert all(torch.isfinite(v).all() for v in state["model"].values())
    # resuming removes the stale temp file and finishes the run
    assert main(["train", str(config), "--out", str(out), "--resume"]) == 0
    assert list(out.glob(".*.tmp")) == [] and load_latest(out)["step"] == 4


def test_atomic_save_failure_leaves_old_file(tmp_path, monkeypatch):
    path = tmp_path / "latest.pt"
    checkpoint.atomic_save({"step": 1, "w": torch.ones(3)}, path)
    before = _digest(path)

    def broken_save(obj, f, *args, **kwargs):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        checkpoint.atomic_save({"step": 2, "w": torch.zeros(3)}, path)
    assert _digest(path) == before and list(tmp_path.glob(".*.tmp")) == []
    assert checkpoint.load(path)["step"] == 1


def test_nan_loss_stops_with_message_and_keeps_last_checkpoint(make_config, tmp_path, monkeypatch):
    config = load_train_config(make_config(loop={"steps": 6, "checkpoint_every": 2}))
    real_loss, calls = StageTask.loss, []

    def loss_nan_at_step_3(self, model, batch):
        calls.append(1)
        loss = real_loss(self, model, batch)
        return loss * float("nan") if len(calls) == 3 else loss

    monkeypatch.setattr(StageTask, "loss", loss_nan_at_step_3)
    out = tmp_path / "run"
    with pytest.raises(TrainingDiverged) as err:
        train(config, out)
    message = str(err.value)
    assert "step 3" in message and "loss is nan" in message and "latest.pt" in message
    assert "Lower optim.lr" in message
    digest = _digest(out / "latest.pt")
    state = load_latest(out)
    assert state["step"] == 2 and all(torch.isfinite(v).all() for v in state["model"].values())
    # nothing of the bad step reached the log or the checkpoint
    assert (out / "metrics.csv").read_text().strip().splitlines()[-1].startswith("2,")
    assert _digest(out / "latest.pt") == digest


def test_inf_loss_via_cli_exits_1_with_message(make_config, tmp_path, monkeypatch, capsys):
    config = make_config(loop={"steps": 3, "checkpoint_every": 1})
    real_loss, calls = StageTask.loss, []

    def loss_inf_at_step_2(self, model, batch):
        calls.append(1)
        return real_loss(self, model, batch) * (float("inf") if len(calls) == 2 else 1.0)

    monkeypatch.setattr(StageTask, "loss", loss_inf_at_step_2)
    assert main(["train", str(config), "--out", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err
    assert "training diverged at step 2: loss is inf" in err and "run/latest.pt is intact" in err
    assert load_latest(tmp_path / "run")["step"] == 1
