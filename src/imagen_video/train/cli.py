"""`imagen-video train CONFIG.yaml [--resume] [--max-steps N] [--out DIR] [--export DIR]`.

Multi-process: `torchrun --nproc_per_node N -m imagen_video.train CONFIG.yaml` (same arguments).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from imagen_video.errors import UserError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="training run config (YAML), e.g. configs/train/tiny_base.yaml")
    parser.add_argument("--resume", action="store_true", help="continue exactly from OUT/latest.pt")
    parser.add_argument(
        "--max-steps", type=int, default=None, help="train until this step (overrides loop.steps)"
    )
    parser.add_argument("--out", default=None, help="run folder (default: out_dir of the config)")
    parser.add_argument(
        "--export",
        metavar="CASCADE_DIR",
        default=None,
        help="write the EMA weights of OUT/latest.pt and the stage config into this cascade folder",
    )


def run(args: argparse.Namespace) -> int:
    from imagen_video.train.config import load_train_config

    config = load_train_config(args.config)
    out_dir = Path(args.out or config.out_dir)
    if args.max_steps is not None and args.max_steps < 1:
        raise UserError(f"--max-steps must be >= 1, got {args.max_steps}")
    if args.export:
        from imagen_video.train.export import export_stage

        path = export_stage(out_dir / "latest.pt", args.export)
        print(f"exported stage to {path}")
        return 0
    from imagen_video.train.loop import TrainingDiverged
    from imagen_video.train.run import train

    main_process = int(os.environ.get("RANK", "0")) == 0
    try:
        result = train(config, out_dir, resume=args.resume, max_steps=args.max_steps)
    except TrainingDiverged as err:
        if main_process:
            print(f"imagen-video train: error: {err}", file=sys.stderr)
        return 1
    if main_process:
        print(f"step {result.step}: loss {result.loss:.4f}; checkpoint {result.checkpoint}")
    return 0
