"""Write a cascade folder that is one cascade with some stages (U-Net, sampler, steps) taken from others.

    python docs/analysis/swap_stages.py OUT BASE STAGE=FOLDER [STAGE=FOLDER ...]
    python docs/analysis/swap_stages.py runs/mixed tiny-distilled ssr1=runs/ssr1-s16 ssr2=runs/ssr2-s16

Used to put separately distilled SR students (each written as a copy of its teacher cascade with that one
stage replaced) into the fully distilled cascade. The text encoders must match.
"""

from __future__ import annotations

import sys

from imagen_video.cascade import Cascade
from imagen_video.distill.run import write_student


def main(out: str, base: str, swaps: list[str]) -> None:
    cascade = Cascade.load(base)
    for swap in swaps:
        name, _, folder = swap.partition("=")
        donor = Cascade.load(folder)
        if donor.config.text_encoder != cascade.config.text_encoder:
            raise SystemExit(f"{folder}'s text encoder differs from {base}'s")
        write_student(cascade, donor.stage(name), donor.unet(name), out)
        cascade = Cascade.load(out)
        stage = cascade.stage(name)
        print(f"{name} <- {folder}: {stage.sampler} {stage.steps} steps")


if __name__ == "__main__":
    if len(sys.argv) < 4:
        raise SystemExit(__doc__)
    main(sys.argv[1], sys.argv[2], sys.argv[3:])
