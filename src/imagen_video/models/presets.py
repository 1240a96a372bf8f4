"""U-Net configs for the seven cascade stages: the paper's sizes (SPEC §1) and tiny ones for tests / CPU.

The paper publishes each model's parameter count, temporal layer kind and where spatial attention is used,
not widths or depths. OUR CHOICE (assumptions): ADM/Imagen-style U-Nets; T5-XXL text (4096 wide); widths
grow towards low resolution ("Efficient U-Net"); spatial attention and text cross-attention only at the
coarse levels; channel multipliers picked so each count lands within ~6% of the paper's figure (see
`describe("paper")`). Level count is limited by the smallest frame side: 24 = 8 x 3 allows 4 levels.
"""

from __future__ import annotations

import torch

from imagen_video.errors import UserError
from imagen_video.models.unet import UNetConfig, VideoUNet

STAGES = ("base", "tsr1", "ssr1", "ssr2", "tsr2", "tsr3", "ssr3")
PAPER_PARAMS = {
    "base": 5.6e9,
    "tsr1": 1.7e9,
    "ssr1": 1.4e9,
    "ssr2": 1.2e9,
    "tsr2": 780e6,
    "tsr3": 630e6,
    "ssr3": 340e6,
}
PAPER_TOTAL = 11.6e9
T5_XXL_DIM = 4096
MINILM_DIM = 384


def _flags(levels: int, first_on: int | None) -> tuple[bool, ...]:
    """Per-level flags: True from level `first_on` down to the coarsest level (None: all False)."""
    return tuple(first_on is not None and level >= first_on for level in range(levels))


def _stage(
    channels: int,
    channel_mult: tuple[int, ...],
    num_res_blocks: int,
    temporal: str,
    attention_from: int | None,
    cross_from: int | None,
    text_dim: int,
    lowres: bool,
    temporal_from: int = 0,
    **extra,
) -> UNetConfig:
    levels = len(channel_mult)
    return UNetConfig(
        channels=channels,
        channel_mult=channel_mult,
        num_res_blocks=num_res_blocks,
        spatial_attention=_flags(levels, attention_from),
        cross_attention=_flags(levels, cross_from),
        temporal=temporal,
        temporal_levels=_flags(levels, temporal_from),
        text_dim=text_dim,
        lowres_channels=3 if lowres else 0,
        **extra,
    )


def paper() -> dict[str, UNetConfig]:
    """The seven Imagen Video U-Nets (SPEC §1 table); widths and depths are OUR CHOICE, see module doc."""
    t = T5_XXL_DIM
    return {
        # 16 x 24 x 40: temporal attention everywhere, spatial attention at 12x20 and below (4 levels);
        # max_attention_tokens lets it run up to 64x64 frames.
        "base": _stage(448, (1, 2, 4, 8), 3, "attention", 1, 1, t, False, max_attention_tokens=1024),
        # 32 x 24 x 40 TSR: temporal conv, no spatial attention (OUR CHOICE), cross-attention at 6x10 and 3x5.
        "tsr1": _stage(320, (1, 2, 4, 6), 3, "conv", None, 2, t, True),
        # 32 x 48 x 80 SSR: spatial attention at 12x20 and below (5 levels).
        "ssr1": _stage(192, (1, 2, 4, 6, 8), 3, "conv", 2, 2, t, True, max_attention_tokens=1024),
        # 32 x 192 x 320 SSR: spatial attention only at the two coarsest levels (12x20, 6x10 of 6 levels).
        "ssr2": _stage(128, (1, 2, 4, 8, 10, 12), 2, "conv", 4, 3, t, True, max_attention_tokens=1024),
        # 64 and 128 x 192 x 320 TSRs: fully convolutional apart from text cross-attention at 24x40 and below.
        "tsr2": _stage(160, (1, 2, 4, 8, 8), 2, "conv", None, 3, t, True),
        "tsr3": _stage(160, (1, 2, 4, 6, 8), 2, "conv", None, 3, t, True),
        # 128 x 768 x 1280 SSR: fully convolutional (trained on crops); temporal convs and text
        # cross-attention only at the coarsest levels to keep 128-frame activations affordable.
        "ssr3": _stage(128, (1, 2, 4, 6, 7), 2, "conv", None, 4, t, True, temporal_from=2),
    }


def tiny() -> dict[str, UNetConfig]:
    """Tiny versions of the seven stages (layer kinds as in `paper`), MiniLM text: tests, CPU training."""
    t = MINILM_DIM
    small = dict(norm_groups=8, head_dim=32)
    return {
        "base": _stage(32, (1, 2, 2), 2, "attention", 1, 1, t, False, max_attention_tokens=256, **small),
        "tsr1": _stage(32, (1, 2, 2), 1, "conv", None, 2, t, True, **small),
        "ssr1": _stage(32, (1, 2, 2), 1, "conv", 2, 1, t, True, max_attention_tokens=256, **small),
        "ssr2": _stage(16, (1, 2, 4), 1, "conv", 2, 2, t, True, max_attention_tokens=256, **small),
        "tsr2": _stage(16, (1, 2, 4), 1, "conv", None, 2, t, True, **small),
        "tsr3": _stage(16, (1, 2, 4), 1, "conv", None, 2, t, True, **small),
        "ssr3": _stage(16, (1, 2, 4), 1, "conv", None, 2, t, True, temporal_from=1, **small),
    }


FAMILIES = {"paper": paper, "tiny": tiny}


def count_parameters(config: UNetConfig) -> int:
    """Number of parameters of VideoUNet(config), built on the meta device (no memory used)."""
    with torch.device("meta"):
        model = VideoUNet(config)
    return sum(p.numel() for p in model.parameters())


def _human(n: float) -> str:
    return f"{n / 1e9:.2f}B" if n >= 1e9 else f"{n / 1e6:.1f}M" if n >= 1e6 else f"{n / 1e3:.1f}K"


def describe(name: str) -> str:
    """Table of the family's stages: layer kinds, widths, parameter counts (and the paper's for "paper")."""
    if name not in FAMILIES:
        raise UserError(f"unknown U-Net preset family {name!r}; choose one of {', '.join(FAMILIES)}")
    is_paper = name == "paper"
    header = ["stage", "temporal", "spatial attn", "widths per level", "blocks", "params"]
    header += ["paper", "diff"] if is_paper else []
    rows, total = [], 0
    for stage, cfg in FAMILIES[name]().items():
        n = count_parameters(cfg)
        total += n
        levels = ",".join(str(i) for i, a in enumerate(cfg.spatial_attention) if a)
        row = [
            stage,
            cfg.temporal,
            f"levels {levels}" if levels else "none",
            "x".join(str(w) for w in cfg.widths),
            ",".join(str(d) for d in cfg.blocks_per_level),
            _human(n),
        ]
        if is_paper:
            row += [_human(PAPER_PARAMS[stage]), f"{100 * (n / PAPER_PARAMS[stage] - 1):+.1f}%"]
        rows.append(row)
    footer = ["total", "", "", "", "", _human(total)]
    if is_paper:
        footer += [_human(PAPER_TOTAL), f"{100 * (total / PAPER_TOTAL - 1):+.1f}%"]
    table = [header, *rows, footer]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    right = {i for i, h in enumerate(header) if h in ("params", "paper", "diff")}
    lines = [f"U-Net preset family {name!r} (parameters counted on the meta device)"]
    for r in table:
        lines.append(
            "  ".join(
                c.rjust(w) if i in right else c.ljust(w)
                for i, (c, w) in enumerate(zip(r, widths, strict=True))
            )
        )
    return "\n".join(line.rstrip() for line in lines)
