"""Distilling one cascade stage on the training loop: the `Task`s of guided and progressive distillation.

They reuse the stage-training task (train/stage.py) for everything but the model and the loss: the clips,
their low-resolution views, per-example t and eps drawn from (seed, step, position), text embeddings and
preview videos. Each example (step, j) also gets a guidance weight w ~ U[w_min, w_max] from its own seeded
stream, so runs stay exactly resumable and independent of the number of processes.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from imagen_video.cascade import Cascade, Stage, cond_aug_log_snr
from imagen_video.config import dataclass_to_dict
from imagen_video.diffusion import expand_like
from imagen_video.distill.config import DistillConfig
from imagen_video.distill.guided import guidance_fidelity, guided_loss
from imagen_video.distill.progressive import progressive_loss
from imagen_video.errors import UserError
from imagen_video.models import UNetConfig, VideoUNet
from imagen_video.train.config import ConditionSpec, TextSpec, TrainConfig
from imagen_video.train.distributed import Dist
from imagen_video.train.order import micro_positions, sample_seed
from imagen_video.train.stage import StageTask, check_prefixes

FIDELITY_STEP = 10**9  # the step whose examples measure a guided student: no run trains on them
W_STREAM = 1  # the extra seed key that separates w's stream from the stage's own draws of an example


def training_stage(config: DistillConfig, stage: Stage) -> Stage:
    """The stage a student trains on: `stage` cut to config.train_frames frames when set (a temporal crop)."""
    if config.train_frames is None:
        return stage
    if config.train_frames > stage.frames:
        raise UserError(
            f"train_frames={config.train_frames} exceeds stage {stage.name!r}'s {stage.frames} frames; "
            "set at most that many (a temporal crop) or leave it unset"
        )
    return dataclasses.replace(stage, frames=config.train_frames)


def train_config(config: DistillConfig, cascade: Cascade, student: Stage) -> TrainConfig:
    """The stage-training config whose data pipeline and previews distillation reuses: the student stage,
    the teacher cascade's text encoder with no text dropout, conditioned on the previous stage's output
    (its frames scaled as the student's when the student trains on a temporal crop)."""
    index = [s.name for s in cascade.stages].index(student.name)
    condition = ConditionSpec(cond_aug_max=config.cond_aug_max)
    if index > 0:
        prev, full = cascade.stages[index - 1], cascade.stages[index]
        frames, rest = divmod(prev.frames * student.frames, full.frames)
        if rest:
            raise UserError(
                f"train_frames={student.frames} gives stage {student.name!r} a condition of "
                f"{prev.frames} x {student.frames} / {full.frames} frames, not a whole number; pick a "
                f"multiple of {full.frames // math.gcd(prev.frames, full.frames)}"
            )
        condition = ConditionSpec(frames, prev.height, prev.width, config.cond_aug_max)
    encoder = cascade.config.text_encoder
    text = TextSpec(
        encoder=encoder.name, max_length=encoder.max_length, dropout=0.0, cache=config.text_cache,
        in_workers=config.text_in_workers,
    )  # fmt: skip
    return TrainConfig(
        stage=dataclass_to_dict(student), seed=config.seed, out_dir=config.run_dir, condition=condition,
        data=config.data, text=text, loss_weighting=config.weighting, optim=config.optim, loop=config.loop,
        sample=config.sample,
    )  # fmt: skip


def student_unet(teacher: VideoUNet, config: UNetConfig) -> VideoUNet:
    """A U-Net with `config` initialised from the teacher's weights (Meng et al.). A guidance embedding the
    teacher lacks gets a zero output layer, so the student starts as the conditional teacher at every w."""
    student = VideoUNet(config).to(next(teacher.parameters()).device)
    missing, unexpected = student.load_state_dict(teacher.state_dict(), strict=False)
    foreign = [k for k in missing if not k.startswith("guidance_emb.")] + list(unexpected)
    if foreign:
        raise ValueError(f"student and teacher U-Nets differ beyond the guidance embedding: {foreign[:3]}")
    if missing:
        nn.init.zeros_(student.guidance_emb.net[-1].weight)
        nn.init.zeros_(student.guidance_emb.net[-1].bias)
    return student.train().requires_grad_(True)


def freeze(student: VideoUNet, prefixes: tuple[str, ...]) -> VideoUNet:
    """`student` with requires_grad off for every parameter whose name starts with one of `prefixes`
    (DistillConfig.frozen); a prefix that names no parameter is a UserError."""
    check_prefixes(student, prefixes, "frozen")
    for name, param in student.named_parameters():
        param.requires_grad_(not (prefixes and name.startswith(prefixes)))
    return student


def example_guidance_weight(seed: int, step: int, j: int, w_min: float, w_max: float) -> Tensor:
    """w ~ U[w_min, w_max] of example (step, j), from its own stream seeded by (seed, step, j, 1)."""
    g = torch.Generator().manual_seed(sample_seed(seed, step, j, W_STREAM))
    return w_min + (w_max - w_min) * torch.rand((), generator=g)


@dataclass
class Conditioning:
    """One micro-batch's conditioning on the device: text, SR condition and its level, image mode, w [B]."""

    text_emb: Tensor
    text_mask: Tensor
    lowres: Tensor | None
    cond_aug_log_snr: Tensor | None
    image_mode: Tensor | None
    guidance_weight: Tensor

    def denoiser(self, unet: nn.Module, schedule, text: bool = True, w: Tensor | None = None) -> Callable:
        """(z, t) -> v of `unet` under this conditioning; text=False: the unconditional branch; w [B]: the
        guidance weight of a w-conditioned U-Net."""
        mask = self.text_mask if text else torch.zeros_like(self.text_mask)

        def call(z: Tensor, t: Tensor) -> Tensor:
            log_snr = schedule.log_snr(t)
            return unet(
                z,
                log_snr,
                self.text_emb,
                mask,
                self.lowres,
                self.cond_aug_log_snr,
                w,
                image_mode=self.image_mode,
            )

        return call


class DistillTask(StageTask):
    """A stage task whose examples carry w and whose model is a student of a frozen teacher U-Net."""

    def __init__(
        self, config: TrainConfig, ctx: Dist, w_min: float, w_max: float, frozen: tuple[str, ...] = ()
    ):
        super().__init__(config, ctx)
        self.w_min, self.w_max, self.frozen = w_min, w_max, tuple(frozen)
        self.teacher: VideoUNet | None = None

    def initial_model(self) -> None:
        """No U-Net until set_teacher: the student starts as a copy of the teacher (a random one is waste)."""
        return None

    def batches(self, start_step: int, micro_batch: int) -> Iterator[dict]:
        """The stage's micro-batches, each example (step, j) with w ~ U[w_min, w_max] seeded by
        (seed, step, j, 1): independent of its other draws and of the number of processes."""
        ctx, accum = self.ctx, self.config.loop.grad_accum
        for k, batch in enumerate(super().batches(start_step, micro_batch)):
            step = start_step + k // accum
            positions = micro_positions(k % accum, ctx.rank, ctx.world_size, micro_batch)
            draws = [
                example_guidance_weight(self.config.seed, step, j, self.w_min, self.w_max) for j in positions
            ]
            batch["w"] = torch.stack(draws)
            yield batch

    def set_teacher(self, teacher: VideoUNet, stage: Stage) -> None:
        """Freeze `teacher` on the device and start a student of `stage` from it (previews sample `stage`)."""
        self.teacher = teacher.to(self.ctx.device).eval().requires_grad_(False)
        self.stage = stage
        torch.manual_seed(self.config.seed)  # the new guidance-embedding layers: same init on every run
        self.model = freeze(student_unet(self.teacher, stage.unet), self.frozen)

    def prepare(self, batch: dict) -> tuple[Tensor, Tensor, Tensor, Conditioning]:
        """(x, t, eps, conditioning) of a micro-batch on the device (as in StageTask.loss)."""
        device = self.ctx.device
        x, t, eps = batch["x"].to(device), batch["t"].to(device), batch["eps"].to(device)
        emb, mask = self.text_condition(batch)
        image = batch["image"].to(device)
        lowres = aug_log_snr = None
        if "lowres" in batch:
            lowres = batch["lowres"].to(device)
            aug_log_snr = cond_aug_log_snr(batch["cond_aug_level"], x.shape[0]).to(device)
        cond = Conditioning(
            emb, mask, lowres, aug_log_snr, image if bool(image.any()) else None,
            batch["w"].to(device=device, dtype=x.dtype),
        )  # fmt: skip
        return x, t, eps, cond


class GuidedTask(DistillTask):
    """Meng et al. stage 1: the student x_hat(z_t, w) learns (1 + w) x_hat(z_t, c) - w x_hat(z_t)."""

    def loss(self, model: nn.Module, batch: dict) -> Tensor:
        x, t, eps, cond = self.prepare(batch)
        schedule = self.stage.schedule
        return guided_loss(
            lambda z, t, w: cond.denoiser(model, schedule, w=w)(z, t),
            cond.denoiser(self.teacher, schedule),
            cond.denoiser(self.teacher, schedule, text=False),
            x, schedule, self.w_min, self.w_max, self.config.loss_weighting,
            guidance_weight=cond.guidance_weight, t=t, noise=eps,
        )  # fmt: skip

    @torch.no_grad()
    def fidelity(self, student: nn.Module, weights: tuple[float, ...], examples: int) -> dict[float, tuple]:
        """{w: (relative error, guidance captured, effective w)} of `student` (guided.guidance_fidelity) on
        `examples` clips of step FIDELITY_STEP, an index no run reaches, each at its own t ~ U[0, 1], eps."""
        batch = next(iter(self.batches(FIDELITY_STEP, examples)))
        x, t, eps, cond = self.prepare(batch)
        schedule = self.stage.schedule
        alpha, sigma = schedule.alpha_sigma(t)
        z_t = expand_like(alpha, x) * x + expand_like(sigma, x) * eps
        was_training = student.training
        student.eval()
        try:
            return {
                w: guidance_fidelity(
                    lambda z, t, w: cond.denoiser(student, schedule, w=w)(z, t),
                    cond.denoiser(self.teacher, schedule),
                    cond.denoiser(self.teacher, schedule, text=False),
                    z_t,
                    t,
                    w,
                )
                for w in weights
            }
        finally:
            student.train(was_training)


class ProgressiveTask(DistillTask):
    """Salimans & Ho Alg. 2 for the student's N = stage.steps; i = ceil(t N) turns the example's t ~ U[0, 1]
    into i ~ U{1..N}. A w-conditioned teacher (a guided student) is distilled at the example's w."""

    def loss(self, model: nn.Module, batch: dict) -> Tensor:
        x, t, eps, cond = self.prepare(batch)
        schedule, num_steps = self.stage.schedule, self.stage.steps
        w = cond.guidance_weight if self.stage.unet.guidance_embedding else None
        i = torch.ceil(t * num_steps).long().clamp(1, num_steps)
        return progressive_loss(
            cond.denoiser(model, schedule, w=w),
            cond.denoiser(self.teacher, schedule, w=w),
            x, schedule, num_steps, self.config.loss_weighting, i=i, noise=eps,
        )  # fmt: skip
