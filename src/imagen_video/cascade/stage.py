"""One stage of the cascade as data (`Stage`), guidance specs, and the `StageDenoiser` the samplers call."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import torch
from torch import Tensor

from imagen_video.cascade.conditioning import FRAME_FILLS
from imagen_video.diffusion import SAMPLERS, ConstantGuidance, CosineSchedule, OscillatingGuidance, guided_v
from imagen_video.errors import UserError
from imagen_video.models import UNetConfig, VideoUNet

KINDS = ("base", "tsr", "ssr")
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
Guidance = ConstantGuidance | OscillatingGuidance


def parse_guidance(spec: str | float) -> Guidance | None:
    """Guidance spec -> schedule: "6" or "constant:6" (w = 6), "oscillate" or "oscillate:15,1" (high, low),
    "none" or "0" (no guidance, one network call per step). w = 0 is no guidance (SPEC §6)."""
    text = str(spec).strip().lower()
    kind, _, args = text.partition(":")
    try:
        if kind in ("none", "off"):
            return None
        if kind == "oscillate":
            values = [float(a) for a in args.split(",")] if args else []
            if len(values) not in (0, 2):
                raise ValueError
            return OscillatingGuidance(*values)
        w = float(args if kind == "constant" else kind)
    except ValueError:
        raise UserError(
            f"guidance {spec!r} not understood; use a weight like 6, constant:6, oscillate:15,1 or none"
        ) from None
    if not w >= 0 or w == float("inf"):
        raise UserError(f"guidance weight must be a finite number >= 0, got {spec!r}")
    return ConstantGuidance(w) if w != 0 else None


StageGuidance = str | float | dict[str, str | float]
STAGE_SPEC_SEPARATOR = re.compile(r",(?=\s*[A-Za-z0-9][A-Za-z0-9_.-]*\s*=)")


def stage_pairs(text: str) -> list[tuple[str, str]]:
    """Per-stage spec -> (name, value) pairs: "base=oscillate:15,1,tsr=2" gives ("base", "oscillate:15,1"),
    ("tsr", "2"); split at the commas that start a `name=`, so a value may hold commas; parts stripped."""
    return [tuple(part.strip() for part in p.partition("=")[::2]) for p in STAGE_SPEC_SEPARATOR.split(text)]


def parse_stage_guidance(spec: StageGuidance | None, flag: str = "guidance") -> StageGuidance | None:
    """Guidance override -> None (each stage's own), one spec for every stage ("constant:6"), or
    {stage name: spec} from "base=oscillate:15,1,tsr=constant:2" (stages not named keep their own).
    Every spec is checked with `parse_guidance`; names are checked against a cascade later."""
    if spec is None:
        return None
    if isinstance(spec, dict):
        pairs = [(str(name), value) for name, value in spec.items()]
    elif "=" in str(spec):
        pairs = stage_pairs(str(spec))
    else:
        parse_guidance(spec)
        return spec
    for name, value in pairs:
        if not NAME_PATTERN.match(name):
            raise UserError(f"{flag} {spec!r}: {name!r} is not a stage name; use e.g. base=constant:6,tsr=2")
        parse_guidance(value)
    return dict(pairs)


StepCounts = int | dict[str, int]


def parse_steps(spec: str | int | None, flag: str = "steps") -> StepCounts | None:
    """Sampling-steps spec -> None (each stage's own), N (every stage), or {stage name: N} from
    "base=256,tsr=128" (stages not named keep their own); names are checked against a cascade later."""
    if spec is None:
        return None
    text = str(spec).strip()
    pairs = stage_pairs(text) if "=" in text else [("", text)]
    counts = {}
    for name, value in pairs:
        try:
            count = int(value)
        except ValueError:
            raise UserError(
                f"{flag} {spec!r} not understood; use a count like 64 or per stage like base=256,ssr1=8"
            ) from None
        if count < 1:
            where = f" for stage {name!r}" if name else ""
            raise UserError(f"{flag} must be >= 1, got {count}{where}")
        counts[name] = count
    return counts[""] if "" in counts else counts


def high_resolution_guidance(guidance: Guidance | None) -> Guidance | None:
    """Oscillating guidance is for the base and the first two SR models only (SPEC §6); later stages get
    its constant high weight instead. Constant guidance passes through."""
    if isinstance(guidance, OscillatingGuidance):
        return ConstantGuidance(guidance.high)
    return guidance


@dataclass(frozen=True)
class Stage:
    """One model of the cascade: what it outputs, its U-Net, and how it is conditioned and sampled.

    - kind "base" (text -> video), "tsr" (more frames; condition = previous video with frames repeated, or
      blank-filled with frame_fill="blank"), "ssr" (more pixels; condition = bilinear upsample).
    - frames x height x width at fps is this stage's output; the cascade checks it against the previous stage.
    - sampler and steps: the paper samples 256 steps for the base and 128 for each SR model; a distilled
      stage records "stochastic" and its (<= 8) steps here.
    - guidance: a spec for `parse_guidance` ("constant:6", "oscillate:15,1", "none").
    - cond_aug_level: the fixed sampling-time augmentation level t' of the condition (SR stages), read on
      the plain cosine schedule: t' = 1/3 is SNR 3 (the paper uses a fixed SNR such as 3 or 5; t' = 0.268
      is SNR 5); t' = 0 feeds the clean condition.
    - dynamic_threshold: percentile p for dynamic thresholding of x_hat at every step (None: off).
    - schedule: the stage's noise schedule (training and sampling must agree).
    """

    name: str
    kind: str
    frames: int
    height: int
    width: int
    fps: float
    unet: UNetConfig
    sampler: str = "ddim"
    steps: int = 64
    guidance: str = "constant:6"
    cond_aug_level: float = 1.0 / 3.0
    frame_fill: str = "repeat"
    dynamic_threshold: float | None = 0.995
    schedule: CosineSchedule = field(default_factory=CosineSchedule)

    def __post_init__(self) -> None:
        where = f"stage {self.name!r}"
        if not isinstance(self.name, str) or not NAME_PATTERN.match(self.name):
            raise UserError(
                f"stage name {self.name!r}: use letters, digits, '_', '-' or '.' (it names a file)"
            )
        if self.kind not in KINDS:
            raise UserError(f"{where}: kind {self.kind!r} unknown; choose one of {', '.join(KINDS)}")
        for key in ("frames", "height", "width", "steps"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise UserError(f"{where}: {key} must be an integer >= 1, got {value!r}")
        if not isinstance(self.fps, (int, float)) or not self.fps > 0:
            raise UserError(f"{where}: fps must be a number > 0, got {self.fps!r}")
        if self.sampler not in SAMPLERS:
            raise UserError(f"{where}: sampler {self.sampler!r} unknown; choose one of {', '.join(SAMPLERS)}")
        parse_guidance(self.guidance)
        if not 0.0 <= self.cond_aug_level <= 1.0:
            raise UserError(f"{where}: cond_aug_level is a level t' in [0, 1], got {self.cond_aug_level}")
        if self.frame_fill not in FRAME_FILLS:
            raise UserError(
                f"{where}: frame_fill {self.frame_fill!r} unknown; choose {' or '.join(FRAME_FILLS)}"
            )
        if self.dynamic_threshold is not None and not 0.0 < self.dynamic_threshold <= 1.0:
            raise UserError(f"{where}: dynamic_threshold is a percentile p in (0, 1], e.g. 0.995")
        self._check_unet(where)

    def _check_unet(self, where: str) -> None:
        unet = self.unet
        if unet.in_channels != 3 or unet.out_channels != 3:
            raise UserError(f"{where}: the U-Net must map 3 channels to 3 (RGB), got {unet.in_channels}")
        wanted = 0 if self.kind == "base" else unet.in_channels
        if unet.lowres_channels != wanted:
            raise UserError(
                f"{where}: a {self.kind} stage needs unet.lowres_channels = {wanted}, "
                f"got {unet.lowres_channels}"
            )
        factor = unet.downsampling_factor
        if self.height % factor or self.width % factor:
            raise UserError(
                f"{where}: {self.height}x{self.width} is not divisible by {factor}, the U-Net's downsampling "
                f"factor (channel_mult={unet.channel_mult}); change the size or the U-Net"
            )

    @property
    def shape(self) -> tuple[int, int, int]:
        """(frames, height, width) of this stage's output."""
        return (self.frames, self.height, self.width)


class StageDenoiser:
    """The sampler's `model(z, t, cond) -> v` for one stage of one generation.

    Holds the U-Net, the prompt embeddings and the (augmented) low-resolution condition; `cond` selects
    the branch: anything but None is text-conditioned, None is unconditional (text mask all False: only
    the U-Net's learned null token is attended to). t [B] is mapped to log_snr by the stage's schedule.
    """

    def __init__(
        self,
        unet: VideoUNet,
        text_emb: Tensor,
        text_mask: Tensor,
        lowres: Tensor | None = None,
        cond_aug_log_snr: Tensor | None = None,
        schedule: CosineSchedule | None = None,
    ):
        self.unet = unet
        self.text_emb, self.text_mask = text_emb, text_mask  # [B, L, D], [B, L]
        self.lowres, self.cond_aug_log_snr = lowres, cond_aug_log_snr  # [B, C, T, H, W], [B]
        self.schedule = schedule if schedule is not None else CosineSchedule()

    @torch.no_grad()
    def __call__(self, z: Tensor, t: Tensor, cond: object) -> Tensor:
        """v_hat(z_t, c) (or v_hat(z_t) when cond is None): one U-Net forward on [B, C, T, H, W]."""
        mask = self.text_mask if cond is not None else torch.zeros_like(self.text_mask)
        return self.unet(z, self.schedule.log_snr(t), self.text_emb, mask, self.lowres, self.cond_aug_log_snr)

    @torch.no_grad()
    def guided(self, z: Tensor, t: Tensor, cond: object, w: float) -> Tensor:
        """(1 + w) v_hat(z, c) - w v_hat(z) with cond and uncond as ONE batched forward of 2B samples;
        a w-conditioned (guided-distilled) U-Net instead takes w as input in a single B-sample forward."""
        b = z.shape[0]
        log_snr = self.schedule.log_snr(t)
        if self.unet.config.guidance_embedding:
            weight = torch.full((b,), float(w), device=z.device)
            return self.unet(
                z, log_snr, self.text_emb, self.text_mask, self.lowres, self.cond_aug_log_snr, weight
            )
        mask = torch.cat([self.text_mask, torch.zeros_like(self.text_mask)])
        v = self.unet(
            torch.cat([z, z]),
            torch.cat([log_snr, log_snr]),
            torch.cat([self.text_emb, self.text_emb]),
            mask,
            None if self.lowres is None else torch.cat([self.lowres, self.lowres]),
            None if self.cond_aug_log_snr is None else torch.cat([self.cond_aug_log_snr] * 2),
        )
        v_cond, v_uncond = v[:b], v[b:]
        return guided_v(v_cond, v_uncond, w)
