"""`imagen-video generate | train | fit-prior | distill | eval | info`: one module per subcommand."""

from __future__ import annotations

import argparse
import importlib
import sys

from imagen_video import __version__
from imagen_video.errors import UserError

# subcommand -> module with `add_arguments(parser)` and `run(args) -> int`, imported only when used
COMMANDS = {
    "generate": ("imagen_video.cascade.cli", "generate a video from a text prompt"),
    "info": ("imagen_video.info", "describe a cascade folder or a U-Net preset"),
    "train": ("imagen_video.train.cli", "train one stage of a cascade"),
    "fit-prior": ("imagen_video.train.fit_prior_cli", "fit the base's text prior mean, its layers frozen"),
    "distill": ("imagen_video.distill.cli", "guided, then progressive distillation of a stage"),
    "eval": ("imagen_video.eval.cli", "generate and score: CLIP score, CLIP R-precision, judge"),
}


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    """The top-level parser; only the chosen subcommand's module is imported."""
    parser = argparse.ArgumentParser(prog="imagen-video", description=__doc__)
    parser.add_argument("--version", action="version", version=f"imagen-video {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    chosen = next((a for a in argv if not a.startswith("-")), None)
    for name, (module, help_text) in COMMANDS.items():
        sp = sub.add_parser(name, help=help_text, description=help_text)
        if name == chosen:
            mod = importlib.import_module(module)
            mod.add_arguments(sp)
            sp.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `imagen-video` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(argv).parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except UserError as err:
        print(f"imagen-video {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"imagen-video {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
