"""`train(config)`: join the process group, build the stage's task, run the loop, leave the group."""

from __future__ import annotations

from pathlib import Path

from imagen_video.config import dataclass_to_dict
from imagen_video.train import distributed
from imagen_video.train.config import TrainConfig
from imagen_video.train.loop import LoopResult, run_loop
from imagen_video.train.stage import StageTask


def train(
    config: TrainConfig, out_dir: str | Path | None = None, resume: bool = False, max_steps: int | None = None
) -> LoopResult:
    """Train `config.stage` to step `max_steps` (or loop.steps) in `out_dir` (or config.out_dir)."""
    ctx = distributed.setup(config.loop.threads)
    try:
        task = StageTask(config, ctx, resume=resume)
        saved = {
            "train": dataclass_to_dict(config),
            "stage": dataclass_to_dict(task.stage),
            "text_encoder": {"name": config.text.encoder, "max_length": config.text.max_length},
        }
        return run_loop(
            task, config.loop, config.optim, Path(out_dir or config.out_dir), ctx,
            config=saved, resume=resume, max_steps=max_steps,
        )  # fmt: skip
    finally:
        distributed.cleanup()
