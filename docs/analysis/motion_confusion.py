"""Which motion the judge reads for each prompted motion: one stage alone (the base) on held-out prompts.

    python docs/analysis/motion_confusion.py [CASCADE] [--num 200] [--guidance constant:6] [--out FILE.json]

Runs on cuda if there is one. Prints, per prompted motion, the counts of the motions read off the generated
videos (and off rendered ground-truth videos of the same prompts, the judge's own ceiling at that size).
"""

from __future__ import annotations

import argparse
import collections
import json

import numpy as np
import torch

from imagen_video.cascade import Cascade
from imagen_video.eval.cli import batch_maker, ground_truth_videos
from imagen_video.eval.judge import detect_objects
from imagen_video.eval.prompt_sets import load_prompts


def confusion(videos: np.ndarray, attributes: list[dict]) -> dict[str, dict[str, int]]:
    """{prompted motion: {motion read ("-": no object found): count}}."""
    table = collections.defaultdict(collections.Counter)
    for video, a in zip(videos, attributes, strict=True):
        objects = detect_objects(video, a["count"])
        target = next((o for o in objects if o.color == a["color"]), objects[0] if objects else None)
        table[a["motion"]][target.motion if target else "-"] += 1
    return {m: dict(c.most_common()) for m, c in sorted(table.items())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cascade", nargs="?", default="tiny")
    parser.add_argument("--stage", default="base")
    parser.add_argument("--num", type=int, default=200)
    parser.add_argument("--guidance", default="constant:6")
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--out")
    args = parser.parse_args()
    torch.set_num_threads(2)
    cascade = Cascade.load(args.cascade).to("cuda" if torch.cuda.is_available() else "cpu")
    prompts, attributes = load_prompts("shapes:heldout", args.num, 0)
    make = batch_maker(cascade, prompts, args.guidance, None, 0, stage=args.stage)
    videos = np.concatenate(
        [make(s, min(s + args.batch_size, args.num)) for s in range(0, args.num, args.batch_size)]
    )
    result = {}
    for label, vs in (
        ("model", videos),
        ("ground truth", ground_truth_videos(attributes, cascade.stage(args.stage), 0)),
    ):
        result[label] = table = confusion(vs, attributes)
        right = sum(row.get(m, 0) for m, row in table.items())
        print(f"{label}: motion read as prompted in {right} of {args.num}")
        for motion, row in table.items():
            print(f"  {motion:>11}: {row}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"settings": vars(args), **result}, f, indent=1)


if __name__ == "__main__":
    main()
