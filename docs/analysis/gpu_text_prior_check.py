"""GPU check of the base U-Net with the richer text prior (UNetConfig.text_prior_*, session 21).

The tiny base's U-Net (pretrained/tiny's config), random weights with every zero-initialised layer given
values, once with the shipped one-layer prior and once with two 512-wide layers, the noise level and a
rank-4 colour x pattern term, also as a guided-distillation student:

1. CUDA fp32 against CPU fp32 (TF32 off): max |difference| over the output's scale;
2. CUDA bf16 autocast against CUDA fp32: the same;
3. a train step (forward, MSE, backward, AdamW) eager and under torch.compile, side by side: the compiled
   step's loss and gradients against the eager one's, and the median step time of each (ms) at batch 32.

    python docs/analysis/gpu_text_prior_check.py        # needs CUDA
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "models"))
import yaml  # noqa: E402
from helpers import randomize_zero_init  # noqa: E402

from imagen_video.config import dataclass_from_dict  # noqa: E402
from imagen_video.models import UNetConfig, VideoUNet  # noqa: E402

RICH = dict(text_prior_width=512, text_prior_depth=2, text_prior_noise_level=True, text_prior_rank=4)
CONFIG = ROOT / "src/imagen_video/pretrained/tiny/cascade.yaml"


def batch(config, b: int, device: str, seed: int = 0) -> dict:
    """Random z [b, 3, 16, 16, 16], log_snr in [-8, 4], 3-12 text tokens (a third dropped), w in [0, 15]."""
    g = torch.Generator().manual_seed(seed)
    mask = torch.arange(12)[None] < torch.randint(3, 13, (b, 1), generator=g)
    mask[::3] = False
    kw = dict(
        z=torch.randn(b, 3, 16, 16, 16, generator=g),
        log_snr=torch.rand(b, generator=g) * 12 - 8,
        text_emb=torch.randn(b, 12, config.text_dim, generator=g),
        text_mask=mask,
    )
    if config.guidance_embedding:
        kw["guidance_weight"] = torch.rand(b, generator=g) * 15
    return {k: v.to(device) for k, v in kw.items()}


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.float() - b.float()).abs().max() / b.float().abs().max())


def step_times(model, kw, target, compiled: bool, reps: int = 20) -> tuple[float, float, list]:
    """Median ms of a train step, its first loss and first gradients (before any update)."""
    model = model.train()
    forward = torch.compile(model) if compiled else model
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)
    times, first = [], None
    for i in range(reps + 3):
        torch.cuda.synchronize()
        start = time.perf_counter()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = torch.nn.functional.mse_loss(forward(**kw).float(), target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if first is None:
            first = (loss.item(), [p.grad.detach().clone() for p in model.parameters() if p.grad is not None])
        optimizer.step()
        torch.cuda.synchronize()
        if i >= 3:
            times.append(1000 * (time.perf_counter() - start))
    return statistics.median(times), first[0], first[1]


def main() -> None:
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    base = dataclass_from_dict(UNetConfig, yaml.safe_load(CONFIG.read_text())["stages"][0]["unet"])
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}")
    timings = {}
    for label, changes in [
        ("shipped prior", {}),
        ("rich prior", RICH),
        ("rich prior, student", RICH | {"guidance_embedding": True}),
    ]:
        config = base.replace(text_prior_mean=True, **changes)
        torch.manual_seed(0)
        model = randomize_zero_init(VideoUNet(config), std=0.5).eval()
        cpu_kw = batch(config, 8, "cpu")
        with torch.no_grad():
            cpu = model(**cpu_kw)
            model.cuda()
            gpu_kw = {k: v.cuda() for k, v in cpu_kw.items()}
            gpu = model(**gpu_kw)
            with torch.autocast("cuda", dtype=torch.bfloat16):
                bf16 = model(**gpu_kw)
        print(
            f"{label}: {sum(p.numel() for p in model.prior_mean.parameters())} prior parameters; "
            f"CUDA fp32 vs CPU {relative(gpu.cpu(), cpu):.2e}, "
            f"bf16 autocast vs fp32 {relative(bf16, gpu):.2e}"
        )
        kw = batch(config, 32, "cuda", seed=1)
        target = torch.randn(32, 3, 16, 16, 16, device="cuda")
        state = {k: v.clone() for k, v in model.state_dict().items()}
        eager_ms, eager_loss, eager_grads = step_times(model, kw, target, compiled=False)
        model.load_state_dict(state)
        compiled_ms, compiled_loss, compiled_grads = step_times(model, kw, target, compiled=True)
        grad_error = max(
            relative(c, e) for c, e in zip(compiled_grads, eager_grads, strict=True) if e.abs().max() > 0
        )
        print(
            f"  train step, batch 32, bf16: eager {eager_ms:.1f} ms, compiled {compiled_ms:.1f} ms "
            f"({eager_ms / compiled_ms:.2f}x); first loss eager {eager_loss:.5f}, "
            f"compiled {compiled_loss:.5f}; "
            f"max gradient difference {grad_error:.2e} of each tensor's scale"
        )
        timings[label] = eager_ms, compiled_ms
    shipped, rich = timings["shipped prior"], timings["rich prior"]
    print(
        f"rich / shipped prior, step time: eager {rich[0] / shipped[0]:.2f}x, "
        f"compiled {rich[1] / shipped[1]:.2f}x"
    )


if __name__ == "__main__":
    main()
