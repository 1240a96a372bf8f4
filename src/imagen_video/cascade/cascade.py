"""The cascade (paper §2.2, Fig. 6): a frozen text encoder and ordered stages, generated stage by stage.

A cascade folder holds `cascade.yaml` (the full CascadeConfig) and `<stage>.safetensors` per stage; the
text encoder is stored by reference ("minilm" or a T5 folder). U-Nets and the text encoder load lazily, so
`describe()` of the paper's 11.6B-parameter cascade costs nothing.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import yaml
from tqdm.auto import tqdm

from imagen_video.cascade.conditioning import augment, cond_aug_log_snr, condition_to_shape
from imagen_video.cascade.config import (
    CascadeConfig,
    cascade_config_to_dict,
    load_cascade_config,
)
from imagen_video.cascade.registry import default_cascade_path, resolve_cascade
from imagen_video.cascade.stage import (
    Guidance,
    Stage,
    StageDenoiser,
    StageGuidance,
    StepCounts,
    high_resolution_guidance,
    parse_guidance,
    parse_stage_guidance,
)
from imagen_video.cascade.weights import (
    atomic_write,
    check_stage_weights,
    load_stage_weights,
    meta_unet,
    random_unet,
    save_stage_weights,
)
from imagen_video.diffusion import sample
from imagen_video.errors import UserError
from imagen_video.io import to_uint8
from imagen_video.models import VideoUNet
from imagen_video.text import TextEncoder, check_prompts, load_text_encoder

CONFIG_NAME = "cascade.yaml"
RANDOM_INIT_SEED = 0
# SPEC §6: oscillating guidance only for the base and the first two SR models (stages 0, 1, 2)
LAST_OSCILLATING_STAGE = 2


def check_seed(seed: object) -> None:
    """A generation seed must be an integer >= 0 (UserError otherwise)."""
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise UserError(f"seed must be an integer >= 0, got {seed!r}")


def derive_seed(seed: int, *parts: object) -> int:
    """A 63-bit seed from (seed, parts): each stage draws from its own stream, independent of the others."""
    digest = hashlib.sha256(":".join(map(str, (seed, *parts))).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


@dataclass
class StageOutput:
    """What one stage produced: uint8 [B, T, H, W, C] at fps."""

    name: str
    kind: str
    videos: np.ndarray
    fps: float


@dataclass
class GenerationResult:
    """Final videos uint8 [B, T, H, W, C] (prompt-major: prompt i's n videos are rows i*n .. i*n + n - 1),
    their fps, each stage's output when asked (keep_stages), and wall-clock seconds per stage, "text",
    "total"."""

    videos: np.ndarray
    fps: float
    stages: list[StageOutput] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


class Cascade:
    """Text encoder + ordered stages. `weights_dir` None: random U-Nets under a fixed seed per stage;
    `unets` (stage name -> U-Net) are used as they are, before either."""

    def __init__(
        self,
        config: CascadeConfig,
        weights_dir: str | Path | None = None,
        unets: dict[str, VideoUNet] | None = None,
    ):
        self.config = config
        self.weights_dir = Path(weights_dir) if weights_dir is not None else None
        self.device = torch.device("cpu")
        self._unets: dict[str, VideoUNet] = dict(unets or {})
        self._text_encoder: TextEncoder | None = None

    @property
    def stages(self) -> tuple[Stage, ...]:
        return self.config.stages

    def stage(self, name: str) -> Stage:
        """The stage called `name`."""
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise UserError(
            f"no stage {name!r} in this cascade; stages: {', '.join(s.name for s in self.stages)}"
        )

    # ---- loading and saving -------------------------------------------------------------------------

    @classmethod
    def load(cls, path: str | Path, random_init: bool = False) -> Cascade:
        """Open a cascade folder (cascade.yaml + <stage>.safetensors), a cascade YAML file (weights looked up
        next to it) or a packaged name. random_init=True ignores weight files: random U-Nets, fixed seed.
        Weight files are checked (names, shapes) here; their data is read on first use."""
        path = resolve_cascade(path)
        config_path = path / CONFIG_NAME if path.is_dir() else path
        if path.is_dir() and not config_path.is_file():
            raise UserError(
                f"{path}: not a cascade folder (no {CONFIG_NAME}); give a folder saved by Cascade.save"
            )
        config = load_cascade_config(config_path)
        if random_init:
            return cls(config)
        for stage in config.stages:
            check_stage_weights(config_path.parent / f"{stage.name}.safetensors", stage.unet, stage.name)
        return cls(config, config_path.parent)

    @classmethod
    def default(cls) -> Cascade:
        """The packaged cascade named by registry.DEFAULT_NAME (the tiny cascade distilled to <= 8 steps)."""
        return cls.load(default_cascade_path())

    def save(self, folder: str | Path) -> Path:
        """Write <stage>.safetensors for every stage, then cascade.yaml, each atomically."""
        folder = Path(folder)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            for stage in self.stages:
                save_stage_weights(folder / f"{stage.name}.safetensors", self.unet(stage.name), stage.name)
            text = yaml.safe_dump(
                cascade_config_to_dict(self.config), sort_keys=False, default_flow_style=None
            )
            atomic_write(folder / CONFIG_NAME, lambda tmp: tmp.write_text(text))
        except OSError as err:
            raise UserError(f"{folder}: cannot save the cascade here ({err})") from None
        return folder

    def unet(self, name: str) -> VideoUNet:
        """Stage `name`'s U-Net (eval mode, frozen), loaded or randomly initialised on first use."""
        if name not in self._unets:
            stage = self.stage(name)
            if self.weights_dir is None:
                index = self.stages.index(stage)
                unet = random_unet(stage.unet, RANDOM_INIT_SEED + index, self.device)
            else:
                path = self.weights_dir / f"{name}.safetensors"
                unet = load_stage_weights(path, stage.unet, name, self.device)
            self._unets[name] = unet
        return self._unets[name]

    def set_unet(self, name: str, unet: VideoUNet) -> None:
        """Replace stage `name`'s U-Net (e.g. a trained or distilled one); configs must match."""
        if unet.config != self.stage(name).unet:
            raise UserError(
                f"the U-Net given for stage {name!r} has a different config than the stage declares"
            )
        self._unets[name] = unet.to(self.device).eval().requires_grad_(False)

    @property
    def text_encoder(self) -> TextEncoder:
        """The frozen text encoder, loaded on first use."""
        if self._text_encoder is None:
            cfg = self.config.text_encoder
            encoder = load_text_encoder(cfg.name, max_length=cfg.max_length, dtype=cfg.dtype)
            dims = {s.unet.text_dim for s in self.stages}
            if dims != {encoder.dim}:
                raise UserError(
                    f"text encoder {cfg.name!r} gives {encoder.dim}-wide embeddings but the U-Nets expect "
                    f"text_dim {sorted(dims)}; use the encoder the cascade was built for"
                )
            self._text_encoder = encoder.to(self.device)
        return self._text_encoder

    def to(self, device: torch.device | str) -> Cascade:
        """Move loaded U-Nets and the text encoder to `device`; later loads go there too."""
        self.device = torch.device(device)
        for unet in self._unets.values():
            unet.to(self.device)
        if self._text_encoder is not None:
            self._text_encoder.to(self.device)
        return self

    # ---- sampling -----------------------------------------------------------------------------------

    def sampling_plan(
        self, steps: StepCounts | None = None, guidance: StageGuidance | None = None
    ) -> list[tuple[Stage, int, Guidance | None]]:
        """(stage, steps, guidance schedule) per stage, validated before any work. `steps` (an int for every
        stage, or {stage name: count}) and `guidance` (a spec for every stage, or {stage name: spec}) override
        the stages' own; oscillating guidance becomes its constant high weight after stage index 2."""
        counts = self._stage_overrides(steps, "steps")
        for count in counts.values():
            if isinstance(count, bool) or not isinstance(count, int) or count < 1:
                raise UserError(f"steps must be an integer >= 1, got {count!r}")
        specs = self._stage_overrides(parse_stage_guidance(guidance), "guidance")
        plan = []
        for index, stage in enumerate(self.stages):
            schedule = parse_guidance(specs.get(stage.name, stage.guidance))
            if index > LAST_OSCILLATING_STAGE:
                schedule = high_resolution_guidance(schedule)
            plan.append((stage, counts.get(stage.name, stage.steps), schedule))
        return plan

    def _stage_overrides(self, values: object, what: str) -> dict:
        """steps / guidance override -> {stage name: value} of the stages it overrides (a single value:
        every stage); UserError on unknown stage names."""
        if values is None:
            return {}
        overrides = values if isinstance(values, dict) else {stage.name: values for stage in self.stages}
        names = [stage.name for stage in self.stages]
        for name in overrides:
            if name not in names:
                raise UserError(f"{what} for unknown stage {name!r}; the stages are: {', '.join(names)}")
        return overrides

    @torch.no_grad()
    def generate(
        self,
        prompts: str | Sequence[str],
        seed: int = 0,
        steps: StepCounts | None = None,
        guidance: StageGuidance | None = None,
        keep_stages: bool = False,
        progress: bool = True,
        num_videos: int = 1,
        on_stage: Callable[[str], None] | None = None,
    ) -> GenerationResult:
        """Text -> videos, stage by stage: sample each stage from noise, conditioned on the text and (SR
        stages) on the previous output, frames repeated / upsampled and noise-augmented at cond_aug_level.
        `on_stage(name)` is called as each stage starts (e.g. to show progress inside a long batch)."""
        prompts = check_prompts(prompts)
        if isinstance(num_videos, bool) or not isinstance(num_videos, int) or num_videos < 1:
            raise UserError(f"num_videos must be an integer >= 1, got {num_videos!r}")
        check_seed(seed)
        plan = self.sampling_plan(steps, guidance)
        start = time.perf_counter()
        seconds: dict[str, float] = {}
        text_emb, text_mask = self.text_encoder.encode([p for p in prompts for _ in range(num_videos)])
        text_emb, text_mask = text_emb.to(self.device), text_mask.to(self.device)
        seconds["text"] = time.perf_counter() - start
        video, outputs = None, []
        bar = tqdm(plan, desc="cascade", unit="stage", disable=not progress)
        for index, (stage, stage_steps, schedule) in enumerate(bar):
            bar.set_postfix_str(f"{stage.name} {stage.frames}x{stage.height}x{stage.width}")
            if on_stage is not None:
                on_stage(stage.name)
            stage_start = time.perf_counter()
            video = self._sample_stage(
                index, stage_steps, schedule, text_emb, text_mask, video, seed, progress
            )
            seconds[stage.name] = time.perf_counter() - stage_start
            if keep_stages:
                outputs.append(StageOutput(stage.name, stage.kind, to_uint8(video), float(stage.fps)))
        seconds["total"] = time.perf_counter() - start
        final = self.stages[-1]
        return GenerationResult(to_uint8(video), float(final.fps), outputs, seconds)

    @torch.no_grad()
    def generate_stage(
        self,
        name: str,
        prompts: str | Sequence[str],
        condition: torch.Tensor | None = None,
        seed: int = 0,
        steps: StepCounts | None = None,
        guidance: StageGuidance | None = None,
        progress: bool = False,
    ) -> torch.Tensor:
        """One stage alone, sampled exactly as inside generate() (same seeds, steps and guidance): the base
        from text; an SR stage also from `condition`, float [B, C, T, H, W] in [-1, 1] at the previous
        stage's shape (e.g. a ground-truth clip's view). Returns the stage's video, float in [-1, 1]."""
        prompts = check_prompts(prompts)
        check_seed(seed)
        index = self.stages.index(self.stage(name))
        _, stage_steps, schedule = self.sampling_plan(steps, guidance)[index]
        if index == 0 and condition is not None:
            raise UserError(f"stage {name!r} is the base: it samples from text alone; pass no condition")
        if index > 0:
            previous = self.stages[index - 1]
            expected = (len(prompts), previous.unet.out_channels, *previous.shape)
            if condition is None or tuple(condition.shape) != expected:
                got = "none" if condition is None else list(condition.shape)
                raise UserError(
                    f"stage {name!r} needs a condition of shape {list(expected)} (one video per prompt at "
                    f"the previous stage's shape, values in [-1, 1]); got {got}"
                )
            condition = condition.to(self.device, torch.float32)
        text_emb, text_mask = self.text_encoder.encode(prompts)
        text_emb, text_mask = text_emb.to(self.device), text_mask.to(self.device)
        return self._sample_stage(
            index, stage_steps, schedule, text_emb, text_mask, condition, seed, progress
        )

    def _sample_stage(
        self,
        index: int,
        steps: int,
        schedule: Guidance | None,
        text_emb: torch.Tensor,
        text_mask: torch.Tensor,
        previous: torch.Tensor | None,
        seed: int,
        progress: bool,
    ) -> torch.Tensor:
        """Stage `index` sampled from noise (SPEC §2): conditioned on the text and, for an SR stage, on the
        previous stage's video, frames repeated / upsampled and noise-augmented at cond_aug_level."""
        stage = self.stages[index]
        batch = text_emb.shape[0]
        generator = torch.Generator(self.device).manual_seed(derive_seed(seed, index, stage.name))
        lowres = aug_log_snr = None
        if stage.kind != "base":
            cond = condition_to_shape(previous, *stage.shape, fill=stage.frame_fill)  # [B, C, T, H, W]
            lowres = augment(cond, stage.cond_aug_level, generator)
            aug_log_snr = cond_aug_log_snr(stage.cond_aug_level, batch).to(self.device)
        denoiser = StageDenoiser(
            self.unet(stage.name), text_emb, text_mask, lowres, aug_log_snr, stage.schedule
        )
        return sample(
            denoiser,
            (batch, stage.unet.out_channels, *stage.shape),
            schedule=stage.schedule,
            steps=steps,
            sampler=stage.sampler,
            cond=True,
            guidance=schedule,
            dynamic_threshold=stage.dynamic_threshold,
            generator=generator,
            progress=progress,
            device=self.device,
        ).clamp(-1, 1)

    # ---- description --------------------------------------------------------------------------------

    def describe(self) -> str:
        """Stages, shapes, fps, sampling settings and U-Net parameter counts (counted on the meta device)."""
        text = self.config.text_encoder
        weights = (
            str(self.weights_dir) if self.weights_dir is not None else f"random (seed {RANDOM_INIT_SEED})"
        )
        lines = [
            f"cascade: {len(self.stages)} stages | text encoder {text.name} (max_length {text.max_length}, "
            f"{text.dtype}) | weights: {weights}",
            f"  {'#':>2} {'stage':<10} {'kind':<4} {'frames x H x W':>16} {'fps':>6} {'params':>8} "
            f"{'temporal':<9} {'sampler':<10} {'steps':>5}  guidance      cond aug t'",
        ]
        total = 0
        for index, (stage, steps, schedule) in enumerate(self.sampling_plan()):
            params = sum(p.numel() for p in meta_unet(stage.unet).parameters())
            total += params
            shape = f"{stage.frames} x {stage.height} x {stage.width}"
            guide = _describe_guidance(schedule)
            aug = f"{stage.cond_aug_level:.3f}" if stage.kind != "base" else "-"
            lines.append(
                f"  {index + 1:>2} {stage.name:<10} {stage.kind:<4} {shape:>16} {stage.fps:>6g} "
                f"{_count(params):>8} {stage.unet.temporal:<9} {stage.sampler:<10} {steps:>5}  "
                f"{guide:<13} {aug}"
            )
        final = self.stages[-1]
        lines.append(
            f"  output: {final.frames} frames, {final.width}x{final.height} (WxH) at {final.fps:g} fps "
            f"({final.frames / final.fps:.2f} s); U-Net parameters in all: {_count(total)}"
        )
        return "\n".join(lines)


def _count(n: int) -> str:
    """12345678 -> '12.3M'."""
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return str(n)


def _describe_guidance(schedule: Guidance | None) -> str:
    if schedule is None:
        return "none"
    if hasattr(schedule, "low"):
        return f"oscillate:{schedule.high:g},{schedule.low:g}"
    return f"constant:{schedule.w:g}"
