"""`imagen-video fit-prior SOURCE OUT [--samples N] [--epochs E] [--seed S] [--text-encoder NAME]
[--stats FILE] [--width W] [--depth D] [--noise-level] [--rank K] [--lr LR] [--weight-decay WD]`.

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
    form = parser.add_argument_group("the prior's form and its fit (UNetConfig.text_prior_*)")
    form.add_argument("--width", type=int, default=None, help="hidden width (default: the U-Net's emb_dim)")
    form.add_argument("--depth", type=int, default=1, help="hidden SiLU layers")
    form.add_argument("--noise-level", action="store_true", help="also feed the prior log_snr")
    form.add_argument("--rank", type=int, default=0, help="rank of the colour x pattern term (0: none)")
    form.add_argument("--lr", type=float, default=3e-4, help="AdamW learning rate of the fit")
    form.add_argument("--weight-decay", type=float, default=0.0, help="AdamW weight decay of the fit")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    import torch

    from imagen_video.cascade import Cascade, retext
    from imagen_video.train.prior_fit import PriorFit, fit_text_prior

    if args.threads is not None:
        if args.threads < 1:
            raise UserError(f"--threads must be >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    cascade = Cascade.load(args.source)
    if args.text_encoder is not None:
        cascade = retext(cascade, args.text_encoder)
    stats = Path(args.stats) if args.stats else None
    if args.lr <= 0 or args.weight_decay < 0:
        raise UserError(f"--lr must be > 0 and --weight-decay >= 0, got {args.lr} and {args.weight_decay}")
    form = PriorFit(args.width, args.depth, args.noise_level, args.rank, args.lr, args.weight_decay)
    fitted, held_out = fit_text_prior(
        cascade, args.samples, args.epochs, args.seed, stats_path=stats, progress=not args.quiet, form=form
    )
    out = fitted.save(args.out)
    print(f"held-out loss {held_out:.5f} (0 without a prior); cascade written to {out}")
    return 0
