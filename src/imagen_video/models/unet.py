"""VideoUNet: the space-time factorized U-Net of Imagen Video (§2.3, Fig. 7) predicting v."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import rearrange, repeat
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from imagen_video.diffusion import (
    alpha_sigma_from_log_snr,
    expand_like,
    guided_v,
    residual_z,
    v_from_residual_v,
)
from imagen_video.errors import UserError
from imagen_video.models.blocks import (
    CrossAttention,
    Downsample,
    EmbeddingMLP,
    ResBlock,
    SpaceTimeConv,
    SpatialSelfAttention,
    TemporalAttention,
    TemporalConv,
    TextPriorMean,
    Upsample,
    log_snr_to_embedding_input,
    masked_text_mean,
)

TEMPORAL_KINDS = ("attention", "conv")
COORDINATE_PLANES = 5


@dataclass(frozen=True)
class UNetConfig:
    """Shape of one Video U-Net. Per-level tuples have one entry per resolution level (len(channel_mult)).

    - `channels * channel_mult[i]` channels at level i; level i runs at (H / 2**i, W / 2**i); frames are never
      downsampled (time is mixed by temporal layers only). `num_res_blocks`: ResBlocks per level on the way
      down, one int or one per level (the way up has one more per level).
    - `spatial_attention`, `cross_attention`, `temporal_levels`: which levels get spatial self-attention, text
      cross-attention and temporal mixing after each ResBlock; `temporal` picks the temporal layer kind.
      The middle block uses the last level's choices.
    - `max_attention_tokens`: largest h*w a spatial self-attention layer may see (None = no limit).
    - `head_dim`: attention heads are width // head_dim wide; `context_dim` (default: the deepest width) is
      the width text tokens are projected to; `emb_dim` (default 4 * channels) the noise-embedding width.
    - `temporal_max_offset`: relative position bias entries per side (offsets beyond share the last one).
    - `temporal_rotary`: also rotary embeddings of the frame index in temporal attention (see
      blocks.TemporalAttention: without them, with a symmetric bias, the U-Net commutes with time reversal).
    - `spacetime_conv`: after each temporal layer also a residual (temporal_kernel x 3 x 3) conv
      (blocks.SpaceTimeConv, OUR CHOICE): a direct path for "moved by a pixel since the last frame".
    - `frame_embedding`: add an embedding of the absolute frame index to each frame's noise embedding
      (OUR CHOICE). From pure noise, a layer stack that only sees frame offsets gives every frame the same
      mean, so it cannot draw E[x | "moving left"], which depends on the frame; zero-initialised.
    - `coordinate_channels` (OUR CHOICE, CoordConv in space-time): five more input planes, the frame index t,
      row y, column x (each from -1/2 to 1/2 over the clip) and 4 t y, 4 t x (`coordinate_grid`), through a
      zero-initialised conv beside the input conv. E[x | "moving left"] - E[x | "moving right"] at high noise
      is roughly such a product (the object right early, left late); a toy learns the direction far sooner
      with them (docs/analysis/direction_toy.py, variant `prod`). Images see t = 0.
    - `text_prior_mean` (OUR CHOICE): the layers predict the residual over a text-conditioned prior mean
      b(c), a coarse video (4 frames x 4 x 4 per channel, trilinearly upsampled) from an MLP of the
      masked-mean text: v = v_layers - sigma b(c), so a zero-output U-Net predicts x = alpha z + sigma^2 b(c)
      (as `residual`, with b from the text). At high noise the ideal prediction is E[x | c], whose
      frame-dependent part (the object early vs late: the direction of motion) a U-Net learns only after a
      long plateau (docs/analysis/direction_toy.py); b(c) reaches it through one trained layer (a 4 x 4 x 4
      grid holds 89-98 % of E[x | a] - E[x | b] for left/right, up/down, growing/shrinking, red/blue at the
      tiny base's 16 x 16 x 16). Zero-initialised output: adding it to a trained model changes nothing at
      first. Images see b's frame average. With `guidance_embedding` (a guided-distillation student) b is
      guided in closed form, (1 + w) b(c) - w b(no text): the teacher's guided prior, as v is linear in b, so
      the student's layers need not learn the w-dependence of the prior's part.
    - `text_prior_width` (None: emb_dim), `text_prior_depth`, `text_prior_noise_level`, `text_prior_rank`:
      the prior's MLP width and SiLU layers, log_snr as a further input, and the rank of a colour x pattern
      term (TextPriorMean; OUR CHOICE). The defaults are the one-layer text-only prior of the first fits.
      `text_prior_log_snr_range` (lo, hi): the noise-level prior reads log_snr clamped to it (fit-prior sets
      it to the band of its statistics; None: unclamped).
    - `lowres_channels` > 0 makes a super-resolution model: the upsampled condition is concatenated to z and
      its augmentation level `cond_aug_log_snr` is embedded like the noise level.
    - `residual` (SR models only, OUR CHOICE after SRDiff, Li et al. 2022): the layers denoise the residual
      r = x - b over the condition's estimate b = alpha' c_aug (E[c | c_aug] for unit-variance c), seeing
      z_r = z - alpha b and returning v_r, so v = v_r - sigma b. An untrained (zero-output) U-Net then
      predicts x = alpha z + sigma^2 b (the exact denoiser of x ~ N(b, I)): the condition at high noise,
      which a plain SR U-Net has to learn to copy. Train it without augmentation to make b the clean one.
    - `guidance_embedding`: embed a scalar guidance weight w (guided-distillation students, Meng et al.).
    - `guidance_embedding_scale`: OUR CHOICE: the sinusoidal embedding sees w * 50, so w in [0, 20] spans
      the same [0, 1000] range as the noise level input.
    """

    in_channels: int = 3
    out_channels: int = 3
    channels: int = 64
    channel_mult: tuple[int, ...] = (1, 2, 4)
    num_res_blocks: int | tuple[int, ...] = 2
    spatial_attention: tuple[bool, ...] = (False, True, True)
    cross_attention: tuple[bool, ...] = (False, True, True)
    temporal: str = "attention"
    temporal_levels: tuple[bool, ...] = (True, True, True)
    temporal_kernel: int = 3
    temporal_max_offset: int = 32
    temporal_rotary: bool = False
    spacetime_conv: bool = False
    frame_embedding: bool = False
    coordinate_channels: bool = False
    text_prior_mean: bool = False
    text_prior_width: int | None = None
    text_prior_depth: int = 1
    text_prior_noise_level: bool = False
    text_prior_rank: int = 0
    text_prior_log_snr_range: tuple[float, float] | None = None
    head_dim: int = 64
    text_dim: int = 4096
    context_dim: int | None = None
    emb_dim: int | None = None
    norm_groups: int = 32
    dropout: float = 0.0
    lowres_channels: int = 0
    residual: bool = False
    guidance_embedding: bool = False
    guidance_embedding_scale: float = 50.0
    max_attention_tokens: int | None = None
    gradient_checkpointing: bool = False

    def __post_init__(self):
        levels = len(self.channel_mult)
        if levels < 1:
            raise UserError("UNetConfig.channel_mult: give at least one level, e.g. (1, 2, 4)")
        if not isinstance(self.num_res_blocks, int):
            object.__setattr__(self, "num_res_blocks", tuple(self.num_res_blocks))
            if len(self.num_res_blocks) != levels:
                raise UserError(
                    f"UNetConfig.num_res_blocks has {len(self.num_res_blocks)} entries but channel_mult has "
                    f"{levels} levels; give one int, or one per level"
                )
        for name in ("spatial_attention", "cross_attention", "temporal_levels"):
            if len(getattr(self, name)) != levels:
                raise UserError(
                    f"UNetConfig.{name} has {len(getattr(self, name))} entries but channel_mult has {levels} "
                    f"levels; give one bool per level"
                )
        if self.residual and self.lowres_channels != self.out_channels:
            raise UserError(
                "UNetConfig.residual needs a condition like the output: "
                f"lowres_channels={self.lowres_channels} must equal out_channels={self.out_channels}"
            )
        if self.text_prior_log_snr_range is not None:
            try:
                band = tuple(float(v) for v in self.text_prior_log_snr_range)
            except (TypeError, ValueError):
                band = ()
            if len(band) != 2 or not band[0] <= band[1]:
                raise UserError(
                    f"UNetConfig.text_prior_log_snr_range={self.text_prior_log_snr_range}: give [lo, hi] "
                    "with lo <= hi, or null"
                )
            object.__setattr__(self, "text_prior_log_snr_range", band)
        if self.text_prior_depth < 1 or self.text_prior_rank < 0 or (self.text_prior_width or 1) < 1:
            raise UserError(
                f"UNetConfig: text_prior_depth={self.text_prior_depth} must be >= 1, text_prior_rank="
                f"{self.text_prior_rank} >= 0 and text_prior_width={self.text_prior_width} >= 1 (or null)"
            )
        if self.temporal not in TEMPORAL_KINDS:
            raise UserError(f"UNetConfig.temporal={self.temporal!r}: choose one of {TEMPORAL_KINDS}")
        if self.temporal_kernel < 1 or self.temporal_kernel % 2 == 0:
            raise UserError(f"UNetConfig.temporal_kernel={self.temporal_kernel}: use an odd kernel size >= 1")
        for mult in self.channel_mult:
            width = self.channels * mult
            heads = max(width // self.head_dim, 1)
            if width % heads:
                raise UserError(
                    f"UNetConfig: {width} channels (channels={self.channels} x {mult}) do not split into "
                    f"heads of head_dim={self.head_dim}; use widths that are multiples of head_dim"
                )
            if self.temporal_rotary and (width // heads) % 2:
                raise UserError(
                    f"UNetConfig.temporal_rotary: {width} channels give heads {width // heads} wide; rotary "
                    "embeddings need an even head width"
                )
            if (self.channels * mult) % self.norm_groups:
                raise UserError(
                    f"UNetConfig: {self.channels * mult} channels (channels={self.channels} x {mult}) are "
                    f"not "
                    f"divisible by norm_groups={self.norm_groups}; change channels or norm_groups"
                )

    @property
    def downsampling_factor(self) -> int:
        """H and W must be divisible by this: 2 ** (levels - 1)."""
        return 2 ** (len(self.channel_mult) - 1)

    @property
    def widths(self) -> list[int]:
        return [self.channels * m for m in self.channel_mult]

    @property
    def blocks_per_level(self) -> tuple[int, ...]:
        """ResBlocks per level on the way down (the way up has one more, for the downsampling skip)."""
        if isinstance(self.num_res_blocks, int):
            return (self.num_res_blocks,) * len(self.channel_mult)
        return self.num_res_blocks

    def replace(self, **changes) -> UNetConfig:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)


class UNetBlock(nn.Module):
    """A ResBlock, then the level's optional spatial attention, text cross-attention, temporal layer."""

    def __init__(self, cfg: UNetConfig, in_ch: int, out_ch: int, level: int, emb_dim: int, ctx_dim: int):
        super().__init__()
        self.res = ResBlock(in_ch, out_ch, emb_dim, cfg.norm_groups, cfg.dropout)
        self.attn = SpatialSelfAttention(out_ch, cfg.head_dim) if cfg.spatial_attention[level] else None
        self.cross = CrossAttention(out_ch, ctx_dim, cfg.head_dim) if cfg.cross_attention[level] else None
        self.temporal = None
        if cfg.temporal_levels[level]:
            self.temporal = (
                TemporalAttention(out_ch, cfg.head_dim, cfg.temporal_max_offset, cfg.temporal_rotary)
                if cfg.temporal == "attention"
                else TemporalConv(out_ch, cfg.temporal_kernel)
            )
        use_3d = cfg.spacetime_conv and cfg.temporal_levels[level]
        self.spacetime = SpaceTimeConv(out_ch, cfg.temporal_kernel) if use_3d else None

    def forward(self, x, emb, ctx, ctx_mask, frames: int, video_mask, skip_temporal: bool) -> Tensor:
        x = self.res(x, emb)
        if self.attn is not None:
            x = self.attn(x)
        if self.cross is not None:
            x = self.cross(x, ctx, ctx_mask)
        if self.temporal is not None and not skip_temporal:
            x = self.temporal(x, frames, video_mask)
        if self.spacetime is not None and not skip_temporal:
            x = self.spacetime(x, frames, video_mask)
        return x


class VideoUNet(nn.Module):
    """Space-time factorized U-Net (Imagen Video Fig. 7): v = f(z_t, log_snr, text, lowres, ...).

    Spatial layers run per frame with shared weights; temporal layers mix frames; text enters through
    cross-attention (plus a learned null token) and a pooled embedding added to the noise-level embedding.
    """

    def __init__(self, config: UNetConfig):
        super().__init__()
        cfg = self.config = config
        widths = cfg.widths
        emb_dim = cfg.emb_dim or 4 * cfg.channels
        ctx_dim = cfg.context_dim or widths[-1]
        sin_dim = cfg.channels

        self.noise_emb = EmbeddingMLP(sin_dim, emb_dim)
        self.cond_aug_emb = EmbeddingMLP(sin_dim, emb_dim) if cfg.lowres_channels > 0 else None
        self.guidance_emb = EmbeddingMLP(sin_dim, emb_dim) if cfg.guidance_embedding else None
        self.frame_emb = EmbeddingMLP(sin_dim, emb_dim) if cfg.frame_embedding else None
        if self.frame_emb is not None:  # zero output: adding it to a trained model changes nothing at first
            for p in self.frame_emb.net[-1].parameters():
                nn.init.zeros_(p)
        # pooled text: masked mean -> linear without bias, so "no text" pools to exactly zero
        self.text_pool = nn.Linear(cfg.text_dim, emb_dim, bias=False)
        self.text_proj = nn.Sequential(nn.Linear(cfg.text_dim, ctx_dim), nn.LayerNorm(ctx_dim))
        self.null_token = nn.Parameter(torch.randn(1, 1, ctx_dim) * 0.02)
        self.prior_mean = None
        if cfg.text_prior_mean:
            width = cfg.text_prior_width or emb_dim
            self.prior_mean = TextPriorMean(
                cfg.text_dim, width, cfg.out_channels, cfg.text_prior_depth, cfg.text_prior_noise_level,
                cfg.text_prior_rank, cfg.text_prior_log_snr_range,
            )  # fmt: skip

        self.input_conv = nn.Conv2d(cfg.in_channels + cfg.lowres_channels, widths[0], 3, padding=1)
        self.coord_conv = None
        if cfg.coordinate_channels:  # zero output: adding it to a trained model changes nothing at first
            self.coord_conv = nn.Conv2d(COORDINATE_PLANES, widths[0], 3, padding=1, bias=False)
            nn.init.zeros_(self.coord_conv.weight)
        self.down = nn.ModuleList()
        skip_channels = [widths[0]]
        ch = widths[0]
        for level, width in enumerate(widths):
            for _ in range(cfg.blocks_per_level[level]):
                self.down.append(UNetBlock(cfg, ch, width, level, emb_dim, ctx_dim))
                ch = width
                skip_channels.append(ch)
            if level < len(widths) - 1:
                self.down.append(Downsample(ch))
                skip_channels.append(ch)
        last = len(widths) - 1
        self.mid = nn.ModuleList(
            [UNetBlock(cfg, ch, ch, last, emb_dim, ctx_dim), UNetBlock(cfg, ch, ch, last, emb_dim, ctx_dim)]
        )
        self.up = nn.ModuleList()
        for level in reversed(range(len(widths))):
            for _ in range(cfg.blocks_per_level[level] + 1):
                self.up.append(
                    UNetBlock(cfg, ch + skip_channels.pop(), widths[level], level, emb_dim, ctx_dim)
                )
                ch = widths[level]
            if level > 0:
                self.up.append(Upsample(ch))
        self.out_norm = nn.GroupNorm(cfg.norm_groups, ch)
        self.out_conv = nn.Conv2d(ch, cfg.out_channels, 3, padding=1)
        nn.init.zeros_(self.out_conv.weight)
        nn.init.zeros_(self.out_conv.bias)

    def temporal_receptive_radius(self) -> int | None:
        """Frames an output frame sees on each side: sum of temporal conv kernel // 2 (None: attention)."""
        if self.config.temporal == "attention" and any(self.config.temporal_levels):
            return None
        return sum(m.kernel // 2 for m in self.modules() if isinstance(m, TemporalConv | SpaceTimeConv))

    def check_resolution(self, height: int, width: int) -> None:
        """Raise a UserError unless (height, width) is a size this config accepts."""
        cfg = self.config
        factor = cfg.downsampling_factor
        if height % factor or width % factor:
            raise UserError(
                f"VideoUNet: frames of {height}x{width} (HxW) are not divisible by {factor} = 2**(levels-1) "
                f"for channel_mult={cfg.channel_mult}; crop or resize to a multiple of {factor}"
            )
        if cfg.max_attention_tokens is None:
            return
        for level, attn in enumerate(cfg.spatial_attention):
            tokens = (height >> level) * (width >> level)
            if attn and tokens > cfg.max_attention_tokens:
                raise UserError(
                    f"VideoUNet: spatial self-attention at level {level} would attend over "
                    f"{height >> level}x{width >> level}={tokens} positions per frame for {height}x{width} "
                    f"input, "
                    f"more than max_attention_tokens={cfg.max_attention_tokens}; use smaller frames or a "
                    f"config without spatial attention at that level"
                )

    def _check_inputs(self, z, text_emb, text_mask, lowres) -> None:
        cfg = self.config
        if z.ndim != 5 or z.shape[1] != cfg.in_channels:
            raise UserError(f"VideoUNet: z must be [B, {cfg.in_channels}, T, H, W], got {tuple(z.shape)}")
        self.check_resolution(z.shape[3], z.shape[4])
        if text_emb is not None and (text_emb.ndim != 3 or text_emb.shape[-1] != cfg.text_dim):
            raise UserError(
                f"VideoUNet: text_emb must be [B, L, {cfg.text_dim}], got {tuple(text_emb.shape)}"
            )
        if text_emb is not None and text_mask is not None and text_mask.shape != text_emb.shape[:2]:
            raise UserError(
                f"VideoUNet: text_mask {tuple(text_mask.shape)} != text_emb [B, L] {text_emb.shape[:2]}"
            )
        if cfg.lowres_channels > 0:
            expected = (z.shape[0], cfg.lowres_channels, *z.shape[2:])
            if lowres is None or tuple(lowres.shape) != expected:
                got = None if lowres is None else tuple(lowres.shape)
                raise UserError(f"VideoUNet: lowres must be {expected} (upsampled to z's shape), got {got}")

    def _context(self, b: int, text_emb, text_mask, dtype) -> tuple[Tensor, Tensor, Tensor]:
        """Cross-attention context `[b, 1+L, D]` (null token first), its mask, the masked-mean text `[b, D]`
        (zero for no text)."""
        null = self.null_token.to(dtype).expand(b, -1, -1)
        if text_emb is None:
            mask = torch.ones(b, 1, dtype=torch.bool, device=null.device)
            return null, mask, torch.zeros(b, self.config.text_dim, dtype=dtype, device=null.device)
        if text_mask is None:
            text_mask = torch.ones(text_emb.shape[:2], dtype=torch.bool, device=text_emb.device)
        text_emb = torch.where(text_mask[..., None], text_emb.to(dtype), 0.0)
        ctx = torch.cat([null, self.text_proj(text_emb)], dim=1)
        mask = torch.cat([torch.ones(b, 1, dtype=torch.bool, device=text_mask.device), text_mask], dim=1)
        return ctx, mask, masked_text_mean(text_emb, text_mask)

    def forward(
        self,
        z: Tensor,
        log_snr: Tensor,
        text_emb: Tensor | None = None,
        text_mask: Tensor | None = None,
        lowres: Tensor | None = None,
        cond_aug_log_snr: Tensor | None = None,
        guidance_weight: Tensor | None = None,
        image_mode: bool | Tensor | None = None,
    ) -> Tensor:
        """Predict v `[B, C_out, T, H, W]` from z `[B, C, T, H, W]` and log_snr `[B]`.

        `cond_aug_log_snr` None means a clean condition (log_snr 20); `guidance_weight` None means w = 0.
        `image_mode` True (or True entries of a bool `[B]`): the temporal layers' residuals are zeroed for
        those samples, so every frame is processed on its own.
        """
        cfg = self.config
        self._check_inputs(z, text_emb, text_mask, lowres)
        b, _, frames, height, width = z.shape
        dtype = self.input_conv.weight.dtype
        video_mask, skip_temporal = _video_mask(image_mode, b, z.device, dtype)

        emb = self.noise_emb(log_snr_to_embedding_input(log_snr))
        if self.cond_aug_emb is not None:
            if cond_aug_log_snr is None:
                cond_aug_log_snr = torch.full((b,), 20.0, device=z.device)
            if cfg.residual:
                base = residual_base(lowres, cond_aug_log_snr)
                alpha, sigma = alpha_sigma_from_log_snr(log_snr.float())
                z = residual_z(z, base, alpha)
            emb = emb + self.cond_aug_emb(log_snr_to_embedding_input(cond_aug_log_snr))
        w = None
        if self.guidance_emb is not None:
            w = torch.zeros(b, device=z.device) if guidance_weight is None else guidance_weight.float()
            emb = emb + self.guidance_emb(w * cfg.guidance_embedding_scale)
        ctx, ctx_mask, text_mean = self._context(b, text_emb, text_mask, dtype)
        # nothing to mask: SDPA may use its fused kernels (not while compiling: the check breaks the graph)
        if not torch.compiler.is_compiling() and bool(ctx_mask.all()):
            ctx_mask = None
        emb = repeat(emb + self.text_pool(text_mean), "b e -> b t e", t=frames)
        if self.frame_emb is not None and not skip_temporal:
            frame_emb = self.frame_emb(torch.arange(frames, device=z.device))[None]  # [1, T, E]
            emb = emb + (frame_emb if video_mask is None else frame_emb * video_mask[:, None, None])
        emb = F.silu(rearrange(emb, "b t e -> (b t) e"))

        x = torch.cat([z, lowres], dim=1) if cfg.lowres_channels > 0 else z
        x = rearrange(x.to(dtype), "b c t h w -> (b t) c h w").contiguous(memory_format=torch.channels_last)
        args = (emb, ctx, ctx_mask, frames, video_mask, skip_temporal)

        x = self.input_conv(x)
        if self.coord_conv is not None:
            grid = coordinate_grid(
                frames, height, width, z.device, dtype, 0.0 if skip_temporal else video_mask
            )
            grid = rearrange(grid.expand(b, -1, -1, -1, -1), "b c t h w -> (b t) c h w")
            x = x + self.coord_conv(grid.contiguous(memory_format=torch.channels_last))
        skips = [x]
        for layer in self.down:
            x = self._run(layer, x, args)
            skips.append(x)
        for layer in self.mid:
            x = self._run(layer, x, args)
        for layer in self.up:
            if isinstance(layer, UNetBlock):
                x = torch.cat([x, skips.pop()], dim=1)
            x = self._run(layer, x, args)
        x = self.out_conv(F.silu(self.out_norm(x)))
        v = rearrange(x, "(b t) c h w -> b c t h w", b=b).contiguous()
        if self.prior_mean is not None:
            shape = (frames, height, width)
            prior = self.prior_mean(text_mean, log_snr, shape, video_mask, skip_temporal)
            if w is not None:  # a guided-distillation student
                blank = torch.zeros_like(text_mean)
                blank = self.prior_mean(blank, log_snr, shape, video_mask, skip_temporal)
                prior = guided_v(prior, blank, w)
            _, sigma_t = alpha_sigma_from_log_snr(log_snr.float())
            v = v - expand_like(sigma_t, v) * prior
        return v_from_residual_v(v, base, sigma) if cfg.residual else v

    def _run(self, layer: nn.Module, x: Tensor, args: tuple) -> Tensor:
        """Apply one layer, through activation checkpointing when configured and training."""
        if not isinstance(layer, UNetBlock):
            return layer(x)
        if self.config.gradient_checkpointing and torch.is_grad_enabled():
            return checkpoint(layer, x, *args, use_reentrant=False)
        return layer(x, *args)


def coordinate_grid(frames: int, height: int, width: int, device, dtype, video_mask=None) -> Tensor:
    """The planes (t, y, x, 4 t y, 4 t x) `[1 or B, 5, T, H, W]`, each coordinate linear from -1/2 to 1/2 over
    the clip (0 for a single frame); `video_mask` `[B]` (or a float) scales t, so images (0) see t = 0."""
    axes = [
        torch.linspace(-0.5, 0.5, n, device=device, dtype=dtype)
        if n > 1
        else torch.zeros(1, device=device, dtype=dtype)
        for n in (frames, height, width)
    ]
    t, y, x = torch.meshgrid(*axes, indexing="ij")
    t = t[None] if video_mask is None else torch.as_tensor(video_mask, dtype=dtype).reshape(-1, 1, 1, 1) * t
    y, x = y.expand_as(t), x.expand_as(t)
    return torch.stack([t, y, x, 4 * t * y, 4 * t * x], dim=1)


def residual_base(lowres: Tensor, cond_aug_log_snr: Tensor) -> Tensor:
    """b = alpha' c_aug: E[c | c_aug] for unit-variance c and c_aug = alpha' c + sigma' n."""
    alpha_c, _ = alpha_sigma_from_log_snr(cond_aug_log_snr.float())
    return expand_like(alpha_c, lowres) * lowres


def _video_mask(image_mode, b: int, device, dtype) -> tuple[Tensor | None, bool]:
    """image_mode -> (video_mask [b] with 1 = video / 0 = image or None for all-video, skip all temporal)."""
    if image_mode is None or image_mode is False:
        return None, False
    if image_mode is True:
        return None, True
    image_mode = torch.as_tensor(image_mode, device=device).bool().reshape(-1)
    if image_mode.numel() != b:
        raise UserError(
            f"VideoUNet: image_mode must be a bool or a bool tensor [B={b}], got {image_mode.numel()}"
        )
    if bool(image_mode.all()):
        return None, True
    if not bool(image_mode.any()):
        return None, False
    return (~image_mode).to(dtype), False
