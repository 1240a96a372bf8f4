"""`imagen-video generate "PROMPT" -o out.mp4`: text -> video with a cascade; every input checked up front."""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import torch

from imagen_video.cascade.cascade import Cascade
from imagen_video.cascade.registry import DEFAULT_NAME, resolve_cascade
from imagen_video.cascade.stage import parse_stage_guidance, parse_steps
from imagen_video.errors import UserError
from imagen_video.io import check_video_path, write_video
from imagen_video.text import check_prompts


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("prompt", help="the text prompt, e.g. 'a red circle moving left'")
    parser.add_argument(
        "-o", "--output", default="video.mp4", help="output video, .mp4 or .gif (default video.mp4)"
    )
    parser.add_argument(
        "--cascade",
        help=f"a packaged cascade name (default {DEFAULT_NAME!r}), a cascade folder (trained weights), or a "
        "cascade YAML config such as configs/tiny.yaml (random weights: tries the pipeline, makes noise)",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0); same seed, same video")
    parser.add_argument(
        "--steps",
        help="sampling steps: N for all stages or per stage, e.g. base=256,ssr1=8 (default: the stages' own)",
    )
    parser.add_argument(
        "--guidance",
        help="classifier-free guidance for every stage: a weight (6), constant:6, oscillate:15,1, none; "
        "or per stage, e.g. base=oscillate:15,1,tsr=constant:2 (stages not named keep their own)",
    )
    parser.add_argument("--save-stages", metavar="DIR", help="also write every stage's output video into DIR")
    parser.add_argument("--num-videos", type=int, default=1, help="videos for the prompt (default 1)")
    parser.add_argument(
        "--device", default="auto", help="cpu, cuda, cuda:1, ... (default: cuda if available)"
    )
    parser.add_argument(
        "--threads",
        type=int,
        help="CPU threads for torch (default: torch's choice; 1 is fastest while other work shares the CPU)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def _output_paths(output: Path, count: int) -> list[Path]:
    """out.mp4 for one video; out_0.mp4, out_1.mp4, ... for several."""
    if count == 1:
        return [output]
    return [output.with_name(f"{output.stem}_{i}{output.suffix}") for i in range(count)]


def _check_stages_dir(folder: Path) -> None:
    """--save-stages DIR: an existing writable folder, or a new one inside an existing writable folder."""
    existing = folder if folder.exists() else folder.parent
    if folder.exists() and not folder.is_dir():
        raise UserError(f"--save-stages {folder}: exists and is not a folder")
    if not existing.is_dir():
        raise UserError(f"--save-stages {folder}: parent folder {existing} does not exist; create it first")
    check_video_path(existing / "check.mp4")


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"--device {name!r} is not a device; use cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"--device {name}: CUDA is not available on this machine; use --device cpu")
    return device


def _load(spec: str | None) -> tuple[Cascade, Path | None]:
    """The cascade to sample (packaged default, name, folder, or YAML config) and, for a YAML config
    (random weights), its path."""
    if spec is None:
        return Cascade.default(), None
    path = resolve_cascade(spec)
    if not path.is_file():
        return Cascade.load(path), None
    return Cascade.load(path, random_init=True), path


def _print_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"imagen-video generate: warning: {message}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    # validate every input before any work, so bad input never leaves a partial file behind
    prompts = check_prompts([args.prompt])
    steps = parse_steps(args.steps, "--steps")
    if args.num_videos < 1:
        raise UserError(f"--num-videos must be >= 1, got {args.num_videos}")
    if args.seed < 0:
        raise UserError(f"--seed must be >= 0, got {args.seed}")
    if args.threads is not None and args.threads < 1:
        raise UserError(f"--threads must be >= 1, got {args.threads}")
    parse_stage_guidance(args.guidance, "--guidance")
    outputs = _output_paths(Path(args.output), args.num_videos)
    for path in outputs:
        check_video_path(path)
    stages_dir = Path(args.save_stages) if args.save_stages else None
    if stages_dir is not None:
        _check_stages_dir(stages_dir)
    device = _device(args.device)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    cascade, random_config = _load(args.cascade)
    cascade.to(device).sampling_plan(steps, args.guidance)
    if random_config is not None:
        print(
            f"note: {random_config} is a config without weights: random U-Nets, the video will be noise",
            file=sys.stderr,
        )

    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.showwarning = _print_warning
        result = cascade.generate(
            prompts,
            seed=args.seed,
            steps=steps,
            guidance=args.guidance,
            keep_stages=stages_dir is not None,
            progress=not args.quiet,
            num_videos=args.num_videos,
        )
    for path, video in zip(outputs, result.videos, strict=True):
        write_video(path, video, result.fps)
    if stages_dir is not None:
        stages_dir.mkdir(exist_ok=True)
        suffix = Path(args.output).suffix
        for index, stage in enumerate(result.stages, start=1):
            for path, video in zip(
                _output_paths(stages_dir / f"{index}_{stage.name}{suffix}", args.num_videos),
                stage.videos,
                strict=True,
            ):
                write_video(path, video, stage.fps)
    elapsed = time.perf_counter() - start
    frames, height, width = result.videos.shape[1:4]
    for path in outputs:
        print(f"wrote {path} ({frames} frames, {width}x{height}, {result.fps:g} fps)")
    if stages_dir is not None:
        print(f"wrote {len(result.stages)} stage videos to {stages_dir}")
    per_stage = ", ".join(f"{s.name} {result.seconds[s.name]:.1f}s" for s in cascade.stages)
    print(f"took {elapsed:.1f} s on {device} (text {result.seconds['text']:.1f}s, {per_stage})")
    return 0
