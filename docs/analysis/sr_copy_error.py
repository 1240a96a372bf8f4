"""Does an SR stage beat simply copying its condition? x-prediction error per log_snr vs the trivial answer.

For N held-out ShapesDataset scenes rendered at the stage's size (the target x) and viewed at the previous
stage's shape (the condition c): at each log_snr, z = alpha x + sigma eps and x_hat = alpha z - sigma
v_hat(z, c, text) (the text-conditioned branch, no guidance). The table gives the mean x-MSE over all pixels
on the frames the condition carries (`given`: every frame of an SSR, the even frames of a 2x TSR) and on the
others (`new`), for x_hat with c noise-augmented at the stage's own cond_aug_level as in sampling (`aug`),
x_hat with the clean c and level 0 (`clean`), the trivial predictor that returns the clean c brought to the
stage's shape (frames repeated, bilinear upsampling: `copy c`), and x_hat when each clip is given another
clip's augmented condition (`wrong c`: how much the stage relies on c). The clean condition holds the given
frames exactly, so a stage that reproduces them has `clean` near 0 there at every log_snr.

    python docs/analysis/sr_copy_error.py [CASCADE] [N] [STAGE ...]     # default: tiny 32, every SR stage
"""

from __future__ import annotations

import sys

import torch

from imagen_video.cascade import Cascade, augment, cond_aug_log_snr, condition_to_shape
from imagen_video.data.shapes import shapes_prompts
from imagen_video.diffusion import alpha_sigma_from_log_snr, x_from_z_v
from imagen_video.eval.cli import ground_truth_conditions, ground_truth_videos
from imagen_video.eval.prompt_sets import caption_attributes
from imagen_video.io import from_uint8

LOG_SNRS = (-6.0, -3.0, -1.0, 1.0, 3.0, 5.0)


def frame_split(error: torch.Tensor, factor: int) -> tuple[float, float]:
    """Mean of error [B, C, T, H, W] on the frames the condition carries (every `factor`-th) and the rest."""
    given = error[:, :, ::factor].mean().item()
    if factor == 1:
        return given, 0.0
    return given, torch.cat([error[:, :, i::factor] for i in range(1, factor)], 2).mean().item()


@torch.no_grad()
def stage_table(cascade: Cascade, name: str, n: int) -> list[str]:
    """Markdown rows for one SR stage: x-MSE with c augmented, clean, copied and wrong, per log_snr."""
    stage = cascade.stage(name)
    previous = cascade.stages[cascade.stages.index(stage) - 1]
    factor = stage.frames // previous.frames
    prompts = shapes_prompts("heldout", n, seed=0)
    attributes = caption_attributes(prompts)
    x = from_uint8(ground_truth_videos(attributes, stage, 0)).float()
    cond = ground_truth_conditions(cascade, name, attributes, 0)
    copy = condition_to_shape(cond, *stage.shape, fill=stage.frame_fill)
    g = torch.Generator().manual_seed(0)
    lowres = augment(copy, stage.cond_aug_level, g)
    wrong = torch.roll(lowres, 1, 0)
    aug, clean = cond_aug_log_snr(stage.cond_aug_level, n), cond_aug_log_snr(0.0, n)
    emb, mask = cascade.text_encoder.encode(prompts)
    unet = cascade.unet(name)
    copy_given, copy_new = frame_split((copy - x) ** 2, factor)
    rows = []
    for log_snr in LOG_SNRS:
        ls = torch.full((n,), log_snr)
        alpha, sigma = alpha_sigma_from_log_snr(torch.tensor(log_snr))
        z = alpha * x + sigma * torch.randn(x.shape, generator=g)
        cells = []
        for c, level in ((lowres, aug), (copy, clean), (wrong, aug)):
            x_hat = x_from_z_v(z, unet(z, ls, emb, mask, c, level), alpha, sigma)
            cells.append(frame_split((x_hat - x) ** 2, factor))
        (given, new), (clean_given, clean_new), (wrong_given, wrong_new) = cells
        row = [name, f"{log_snr:+.0f}", *(f"{e:.4f}" for e in (given, clean_given, copy_given, wrong_given))]
        new_cells = (new, clean_new, copy_new, wrong_new)
        row += [f"{e:.4f}" for e in new_cells] if factor > 1 else ["–"] * 4
        rows.append("| " + " | ".join(row) + " |")
    return rows


def main(cascade_name: str, n: int, names: list[str]) -> None:
    torch.set_num_threads(2)
    cascade = Cascade.load(cascade_name)
    names = names or [s.name for s in cascade.stages[1:]]
    print(f"x-MSE on {n} held-out scenes, {cascade_name}; given: frames the condition carries, new: the rest")
    columns = [f"{part}: {c}" for part in ("given", "new") for c in ("aug", "clean", "copy c", "wrong c")]
    print("| stage | log_snr | " + " | ".join(columns) + " |")
    print("|---" * 10 + "|")
    for name in names:
        print("\n".join(stage_table(cascade, name, n)), flush=True)


if __name__ == "__main__":
    args = sys.argv[1:]
    main(args[0] if args else "tiny", int(args[1]) if len(args) > 1 else 32, args[2:])
