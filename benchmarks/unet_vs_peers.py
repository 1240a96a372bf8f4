"""Train-step and inference speed of our VideoUNet vs lucidrains' imagen-pytorch Unet3D and diffusers'
UNet3DConditionModel, side by side in one process, at the same input shape and comparable parameter counts.

Peers are optional and not dependencies of this package; install them without their heavy extras:

    pip install --no-deps imagen-pytorch diffusers
    python benchmarks/unet_vs_peers.py              # CPU, all threads
    python benchmarks/unet_vs_peers.py --threads 1  # steadier on a busy machine
    python benchmarks/unet_vs_peers.py --device cuda --bf16   # GPU, bfloat16 autocast for all three

imagen-pytorch's package `__init__` imports torchvision and its `t5` module fetches a config from the hub at
import, so only `imagen_pytorch/imagen_video.py` is loaded, with a stand-in `imagen_pytorch.t5` that reports
the text width. Each rep runs every model's train step (forward + backward + AdamW) and inference forward in
a rotating order, so machine noise hits all models alike; the medians and the ratios peer / ours are printed.
All three use fused AdamW (lr 1e-4) and an MSE loss against a fixed target. The text mask is all True (32 real
tokens): ours and imagen-pytorch receive it, diffusers' UNet3D has no text-mask input.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import sys
import time
import types
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from imagen_video.models import UNetConfig, VideoUNet

INSTALL_HINT = "pip install --no-deps imagen-pytorch diffusers"


# The shared skeleton: 4 levels of widths 48/96/192/192 at 32/16/8/4 px, spatial self-attention and text
# cross-attention at the three coarser levels, temporal attention. Depth: ours and imagen-pytorch take
# 1, 1, 3, 3 ResBlocks per level on the way down (deeper where it is cheap, as in Imagen's Efficient U-Net);
# diffusers' UNet3DConditionModel takes one depth for all levels: 1.
WIDTHS = (48, 96, 192, 192)
ATTENTION = (False, True, True, True)


def ours_config(text_dim: int) -> UNetConfig:
    """Our base-stage layout on the shared skeleton."""
    return UNetConfig(
        channels=WIDTHS[0],
        channel_mult=tuple(w // WIDTHS[0] for w in WIDTHS),
        num_res_blocks=(1, 1, 3, 3),
        spatial_attention=ATTENTION,
        cross_attention=ATTENTION,
        temporal="attention",
        temporal_levels=(True,) * len(WIDTHS),
        head_dim=32,
        norm_groups=16,
        text_dim=text_dim,
    )


def load_imagen_video_module() -> types.ModuleType:
    """Load `imagen_pytorch/imagen_video.py` alone, with a stand-in `imagen_pytorch.t5` module."""
    spec = importlib.util.find_spec("imagen_pytorch")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"imagen-pytorch is not installed ({INSTALL_HINT})")
    pkg_dir = spec.submodule_search_locations[0]
    pkg = types.ModuleType("imagen_pytorch")
    pkg.__path__ = [pkg_dir]
    t5 = types.ModuleType("imagen_pytorch.t5")
    t5.DEFAULT_T5_NAME = "benchmark-stand-in"
    t5.get_encoded_dim = lambda name: 384
    t5.t5_encode_text = lambda *args, **kwargs: (_ for _ in ()).throw(RuntimeError("no T5 in the benchmark"))
    sys.modules.setdefault("imagen_pytorch", pkg)
    sys.modules.setdefault("imagen_pytorch.t5", t5)
    mod_spec = importlib.util.spec_from_file_location(
        "imagen_pytorch.imagen_video", os.path.join(pkg_dir, "imagen_video.py")
    )
    module = importlib.util.module_from_spec(mod_spec)
    sys.modules[mod_spec.name] = module
    mod_spec.loader.exec_module(module)
    return module


@dataclass
class Contender:
    name: str
    model: nn.Module
    forward: Callable  # (x, t, text_emb, text_mask) -> v


def build_ours(text_dim: int) -> Contender:
    model = VideoUNet(ours_config(text_dim))

    def forward(x, t, text_emb, text_mask):
        log_snr = -2.0 * torch.log(torch.tan(t * torch.pi / 2).clamp(min=1e-4))
        return model(x, log_snr, text_emb, text_mask)

    return Contender("ours VideoUNet", model, forward)


def build_imagen_pytorch(text_dim: int) -> Contender:
    module = load_imagen_video_module()
    model = module.Unet3D(
        dim=WIDTHS[0],
        dim_mults=tuple(w // WIDTHS[0] for w in WIDTHS),
        num_resnet_blocks=(0, 0, 2, 2),  # each level has one ResNet block plus these
        layer_attns=ATTENTION,
        layer_cross_attns=ATTENTION,
        text_embed_dim=text_dim,
    )

    def forward(x, t, text_emb, text_mask):
        return model(x, t, text_embeds=text_emb, text_mask=text_mask)

    return Contender("imagen-pytorch Unet3D", model, forward)


def build_diffusers(text_dim: int) -> Contender:
    from diffusers import UNet3DConditionModel

    model = UNet3DConditionModel(
        in_channels=3,
        out_channels=3,
        down_block_types=tuple("CrossAttnDownBlock3D" if a else "DownBlock3D" for a in ATTENTION),
        up_block_types=tuple("CrossAttnUpBlock3D" if a else "UpBlock3D" for a in reversed(ATTENTION)),
        block_out_channels=WIDTHS,
        layers_per_block=1,
        cross_attention_dim=text_dim,
        attention_head_dim=4,  # diffusers' UNet3D reads this as the head count: 24-48 dims per head
        norm_num_groups=16,
    )

    def forward(x, t, text_emb, text_mask):
        return model(x, t * 1000, encoder_hidden_states=text_emb).sample

    return Contender("diffusers UNet3DConditionModel", model, forward)


def timed(fn: Callable, device: torch.device) -> tuple[float, float]:
    """(wall seconds, this process's CPU seconds) of fn(), synchronising the GPU around it.

    On a shared machine CPU seconds are the steadier measure of work; wall seconds are what a user waits.
    """
    if device.type == "cuda":
        torch.cuda.synchronize()
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - wall, time.process_time() - cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--size", type=int, default=32, help="height = width")
    parser.add_argument("--text-len", type=int, default=32)
    parser.add_argument("--text-dim", type=int, default=384)
    parser.add_argument("--reps", type=int, default=5, help="timed reps per model (after one warm-up)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--only", nargs="*", default=["ours", "imagen", "diffusers"])
    parser.add_argument(
        "--threads", type=int, default=None, help="CPU threads (1 is steadier on a busy machine)"
    )
    parser.add_argument("--bf16", action="store_true", help="bfloat16 autocast for every model")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    builders = {"ours": build_ours, "imagen": build_imagen_pytorch, "diffusers": build_diffusers}
    contenders = []
    for key in args.only:
        try:
            contenders.append(builders[key](args.text_dim))
        except ImportError as err:
            print(f"skipping {key}: {err}; install the peers with: {INSTALL_HINT}")
    if not contenders:
        return 1

    b, t_len = args.batch, args.text_len
    x = torch.randn(b, 3, args.frames, args.size, args.size, device=device)
    target = torch.randn_like(x)
    t = torch.rand(b, device=device)
    text_emb = torch.randn(b, t_len, args.text_dim, device=device)
    text_mask = torch.ones(b, t_len, dtype=torch.bool, device=device)
    print(
        f"device {device} | torch {torch.__version__} | threads {torch.get_num_threads()} | "
        f"input {b}x3x{args.frames}x{args.size}x{args.size}, text {t_len}x{args.text_dim}"
        f"{' | bf16 autocast' if args.bf16 else ''}"
    )

    def autocast():
        return torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.bf16)

    steps = {}
    for c in contenders:
        c.model.to(device)
        optimizer = torch.optim.AdamW(c.model.parameters(), lr=1e-4, fused=True)

        def train_step(c=c, optimizer=optimizer):
            with autocast():
                loss = F.mse_loss(c.forward(x, t, text_emb, text_mask).float(), target)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

        def infer(c=c):
            with torch.no_grad(), autocast():
                c.forward(x, t, text_emb, text_mask)

        steps[c.name] = (train_step, infer)

    kinds = ("train", "infer", "train_cpu", "infer_cpu")
    times = {c.name: {k: [] for k in kinds} for c in contenders}
    for rep in range(args.reps + 1):
        order = contenders[rep % len(contenders) :] + contenders[: rep % len(contenders)]
        for c in order:
            train_step, infer = steps[c.name]
            c.model.train()
            train, train_cpu = timed(train_step, device)
            c.model.eval()
            inference, infer_cpu = timed(infer, device)
            if rep > 0:  # rep 0 warms up
                for kind, value in zip(kinds, (train, inference, train_cpu, infer_cpu), strict=True):
                    times[c.name][kind].append(value)
            print(
                f"  rep {rep} {c.name}: train {train:.2f}s (cpu {train_cpu:.2f}s) infer {inference:.2f}s",
                flush=True,
            )

    ours = contenders[0].name
    med = {n: {k: statistics.median(v) for k, v in d.items()} for n, d in times.items()}
    print(
        f"\n{'model':31s} {'params':>7s} | {'train s':>7s} {'ratio':>6s} {'cpu':>6s} | "
        f"{'infer s':>7s} {'ratio':>6s}"
    )
    for c in contenders:
        n, m = c.name, med[c.name]
        params = sum(p.numel() for p in c.model.parameters()) / 1e6
        ratio = {k: m[k] / med[ours][k] for k in kinds}
        print(
            f"{n:31s} {params:6.1f}M | {m['train']:7.2f} {ratio['train']:5.2f}x {ratio['train_cpu']:5.2f}x | "
            f"{m['infer']:7.2f} {ratio['infer']:5.2f}x"
        )
    print(
        f"medians of {args.reps} reps; ratio = model's time / {ours}'s (> 1: ours is faster); "
        "cpu = the same ratio in process CPU seconds"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
