"""2-process torchrun on gloo (CPU) equals a 1-process run with the same global batch (DDP and FSDP2)."""

import os
import subprocess
import sys

import pytest
from train_helpers import free_port, load_latest

from imagen_video.cli import main


def torchrun(config, out, *args: str, nproc: int = 2) -> subprocess.CompletedProcess:
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc),
        "--master_addr", "127.0.0.1", "--master_port", str(free_port()),
        "-m", "imagen_video.train", str(config), "--out", str(out), *args,
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)


def max_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max((a[k].double() - b[k].double()).abs().max().item() for k in a)


@pytest.mark.distributed
@pytest.mark.parametrize("parallel", ["ddp", "fsdp"])
def test_two_processes_match_one(make_config, tmp_path, parallel):
    loop = {"steps": 3, "batch_size": 4, "grad_accum": 2, "checkpoint_every": 1, "parallel": parallel}
    config = make_config(loop=loop, data={"image_fraction": 0.25})
    assert main(["train", str(config), "--out", str(tmp_path / "one")]) == 0
    if parallel == "fsdp":  # also resume an FSDP2 run: 2 steps, then --resume to step 3
        first = torchrun(config, tmp_path / "two", "--max-steps", "2")
        assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
        two = torchrun(config, tmp_path / "two", "--resume")
    else:
        two = torchrun(config, tmp_path / "two")
    assert two.returncode == 0, two.stdout[-3000:] + two.stderr[-3000:]
    a, b = load_latest(tmp_path / "one"), load_latest(tmp_path / "two")
    assert b["world_size"] == 2 and a["step"] == b["step"] == 3
    model_diff, ema_diff = max_diff(a["model"], b["model"]), max_diff(a["ema"], b["ema"])
    print(f"{parallel}: max |w_1proc - w_2proc| = {model_diff:.3g} (EMA {ema_diff:.3g})")
    assert model_diff < 1e-5 and ema_diff < 1e-5
    assert a["model"]["out_conv.weight"].abs().max() > 1e-3  # trained: out_conv starts at zero
    assert len(b["rng"]) == 2


@pytest.mark.distributed
def test_two_processes_stop_together_when_out_of_time(make_config, tmp_path):
    """loop.max_minutes is decided across processes (an all-reduce): both stop after the same step, with one
    checkpoint there, instead of one waiting forever in the next step's collective."""
    config = make_config(loop={"steps": 3, "batch_size": 4, "checkpoint_every": 10, "max_minutes": 1e-9})
    run = torchrun(config, tmp_path / "two")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert load_latest(tmp_path / "two")["step"] == 1 and load_latest(tmp_path / "two")["world_size"] == 2
