"""`imagen-video distill guided|progressive CONFIG.yaml [--resume]` (SPEC §7).

Multi-process: `torchrun --nproc_per_node N -m imagen_video.distill guided CONFIG.yaml` (same arguments).
"""

from __future__ import annotations

import argparse
import os

METHODS = {
    "guided": "stage 1 (Meng et al.): fold classifier-free guidance into a guidance-weight input",
    "progressive": "stage 2 (Salimans & Ho): halve the sampling steps, start_steps -> end_steps",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="method", metavar="METHOD", required=True)
    for name, help_text in METHODS.items():
        method = sub.add_parser(name, help=help_text, description=help_text)
        method.add_argument(
            "config", help=f"distillation config (YAML), e.g. configs/distill/tiny_{name}.yaml"
        )
        method.add_argument(
            "--resume", action="store_true", help="continue exactly from the run_dir checkpoints"
        )


def run(args: argparse.Namespace) -> int:
    from imagen_video.distill.config import DistillConfig, ProgressiveConfig, load_config
    from imagen_video.distill.run import distill_guided, distill_progressive

    if args.method == "guided":
        config = load_config(DistillConfig, args.config)
        out = distill_guided(config, resume=args.resume)
    else:
        config = load_config(ProgressiveConfig, args.config)
        out = distill_progressive(config, resume=args.resume)
    if int(os.environ.get("RANK", "0")) == 0:
        print(
            f"distilled stage {config.stage!r} of {config.teacher} ({args.method}); cascade written to {out}"
        )
    return 0
