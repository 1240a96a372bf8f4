"""Train-step time of the shipped tiny base U-Net (16 frames of 16x16, rotary + frame embedding) eager vs
`torch.compile`d (what `loop.compile: true` does), side by side in one process, at several batch sizes.

    python benchmarks/train_step_compile.py --device cuda           # bf16 autocast on CUDA, as training does
    python benchmarks/train_step_compile.py --batch 8 --reps 5      # CPU (compiling takes minutes there)

Each step is forward + v-style MSE + backward + AdamW; the medians over `--reps` steps (after two warm-up
steps; the compile time is printed on its own) and the ratio eager / compiled are printed per batch size.
"""

from __future__ import annotations

import argparse
import statistics

import torch
from unet_vs_peers import timed  # this folder: run as a script

from imagen_video.models import VideoUNet
from imagen_video.models.presets import tiny


def step_times(model, batch: int, device: torch.device, reps: int) -> tuple[float, float]:
    """(seconds of the first step, median seconds of `reps` later steps) of one train step at `batch`."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    z = torch.randn(batch, 3, 16, 16, 16, device=device)
    log_snr = torch.zeros(batch, device=device)
    text = torch.randn(batch, 32, 384, device=device)
    mask = torch.ones(batch, 32, dtype=torch.bool, device=device)
    mask[:, 12:] = False

    def train_step() -> None:
        with torch.autocast(device.type, torch.bfloat16, enabled=device.type == "cuda"):
            loss = (model(z, log_snr, text, mask).float() - z).square().mean()
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    def step() -> float:
        return timed(train_step, device)[0]

    first = step()
    step()
    return first, statistics.median(step() for _ in range(reps))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, nargs="+", default=[32, 128])
    parser.add_argument("--reps", type=int, default=20)
    args = parser.parse_args()
    device = torch.device(args.device)
    config = tiny()["base"].replace(temporal_rotary=True, frame_embedding=True)
    torch.manual_seed(0)
    eager = VideoUNet(config).to(device)
    compiled = VideoUNet(config).to(device)
    compiled.load_state_dict(eager.state_dict())
    compiled.compile()
    for batch in args.batch:
        _, t_eager = step_times(eager, batch, device, args.reps)
        first, t_compiled = step_times(compiled, batch, device, args.reps)
        print(
            f"batch {batch:4d}: eager {1e3 * t_eager:7.1f} ms/step, compiled {1e3 * t_compiled:7.1f} ms/step "
            f"(first step, compiling: {first:.1f} s); eager / compiled {t_eager / t_compiled:.2f}x",
            flush=True,
        )


if __name__ == "__main__":
    main()
