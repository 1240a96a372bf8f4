"""Where does a TSR lose the shape: on the frames its condition carries, or on the ones it draws in between?

The TSR alone on N held-out ground-truth conditions (as `imagen-video eval --stage tsr --ground-truth`:
same prompts, seeds per batch of 8, the stage's own steps and guidance), judged on all its frames, on the
frames the condition carries (even: `given`) and on the others (odd: `new`), beside the condition itself.
A TSR that copies what it is given scores the condition's shape on the given frames.

    python docs/analysis/tsr_frame_parity.py [CASCADE] [N] [STAGE]      # default: tiny 48 tsr
"""

from __future__ import annotations

import sys

import numpy as np
import torch

from imagen_video.cascade import Cascade
from imagen_video.data.shapes import shapes_prompts
from imagen_video.eval.cli import batch_maker, ground_truth_conditions
from imagen_video.eval.judge import judge_videos
from imagen_video.eval.prompt_sets import caption_attributes
from imagen_video.io import to_uint8

BATCH = 8


def main(cascade_name: str, n: int, name: str) -> None:
    torch.set_num_threads(2)
    cascade = Cascade.load(cascade_name)
    prompts = shapes_prompts("heldout", n, seed=0)
    attributes = caption_attributes(prompts)
    cond = ground_truth_conditions(cascade, name, attributes, 0)
    make = batch_maker(cascade, prompts, None, None, 0, name, cond)
    videos = np.concatenate([make(s, min(s + BATCH, n)) for s in range(0, n, BATCH)])  # [N, T, H, W, C]
    factor = videos.shape[1] // cond.shape[2]
    views = {
        "all frames": videos,
        "given frames": videos[:, ::factor],
        "new frames": np.concatenate([videos[:, i::factor] for i in range(1, factor)], 1),
        "condition": to_uint8(cond),
    }
    print(f"{cascade_name} {name} alone, {n} held-out ground-truth conditions: judge colour / shape / motion")
    for label, view in views.items():
        accuracy = judge_videos(view, attributes)
        cells = " / ".join(f"{100 * accuracy[k]:.1f} %" for k in ("colour", "shape", "motion"))
        print(f"{label:>12}: {cells}")


if __name__ == "__main__":
    args = sys.argv[1:]
    name = args[2] if len(args) > 2 else "tsr"
    main(args[0] if args else "tiny", int(args[1]) if len(args) > 1 else 48, name)
