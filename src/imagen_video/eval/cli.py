"""`imagen-video eval`: generate videos for a prompt set with each cascade and guidance, score them, and
print the paper-style table (Table 1) as markdown; the same rows go to a JSON file.

    imagen-video eval --cascade tiny --prompts shapes:heldout --guidance constant:6 oscillate:15,1 \\
        [--clip DIR] [--steps N|base=256,ssr1=8] [--num N] [--seed S] [--out results.json]

--prompts also takes builtin:paraphrases (hand-written paraphrases with their attributes), an annotated
JSON Lines file or a plain text file: see eval/prompt_sets.py for the formats.

Several cascades compare side by side as rows: `--cascade original=tiny "fully distilled=tiny-distilled"`.
Every row uses the same prompts and seeds; seconds per video are timed in this run, after one untimed
warm-up video per cascade (model loading and first-call costs excluded).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from tqdm.auto import tqdm

from imagen_video.cascade.registry import DEFAULT_NAME
from imagen_video.cascade.stage import StepCounts, parse_steps
from imagen_video.errors import UserError
from imagen_video.eval.prompt_sets import caption_attributes, load_prompts
from imagen_video.eval.table import EvalRow, markdown_table, results_json, write_json
from imagen_video.io import to_uint8

if TYPE_CHECKING:
    from imagen_video.cascade import Cascade

DEFAULT_GUIDANCE = ("constant:6", "oscillate:15,1")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--cascade",
        nargs="+",
        default=[DEFAULT_NAME],
        metavar="[LABEL=]CASCADE",
        help=f"cascades to compare (packaged name, folder or YAML; default {DEFAULT_NAME!r}), each "
        "optionally labelled, e.g. original=tiny 'fully distilled=tiny-distilled'; the label is the "
        "table's method column",
    )
    parser.add_argument(
        "--prompts",
        default="shapes:heldout",
        help="shapes:heldout | shapes:train | shapes:all (ShapesDataset captions), builtin:paraphrases (50 "
        'hand-written paraphrases), an annotated FILE.jsonl (one {"prompt", "color", "shape", '
        '"motion"} object per line) or a text FILE (one prompt per line); the judge scores prompts whose '
        "attributes are known: shapes:, builtin:, .jsonl and text lines parse_caption reads",
    )
    parser.add_argument(
        "--guidance",
        nargs="+",
        default=list(DEFAULT_GUIDANCE),
        help="guidance settings, one row each: constant:W, oscillate:HIGH,LOW, none, or per stage "
        "(base=oscillate:15,1,tsr=constant:2; stages not named keep their own)",
    )
    parser.add_argument(
        "--clip", help="a local CLIP folder (ViT-B/32 or ViT-L/14 layout) for the CLIP columns"
    )
    parser.add_argument(
        "--steps",
        help="sampling steps: N for all stages or per stage, e.g. base=256,ssr1=8 (default: the stages' own)",
    )
    parser.add_argument(
        "--num", type=int, help="number of prompts (default: all of a file or builtin:, 100 for shapes:)"
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the prompts, the noise and the distractors"
    )
    parser.add_argument("--batch-size", type=int, default=8, help="videos generated per call")
    parser.add_argument(
        "--num-distractors", type=int, default=99, help="other prompts each video's prompt is ranked against"
    )
    parser.add_argument(
        "--ground-truth",
        action="store_true",
        help="add a row scoring rendered ShapesDataset videos of the prompts (the paper's ground-truth row)",
    )
    parser.add_argument(
        "--stage",
        metavar="NAME",
        help="score one stage alone: the base from text, or an SR stage on ground-truth conditions (each "
        "prompt's ShapesDataset scene at the stage's size, viewed at the previous stage's shape); "
        "--ground-truth then renders at that stage's size",
    )
    parser.add_argument(
        "--random-init",
        action="store_true",
        help="ignore weight files: random U-Nets, fixed seed (a pipeline smoke test, not a measurement)",
    )
    parser.add_argument(
        "--threads", type=int, help="CPU threads for torch (default: torch's choice; 1 on a shared CPU)"
    )
    parser.add_argument("--device", help="where to generate and score (default: cuda if available, else cpu)")
    parser.add_argument("--out", default="eval_results.json", help="JSON file for the rows and settings")


def parse_cascade_spec(spec: str) -> tuple[str, str]:
    """'label=path' -> (label, path); a bare name or path labels itself by its name (an existing path that
    contains '=' is taken whole)."""
    label, sep, target = spec.partition("=")
    if not sep or Path(spec).expanduser().exists():
        return Path(spec).stem if spec.endswith((".yaml", ".yml")) else Path(spec).name or spec, spec
    if not label.strip() or not target.strip():
        raise UserError(f"--cascade {spec!r}: write LABEL=CASCADE with both parts, e.g. original=tiny")
    return label.strip(), target.strip()


def steps_label(cascade, steps, stage: str | None = None) -> str:
    """Sampling steps per stage, e.g. "base:16 tsr1:8 ssr1:8" (the paper's base steps / SR steps); with
    `stage`, that stage's alone."""
    plan = cascade.sampling_plan(steps)
    return " ".join(f"{s.name}:{n}" for s, n, _ in plan if stage is None or s.name == stage)


def batch_maker(cascade, prompts, guidance, steps, seed, stage=None, conditions=None, on_stage=None):
    """(start, stop) -> uint8 videos [stop - start, T, H, W, C] of prompts[start:stop], noise seeded by
    seed + start: the whole cascade (calling `on_stage(name)` as each stage starts), or with `stage` that
    stage alone (SR stages from `conditions`)."""

    def make(start: int, stop: int) -> np.ndarray:
        kwargs = dict(seed=seed + start, steps=steps, guidance=guidance)
        if stage is None:
            batch = prompts[start:stop]
            return np.asarray(cascade.generate(batch, progress=False, on_stage=on_stage, **kwargs).videos)
        condition = None if conditions is None else conditions[start:stop]
        return to_uint8(cascade.generate_stage(stage, prompts[start:stop], condition, **kwargs))

    return make


def generate_timed(make, num: int, batch_size: int, bar) -> tuple[np.ndarray, float]:
    """Videos for prompts 0..num-1 in batches of `make` -> (uint8 [N, T, H, W, C], wall seconds per video)."""
    chunks, seconds = [], 0.0
    for start in range(0, num, batch_size):
        stop = min(start + batch_size, num)
        t0 = time.perf_counter()
        chunks.append(make(start, stop))
        seconds += time.perf_counter() - t0
        bar.update(stop - start)
    return np.concatenate(chunks), seconds / num


def score(videos, prompts, attributes, scorer, num_distractors: int, seed: int) -> dict:
    """CLIP columns (with a scorer) and judge columns (when every prompt has attributes), percentages; with
    the judge also `judged`, each video's prompt and colour / shape / motion verdicts (True, False, None),
    and `judge_motion_by_class`, (right, judged) per prompted motion."""
    out = {}
    if scorer is not None:
        clip = scorer.scores(videos, prompts, num_distractors, torch.Generator().manual_seed(seed))
        out.update(clip_score=clip["clip_score"], clip_r_precision=clip["clip_r_precision"])
    if all(a is not None for a in attributes):
        from imagen_video.eval import judge

        objects = judge.detect_each(videos, attributes)  # once, for the verdicts and the R-precision
        judged = judge.judge_each(videos, attributes, objects)
        rates = judge.accuracy(judged)
        out.update({f"judge_{k}": 100.0 * rates[k] for k in ("colour", "shape", "motion")})
        out["judged"] = tuple({"prompt": p, **j} for p, j in zip(prompts, judged, strict=True))
        out["judge_motion_by_class"] = judge.motion_by_class(judged, attributes) or None
        generator = torch.Generator().manual_seed(seed)
        out["judge_r_precision"] = judge.judge_r_precision(
            videos, attributes, num_distractors, generator, objects=objects
        )
    return out


def ground_truth_videos(attributes: list[dict], stage, seed: int) -> np.ndarray:
    """Render each prompt's scene (its attributes) with ShapesDataset at the final stage's size and fps."""
    from imagen_video.data.shapes import NONE, render, scene_attributes

    rng = np.random.default_rng(seed)
    videos = []
    for a in attributes:
        motion = a["motion"] if a["motion"] != NONE else "still"  # a caption naming no motion: a still scene
        second = (a["color2"], a["shape2"]) if a["count"] == 2 else None
        scene = scene_attributes(
            rng, a["color"], a["shape"], motion, stage.frames, stage.height, stage.width, stage.fps, second
        )
        videos.append(render(scene, stage.frames, stage.height, stage.width))
    return np.stack(videos)


def ground_truth_conditions(
    cascade, stage_name: str, attributes: list[dict], seed: int
) -> torch.Tensor | None:
    """An SR stage's conditions for --stage: each prompt's scene rendered at the stage's size and fps
    (ground_truth_videos), viewed at the previous stage's shape (data.stage_condition); None for the base."""
    from imagen_video.data.views import stage_condition
    from imagen_video.io import from_uint8

    index = cascade.stages.index(cascade.stage(stage_name))
    if index == 0:
        return None
    stage, previous = cascade.stages[index], cascade.stages[index - 1]
    clips = from_uint8(ground_truth_videos(attributes, stage, seed))  # [N, C, T, H, W] in [-1, 1]
    return stage_condition(clips, stage.fps, *stage.shape, stage.fps, *previous.shape, previous.fps)


def judge_notes(attributes: list[dict | None], ground_truth: bool, what: str = "--ground-truth") -> list[str]:
    """The table's note when some prompts have no attributes (no judge columns); `what` (--ground-truth, or
    --stage of an SR stage) renders the prompts' scenes and needs them."""
    missing = sum(a is None for a in attributes)
    if not missing:
        return []
    if ground_truth:
        raise UserError(
            f"{what} renders ShapesDataset scenes; it needs shapes prompts (shapes:heldout) or "
            f"annotated ones (builtin:paraphrases, a .jsonl file); {missing} prompts have no attributes"
        )
    return [
        "judge columns need ShapesDataset prompts (see data/shapes.py) or annotated ones (a .jsonl file); "
        f"{missing} of {len(attributes)} prompts do not parse"
    ]


def evaluate(
    cascades: list[tuple[str, str | Cascade]],
    prompts: list[str],
    guidances: list[str],
    scorer=None,
    steps: StepCounts | None = None,
    seed: int = 0,
    batch_size: int = 8,
    num_distractors: int = 99,
    ground_truth: bool = False,
    random_init: bool = False,
    device: str | torch.device = "cpu",
    attributes: list[dict | None] | None = None,
    stage: str | None = None,
) -> tuple[list[EvalRow], list[str]]:
    """One row per (cascade, guidance), plus the ground-truth row if asked -> (rows, notes). A cascade is
    given as (label, packaged name | folder | YAML) or (label, Cascade object); attributes (one per prompt,
    None: unknown) default to parse_caption of each prompt. With `stage`, each row samples that stage alone
    (SR stages on ground-truth conditions) and the ground-truth row is rendered at its size."""
    from imagen_video.cascade import Cascade, parse_stage_guidance

    for spec in guidances:
        parse_stage_guidance(spec, "--guidance")  # a bad spec fails before any generation
    attributes = caption_attributes(prompts) if attributes is None else list(attributes)
    if len(attributes) != len(prompts):
        raise ValueError(f"{len(attributes)} attributes for {len(prompts)} prompts")
    loaded = [
        (label, spec if isinstance(spec, Cascade) else Cascade.load(spec, random_init=random_init))
        for label, spec in cascades
    ]
    needs_scenes = stage is not None and any(c.stage(stage) is not c.stages[0] for _, c in loaded)
    notes = judge_notes(
        attributes, ground_truth or needs_scenes, "--stage" if needs_scenes else "--ground-truth"
    )
    if stage is not None:
        source = ", SR stages from the prompts' scenes at the previous stage's shape" if needs_scenes else ""
        notes.append(f"--stage {stage}: each row samples that stage alone{source}")
    distinct = len(set(prompts))
    if min(num_distractors, distinct - 1) < num_distractors:
        notes.append(
            f"CLIP R-precision ranked each prompt against {max(distinct - 1, 0)} other prompts "
            f"(fewer than {num_distractors} distinct others)"
        )
    rows, scored_stage = [], None
    bar = tqdm(total=len(cascades) * len(guidances) * len(prompts), desc="eval", unit="video")
    while loaded:  # popped: a cascade's U-Nets are freed once its rows are done
        label, cascade = loaded.pop(0)
        cascade.to(device)
        scored_stage = scored_stage or (cascade.stage(stage) if stage else cascade.stages[-1])
        for guidance in guidances:  # stage names of per-stage specs, before any generation
            cascade.sampling_plan(steps, guidance)
        conditions = ground_truth_conditions(cascade, stage, attributes, seed) if stage else None
        method = f"{label}:{stage}" if stage else label
        make = batch_maker(cascade, prompts, guidances[0], steps, seed, stage, conditions)
        make(0, 1)  # untimed warm-up: loads weights and the text encoder
        for guidance in guidances:
            bar.set_postfix_str(f"{method} {guidance}")

            def show(name: str, method=method, guidance=guidance) -> None:
                bar.set_postfix_str(f"{method} {guidance}: {name}")  # which stage of the current batch

            make = batch_maker(cascade, prompts, guidance, steps, seed, stage, conditions, show)
            videos, seconds = generate_timed(make, len(prompts), batch_size, bar)
            metrics = score(videos, prompts, attributes, scorer, num_distractors, seed)
            rows.append(
                EvalRow(
                    method,
                    guidance,
                    steps_label(cascade, steps, stage),
                    len(prompts),
                    **metrics,
                    seconds_per_video=seconds,
                )
            )
    bar.close()
    if ground_truth:
        videos = ground_truth_videos(attributes, scored_stage, seed)
        metrics = score(videos, prompts, attributes, scorer, num_distractors, seed)
        rows.append(EvalRow("ground truth", "–", "–", len(prompts), **metrics))
    return rows, notes


def run(args: argparse.Namespace) -> int:
    for name in ("batch_size", "num_distractors"):
        if getattr(args, name) < 1:
            raise UserError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.threads is not None and args.threads < 1:
        raise UserError(f"--threads must be >= 1, got {args.threads}")
    steps = parse_steps(args.steps, "--steps")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    cascades = [parse_cascade_spec(s) for s in args.cascade]
    labels = [label for label, _ in cascades]
    if len(set(labels)) != len(labels):
        raise UserError(
            f"--cascade labels must differ, got {labels}; name them, e.g. original=tiny fast=other"
        )
    prompts, attributes = load_prompts(args.prompts, args.num, args.seed)
    try:
        device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    except RuntimeError:
        raise UserError(f"--device {args.device!r} not understood; use cpu, cuda or cuda:N") from None
    scorer = None
    if args.clip:
        from imagen_video.eval.clip import ClipScorer

        scorer = ClipScorer(args.clip, device=device)
    rows, notes = evaluate(
        cascades,
        prompts,
        list(args.guidance),
        scorer=scorer,
        steps=steps,
        seed=args.seed,
        batch_size=args.batch_size,
        num_distractors=args.num_distractors,
        ground_truth=args.ground_truth,
        random_init=args.random_init,
        device=device,
        attributes=attributes,
        stage=args.stage,
    )
    if args.random_init:
        notes.append("--random-init: the U-Nets were random (fixed seed), so this is a smoke test")
    settings = {
        "cascades": [{"label": label, "cascade": spec} for label, spec in cascades],
        "prompts": args.prompts,
        "num_prompts": len(prompts),
        "guidance": list(args.guidance),
        "steps": steps,
        "seed": args.seed,
        "batch_size": args.batch_size,
        "clip": args.clip,
        "num_distractors": args.num_distractors,
        "torch_threads": torch.get_num_threads(),
        "device": str(device),
        "stage": args.stage,
    }
    print(markdown_table(rows, notes), end="")
    try:
        write_json(args.out, results_json(rows, settings, notes))
    except OSError as err:
        raise UserError(f"--out {args.out!r}: cannot write the results there ({err})") from None
    print(f"wrote {args.out}")
    return 0
