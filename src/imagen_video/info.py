"""`imagen-video info [DIR | --preset NAME]`: stages, shapes, fps and parameter counts."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from imagen_video import __version__


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "cascade", nargs="?", help="a packaged cascade name, a cascade folder or a YAML config"
    )
    parser.add_argument("--preset", help="a U-Net preset family to describe, e.g. 'paper' or 'tiny'")


def run(args: argparse.Namespace) -> int:
    print(f"imagen-video {__version__} | torch {torch.__version__} | threads {torch.get_num_threads()}")
    if args.preset:
        from imagen_video.models import presets

        print(presets.describe(args.preset))
    if args.cascade:
        from imagen_video.cascade import Cascade

        is_yaml = Path(args.cascade).suffix in (".yaml", ".yml")  # a config alone: describe, no weights
        print(Cascade.load(args.cascade, random_init=is_yaml).describe())
    return 0
