"""Where in a cascade is an object's colour lost? The judge's colour on every stage's output of one run.

Generates held-out ShapesDataset prompts through the whole cascade (seed = the batch's first index, batches
of 25) keeping every stage's video, and counts per stage the videos whose object the judge reads in the
prompted colour; then lists the misses as (prompt index, prompted colour, colours read).

    python docs/analysis/stage_colour.py [CASCADE] [NUM] [GUIDANCE] [STEPS]
    python docs/analysis/stage_colour.py tiny-distilled 100 constant:6
    python docs/analysis/stage_colour.py tiny 50 base=constant:6,tsr=none,ssr1=none,ssr2=none
"""

from __future__ import annotations

import sys

import numpy as np
import torch

from imagen_video.cascade import Cascade
from imagen_video.cascade.stage import parse_steps
from imagen_video.eval.judge import detect_objects, judge_video
from imagen_video.eval.prompt_sets import load_prompts

BATCH = 25


def main(name: str, num: int, guidance: str, steps: str | None) -> None:
    cascade = Cascade.load(name)
    prompts, attributes = load_prompts("shapes:heldout", num, 0)
    right = {stage.name: 0 for stage in cascade.stages}
    misses = {stage.name: [] for stage in cascade.stages}
    for start in range(0, num, BATCH):
        result = cascade.generate(
            prompts[start : start + BATCH], seed=start, guidance=guidance, steps=parse_steps(steps),
            keep_stages=True, progress=False,
        )  # fmt: skip
        batch = attributes[start : start + BATCH]
        for output in result.stages:
            for k, (video, a) in enumerate(zip(np.asarray(output.videos), batch, strict=True)):
                if judge_video(video, a)["colour"]:
                    right[output.name] += 1
                else:
                    read = [o.color for o in detect_objects(video, a.get("count", 1))]
                    misses[output.name].append((start + k, a["color"], read))
        print(f"{min(start + BATCH, num)} prompts: colour right per stage {right}", flush=True)
    for stage, missed in misses.items():
        print(f"{stage} misses: {missed}")


if __name__ == "__main__":
    torch.set_num_threads(1)
    args = sys.argv[1:] + [None] * (4 - len(sys.argv[1:]))
    main(args[0] or "tiny", int(args[1] or 100), args[2] or "constant:6", args[3])
