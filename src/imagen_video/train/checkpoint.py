"""Atomic checkpoints: a temp file in the same folder, fsync, `os.replace` (a crash leaves the old file).

A checkpoint is one `torch.save`d dict: step, model, ema, optimizer, scheduler, rng (one entry per rank:
python, numpy, torch CPU, CUDA) and the run config. Everything in it loads with `weights_only=True`.
"""

from __future__ import annotations

import os
import random
import shutil
from pathlib import Path

import numpy as np
import torch

LATEST = "latest.pt"
TEMP_SUFFIX = ".tmp"


def atomic_save(obj: object, path: str | Path) -> Path:
    """torch.save to `.NAME.PID.tmp` beside `path`, fsync, os.replace onto `path`, fsync the folder."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}{TEMP_SUFFIX}")
    try:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return path


def remove_stale_temps(folder: str | Path) -> list[Path]:
    """Delete temp files a killed writer left behind (never a finished checkpoint)."""
    stale = sorted(Path(folder).glob(f".*{TEMP_SUFFIX}"))
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


def write(state: dict, folder: str | Path, step: int, keep_every: int = 0) -> Path:
    """Save `state` atomically as `latest.pt`; also keep `step_XXXXXXXX.pt` when `keep_every` divides step."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    latest = atomic_save(state, folder / LATEST)
    if keep_every and step % keep_every == 0:
        kept = folder / f"step_{step:08d}.pt"
        tmp = kept.with_name(f".{kept.name}{TEMP_SUFFIX}")
        shutil.copyfile(latest, tmp)
        os.replace(tmp, kept)
    return latest


def load(path: str | Path) -> dict:
    """Load a checkpoint on CPU (weights_only: tensors and plain Python values only)."""
    return torch.load(Path(path), map_location="cpu", weights_only=True)


def capture_rng() -> dict:
    """This process's RNG states as plain Python values (picklable, gatherable across processes): python,
    numpy, torch CPU and every CUDA device."""
    kind, keys, *rest = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": (kind, keys.tolist(), *rest),
        "torch": torch.get_rng_state().tolist(),
        "cuda": [s.tolist() for s in torch.cuda.get_rng_state_all()] if torch.cuda.is_available() else [],
    }


def restore_rng(state: dict) -> None:
    """Inverse of `capture_rng`."""
    random.setstate(_tuples(state["python"]))
    kind, keys, *rest = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), *rest))
    torch.set_rng_state(torch.tensor(state["torch"], dtype=torch.uint8))
    if torch.cuda.is_available() and state["cuda"]:
        torch.cuda.set_rng_state_all([torch.tensor(s, dtype=torch.uint8) for s in state["cuda"]])


def _tuples(value):
    """Lists back to tuples (random.setstate needs the exact nesting)."""
    return tuple(_tuples(v) for v in value) if isinstance(value, (list, tuple)) else value
