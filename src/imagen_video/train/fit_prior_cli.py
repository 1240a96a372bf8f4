"""`imagen-video fit-prior SOURCE OUT [--samples N] [--epochs E] [--seed S] [--text-encoder NAME]
[--stats FILE]`.

Fits the base's text prior mean by least squares with its U-Net layers frozen (train.prior_fit) and writes
the cascade to OUT; the other stages are copied unchanged.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from imagen_video.errors import UserError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", help="cascade to start from (packaged name or folder)")
    parser.add_argument("out", help="cascade folder to write")
    parser.add_argument("--samples", type=int, default=16384, help="training samples of the statistics pass")
    parser.add_argument("--epochs", type=int, default=60, help="epochs of the fit on the statistics")
    parser.add_argument("--seed", type=int, default=19, help="seed of the samples, noise and initialisation")
    parser.add_argument(
        "--text-encoder",
        default=None,
        metavar="NAME",
        help="first move the cascade to this wider text encoder (cascade.retext), e.g. minilm+input",
    )
    parser.add_argument(
        "--stats",
        default=None,
        metavar="FILE",
        help="cache of the statistics pass: read if it exists, else written (a refit then costs seconds)",
    )
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    import torch

    from imagen_video.cascade import Cascade, retext
    from imagen_video.train.prior_fit import fit_text_prior

    if args.threads is not None:
        if args.threads < 1:
            raise UserError(f"--threads must be >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    cascade = Cascade.load(args.source)
    if args.text_encoder is not None:
        cascade = retext(cascade, args.text_encoder)
    stats = Path(args.stats) if args.stats else None
    fitted, held_out = fit_text_prior(
        cascade, args.samples, args.epochs, args.seed, stats_path=stats, progress=not args.quiet
    )
    out = fitted.save(args.out)
    print(f"held-out loss {held_out:.5f} (0 without a prior); cascade written to {out}")
    return 0
