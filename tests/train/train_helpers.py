"""Helpers for the training tests (imported by name: the tests folder is not a package)."""

import socket
import subprocess
import sys
from pathlib import Path

import torch

from imagen_video.train import checkpoint


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_python(code: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run `code` in a fresh Python process; returns the completed process (stdout/stderr captured)."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout)


def tensors(state, prefix: str = ""):
    """(name, tensor) for every tensor nested in a checkpoint dict."""
    if isinstance(state, torch.Tensor):
        yield prefix, state
    elif isinstance(state, dict):
        for key, value in state.items():
            yield from tensors(value, f"{prefix}/{key}")
    elif isinstance(state, (list, tuple)):
        for i, value in enumerate(state):
            yield from tensors(value, f"{prefix}/{i}")


def load_latest(folder: Path) -> dict:
    return checkpoint.load(Path(folder) / checkpoint.LATEST)
