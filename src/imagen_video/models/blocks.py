"""Space-time factorized U-Net blocks (Imagen Video §2.3, Video Diffusion Models).

Layout: inside the U-Net a video is a batch of frames `x [(b t), c, h, w]` stored channels-last, so the same
memory is also `[b, t, h, w, c]`: spatial convs see frames as the batch, and attention/temporal layers get
their token views (`[(b t), (h w), c]`, `[b, t, (h w), c]`) without copies.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn


def sinusoidal_embedding(x: Tensor, dim: int, max_period: float = 10000.0) -> Tensor:
    """Transformer sinusoidal features of scalars `x [B]` -> `[B, dim]` (cos | sin, DDPM timestep style)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=x.device, dtype=torch.float32) / half)
    args = x.float()[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    return F.pad(emb, (0, dim % 2))


def log_snr_to_embedding_input(log_snr: Tensor) -> Tensor:
    """Map log_snr to 1000 * t of the untruncated cosine schedule, t = atan(exp(-log_snr / 2)) / (pi / 2).

    As in the Progressive Distillation reference code: a bounded, monotone input for the sinusoidal embedding.
    """
    return 1000.0 * torch.atan(torch.exp(-0.5 * log_snr.float().clamp(-20.0, 20.0))) / (0.5 * math.pi)


class EmbeddingMLP(nn.Module):
    """Sinusoidal features of a scalar -> Linear -> SiLU -> Linear (the noise-level embedding of DDPM/ADM)."""

    def __init__(self, sinusoidal_dim: int, emb_dim: int):
        super().__init__()
        self.sinusoidal_dim = sinusoidal_dim
        self.net = nn.Sequential(nn.Linear(sinusoidal_dim, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))

    def forward(self, x: Tensor) -> Tensor:
        dtype = self.net[0].weight.dtype
        return self.net(sinusoidal_embedding(x, self.sinusoidal_dim).to(dtype))


def _zero_(module: nn.Module) -> nn.Module:
    """Zero a layer's parameters so its residual branch starts as the identity (standard for diffusion)."""
    for p in module.parameters():
        nn.init.zeros_(p)
    return module


def _tokens(x: Tensor) -> Tensor:
    """`[(b t), c, h, w]` channels-last -> `[(b t), h, w, c]` (a view)."""
    return x.permute(0, 2, 3, 1)


def _frames(tokens: Tensor) -> Tensor:
    """`[(b t), h, w, c]` -> `[(b t), c, h, w]` channels-last (a view when `tokens` is contiguous)."""
    return tokens.permute(0, 3, 1, 2)


class ResBlock(nn.Module):
    """GroupNorm-SiLU-conv3x3, FiLM by the embedding (scale-shift norm), SiLU-conv3x3, plus a (1x1) skip.

    Convs are spatial (1x3x3): frames are the batch. The embedding `emb [(b t), E]` is already SiLU'd.
    """

    def __init__(self, in_ch: int, out_ch: int, emb_dim: int, groups: int, dropout: float = 0.0):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, in_ch)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.film = nn.Linear(emb_dim, 2 * out_ch)
        self.norm2 = nn.GroupNorm(groups, out_ch, affine=False)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = _zero_(nn.Conv2d(out_ch, out_ch, 3, padding=1))
        self.skip = nn.Conv2d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = rearrange(self.film(emb), "n (two c) -> two n c 1 1", two=2)
        h = torch.addcmul(shift, self.norm2(h), scale + 1)
        h = self.conv2(self.dropout(F.silu(h)))
        return self.skip(x) + h


class Downsample(nn.Module):
    """Spatial 2x downsampling by a stride-2 3x3 conv (frames as batch)."""

    def __init__(self, ch: int):
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, stride=2, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)


class Upsample(nn.Module):
    """Spatial 2x nearest upsampling then a 3x3 conv (frames as batch)."""

    def __init__(self, ch: int):
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class SpatialSelfAttention(nn.Module):
    """Pre-LayerNorm multi-head self-attention over the h*w positions of each frame, residual."""

    def __init__(self, ch: int, head_dim: int):
        super().__init__()
        self.heads = max(ch // head_dim, 1)
        self.norm = nn.LayerNorm(ch)
        self.qkv = nn.Linear(ch, 3 * ch)
        self.out = _zero_(nn.Linear(ch, ch))

    def forward(self, x: Tensor) -> Tensor:
        n, _, height, width = x.shape
        tokens = rearrange(_tokens(x), "n h w c -> n (h w) c")
        q, k, v = rearrange(
            self.qkv(self.norm(tokens)), "n l (three h d) -> three n h l d", three=3, h=self.heads
        )
        o = rearrange(F.scaled_dot_product_attention(q, k, v), "n h l d -> n l (h d)")
        tokens = tokens + self.out(o)
        return _frames(rearrange(tokens, "n (h w) c -> n h w c", h=height, w=width))


class CrossAttention(nn.Module):
    """Pre-LayerNorm attention from every position of every frame to the text tokens (Imagen).

    `ctx [b, 1 + L, D]` holds a learned null token first, so a row whose text is fully masked attends to the
    null token only (the unconditional branch); `ctx_mask [b, 1 + L]` bool, True = attend (None: all).
    """

    def __init__(self, ch: int, ctx_dim: int, head_dim: int):
        super().__init__()
        self.heads = max(ch // head_dim, 1)
        self.norm = nn.LayerNorm(ch)
        self.q = nn.Linear(ch, ch)
        self.kv = nn.Linear(ctx_dim, 2 * ch)
        self.out = _zero_(nn.Linear(ch, ch))

    def forward(self, x: Tensor, ctx: Tensor, ctx_mask: Tensor | None) -> Tensor:
        n, _, height, width = x.shape
        b = ctx.shape[0]
        # all frames of a sample share its text: fold frames into the query length, no key/value copies
        tokens = rearrange(_tokens(x), "(b t) h w c -> b (t h w) c", b=b)
        q = rearrange(self.q(self.norm(tokens)), "b l (h d) -> b h l d", h=self.heads)
        k, v = rearrange(self.kv(ctx), "b s (two h d) -> two b h s d", two=2, h=self.heads)
        mask = None if ctx_mask is None else ctx_mask[:, None, None, :]
        o = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        tokens = tokens + self.out(rearrange(o, "b h l d -> b l (h d)"))
        return _frames(rearrange(tokens, "b (t h w) c -> (b t) h w c", h=height, w=width))


def rotate_frames(x: Tensor, base: float = 10000.0) -> Tensor:
    """Rotary position embedding over frames (RoFormer, Su et al. 2021) of `x [..., T, D]`, D even.

    Channel pairs (d, d + D/2) of frame t are rotated by t * base**(-2d/D), so that
    <rotate(q)_i, rotate(k)_j> depends on the frame offset j - i and on the content of q and k.
    """
    frames, dim = x.shape[-2:]
    half = dim // 2
    dtype = torch.float64 if x.dtype == torch.float64 else torch.float32  # angles in >= fp32
    freqs = base ** (-torch.arange(half, device=x.device, dtype=dtype) / half)
    angles = torch.arange(frames, device=x.device, dtype=dtype)[:, None] * freqs[None]
    cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)


class TemporalAttention(nn.Module):
    """Pre-LayerNorm self-attention over frames at each position, with a learned relative position bias.

    Bias: one scalar per head per frame offset j - i, clamped to +-max_offset (Video Diffusion Models).
    The bias starts at zero and on time-symmetric data stays nearly symmetric in j - i (the tiny base's
    after 2900 steps: within 0.11), so the layer hardly tells forward from backward; `rotary` adds rotary
    embeddings of the frame index to q and k (OUR CHOICE): an offset signal that depends on content and is
    not symmetric from the start.
    `video_mask [b]` (1 = video, 0 = image) scales the residual so image samples skip the layer.
    """

    def __init__(self, ch: int, head_dim: int, max_offset: int = 32, rotary: bool = False):
        super().__init__()
        self.heads = max(ch // head_dim, 1)
        self.max_offset = max_offset
        self.rotary = rotary
        self.norm = nn.LayerNorm(ch)
        self.qkv = nn.Linear(ch, 3 * ch)
        self.rel_bias = nn.Parameter(torch.zeros(self.heads, 2 * max_offset + 1))
        self.out = _zero_(nn.Linear(ch, ch))

    def position_bias(self, frames: int) -> Tensor:
        """Bias `[heads, T, T]` with entry (i, j) = table[clamp(j - i, -M, M)]."""
        pos = torch.arange(frames, device=self.rel_bias.device)
        offset = (pos[None, :] - pos[:, None]).clamp(-self.max_offset, self.max_offset) + self.max_offset
        return self.rel_bias[:, offset]

    def forward(self, x: Tensor, frames: int, video_mask: Tensor | None) -> Tensor:
        n, _, height, width = x.shape
        tokens = rearrange(_tokens(x), "(b t) h w c -> b t (h w) c", t=frames)
        q, k, v = rearrange(
            self.qkv(self.norm(tokens)), "b t s (three h d) -> three (b s) h t d", three=3, h=self.heads
        )
        if self.rotary:
            q, k = rotate_frames(q), rotate_frames(k)
        bias = self.position_bias(frames).to(q.dtype)[None].expand(q.shape[0], -1, -1, -1)
        o = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        o = self.out(rearrange(o, "(b s) h t d -> b t s (h d)", t=frames, s=height * width))
        if video_mask is not None:
            o = o * video_mask[:, None, None, None]
        tokens = tokens + o
        return _frames(rearrange(tokens, "b t (h w) c -> (b t) h w c", h=height))


class TemporalConv(nn.Module):
    """Residual LayerNorm-SiLU-conv over frames (a kxk1x1 conv, zero padded) at each spatial position.

    Receptive radius kernel // 2 frames. `video_mask [b]` scales the residual so image samples skip it.
    """

    def __init__(self, ch: int, kernel: int = 3):
        super().__init__()
        self.kernel = kernel
        self.norm = nn.LayerNorm(ch)
        self.conv = _zero_(nn.Linear(kernel * ch, ch))

    def forward(self, x: Tensor, frames: int, video_mask: Tensor | None) -> Tensor:
        tokens = rearrange(_tokens(x), "(b t) h w c -> b t h w c", t=frames)
        h = F.silu(self.norm(tokens))
        pad = self.kernel // 2
        h = F.pad(h, (0, 0, 0, 0, 0, 0, pad, pad))
        # windows [b, t, h, w, (k c)]: one GEMM instead of k shifted ones
        windows = torch.cat([h[:, i : i + frames] for i in range(self.kernel)], dim=-1)
        o = self.conv(windows)
        if video_mask is not None:
            o = o * video_mask[:, None, None, None, None]
        return _frames(rearrange(tokens + o, "b t h w c -> (b t) h w c"))


class SpaceTimeConv(nn.Module):
    """Residual LayerNorm-SiLU-conv over a (k x 3 x 3) space-time window (a 3D conv, zero padded), OUR CHOICE.

    A factorized U-Net moves content between frames only at the same pixel (temporal layers) and within a
    frame (spatial layers), so "the object was one pixel to the right in the previous frame" is a product of
    two layers; this conv reads it directly. Receptive radius kernel // 2 frames; `video_mask [b]` scales the
    residual so image samples skip it.
    """

    def __init__(self, ch: int, kernel: int = 3):
        super().__init__()
        self.kernel = kernel
        self.norm = nn.LayerNorm(ch)
        self.conv = _zero_(nn.Conv3d(ch, ch, (kernel, 3, 3), padding=(kernel // 2, 1, 1)))

    def forward(self, x: Tensor, frames: int, video_mask: Tensor | None) -> Tensor:
        h = rearrange(F.silu(self.norm(_tokens(x))), "(b t) h w c -> b c t h w", t=frames)
        o = self.conv(h.contiguous(memory_format=torch.channels_last_3d))
        if video_mask is not None:
            o = o * video_mask[:, None, None, None, None]
        return x + rearrange(o, "b c t h w -> (b t) c h w")


def masked_text_mean(emb: Tensor, mask: Tensor) -> Tensor:
    """Mean of the token embeddings [B, L, D] over the valid tokens of mask [B, L]; 0 for a text with none."""
    masked = torch.where(mask[..., None], emb, 0.0)
    return masked.sum(1) / mask.sum(1, keepdim=True).clamp(min=1).to(emb.dtype)


def log_snr_features(log_snr: Tensor) -> Tensor:
    """[B] log_snr -> [B, 2]: log_snr / 8 and its square, the noise level as TextPriorMean reads it."""
    scaled = log_snr.float() / 8
    return torch.stack([scaled, scaled**2], 1)


class TextPriorMean(nn.Module):
    """b(c): a coarse video `[C, *GRID]` from an MLP of the masked-mean text, trilinearly upsampled to
    `[C, T, H, W]` (UNetConfig.text_prior_mean, OUR CHOICE). Zero-initialised output layer: b = 0 at first.
    Image samples (`video_mask` 0, or `skip_temporal`) get b's frame average. The MLP's output is scaled by
    SCALE: Adam's steps are scale-free, so this is a SCALE-times larger step for b, which must reach the data
    mean's size within a fine-tune (at 1, the direction's share grew ~1e-5 per step).

    Options (UNetConfig.text_prior_*): `depth` SiLU layers of width `hidden`; `noise_level` also feeds the
    MLP log_snr_features(log_snr), since E[x | c] at log_snr -3 is not E[x | c] at -10 scaled, with log_snr
    clamped to `log_snr_range` (the band it was fitted on: beyond it the MLP would extrapolate, e.g. to a
    35x larger b at the sampler's first step, log_snr -20, than at -8.3); `rank` K > 0 adds a colour x
    pattern term A(h) P(h), A [C, K], P [K, GRID] (zero-initialised A), as a coloured object's mean is a
    colour times a space-time pattern (docs/analysis/prior_head.py)."""

    GRID = (4, 4, 4)  # frames, rows, columns
    SCALE = 10.0

    def __init__(
        self,
        text_dim: int,
        hidden: int,
        channels: int,
        depth: int = 1,
        noise_level: bool = False,
        rank: int = 0,
        log_snr_range: tuple[float, float] | None = None,
    ):
        super().__init__()
        self.channels, self.noise_level, self.rank = channels, noise_level, rank
        self.log_snr_range = log_snr_range
        cells = math.prod(self.GRID)
        layers: list[nn.Module] = [nn.Linear(text_dim + 2 * noise_level, hidden), nn.SiLU()]
        for _ in range(depth - 1):
            layers += [nn.Linear(hidden, hidden), nn.SiLU()]
        self.net = nn.Sequential(*layers, _zero_(nn.Linear(hidden, channels * cells)))
        self.colour = _zero_(nn.Linear(hidden, channels * rank)) if rank else None
        self.pattern = nn.Linear(hidden, rank * cells) if rank else None

    def inputs(self, text_mean: Tensor, log_snr: Tensor) -> Tensor:
        """The MLP's input: the masked-mean text [B, D], with log_snr_features of log_snr clamped to
        `log_snr_range` when `noise_level`."""
        if not self.noise_level:
            return text_mean
        if self.log_snr_range is not None:
            log_snr = log_snr.clamp(*self.log_snr_range)
        return torch.cat([text_mean, log_snr_features(log_snr).to(text_mean.dtype)], 1)

    def head(self, inputs: Tensor) -> Tensor:
        """The coarse grid over SCALE, flat [B, C * prod(GRID)]: W h (+ A(h) P(h) when `rank`), h = MLP."""
        hidden = self.net[:-1](inputs)
        grid = self.net[-1](hidden)
        if self.rank:
            colour = self.colour(hidden).reshape(-1, self.channels, self.rank)
            pattern = self.pattern(hidden).reshape(-1, self.rank, math.prod(self.GRID))
            grid = grid + (colour @ pattern).flatten(1)
        return grid

    def forward(
        self,
        text_mean: Tensor,
        log_snr: Tensor,
        shape: tuple[int, int, int],
        video_mask: Tensor | None,
        skip_temporal: bool,
    ) -> Tensor:
        grid = self.SCALE * self.head(self.inputs(text_mean, log_snr))
        coarse = grid.reshape(-1, self.channels, *self.GRID)
        still = coarse.mean(2, keepdim=True)
        if skip_temporal:
            coarse = still
        elif video_mask is not None:
            mask = video_mask[:, None, None, None, None]
            coarse = mask * coarse + (1 - mask) * still
        return F.interpolate(coarse, size=shape, mode="trilinear", align_corners=True)
