"""Run guided or progressive distillation of one stage and write the cascade folder with the student.

Guided: one training-loop run in `run_dir`; the student keeps the teacher's sampler and steps and gains the
guidance embedding (guided sampling then costs one network evaluation per step). Progressive: one run per
halving in `run_dir/steps_NNNN` (the student's N); each round's EMA weights are the next round's teacher and
student initialisation; the final student is recorded with the "stochastic" sampler and N = end_steps.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

from tqdm import tqdm

from imagen_video.cascade import Cascade, Stage, replace_stage
from imagen_video.config import dataclass_to_dict
from imagen_video.distill.config import DistillConfig, ProgressiveConfig, check_halving
from imagen_video.distill.progressive import halving_schedule
from imagen_video.distill.task import GuidedTask, ProgressiveTask, train_config, training_stage
from imagen_video.errors import UserError
from imagen_video.models import VideoUNet
from imagen_video.train import checkpoint, distributed
from imagen_video.train.export import ema_unet
from imagen_video.train.loop import run_loop

DISTILLED_SAMPLER = "stochastic"  # Meng et al.'s N-step sampler for distilled models (SPEC §7)


def write_student(cascade: Cascade, stage: Stage, unet: VideoUNet, out: str | Path) -> Path:
    """The teacher cascade with stage `stage.name` (config: U-Net, sampler, steps) and its weights replaced,
    saved as a cascade folder at `out` (which may be the teacher's own folder)."""
    config = replace_stage(
        cascade.config, stage.name, unet=stage.unet, sampler=stage.sampler, steps=stage.steps
    )
    student = Cascade(config, cascade.weights_dir)
    student.set_unet(stage.name, unet)
    return student.save(out)


def _saved_config(config: DistillConfig, cascade: Cascade, stage: Stage) -> dict:
    """What each checkpoint records: the distillation config, the student stage, the text encoder."""
    encoder = cascade.config.text_encoder
    return {
        "distill": dataclass_to_dict(config),
        "stage": dataclass_to_dict(stage),
        "text_encoder": {"name": encoder.name, "max_length": encoder.max_length},
    }


def _load_teacher(config: DistillConfig) -> tuple[Cascade, Stage]:
    cascade = Cascade.load(config.teacher)
    return cascade, cascade.stage(config.stage)


def fidelity_weights(w_min: float, w_max: float) -> tuple[float, ...]:
    """The w > 0 a guided student is checked at: a quarter, half and all of the way across [w_min, w_max]."""
    return tuple(w for w in (w_min + f * (w_max - w_min) for f in (0.25, 0.5, 1.0)) if w > 0)


def report_fidelity(task: GuidedTask, student: VideoUNet, config: DistillConfig) -> dict | None:
    """Measure the guided student against its teacher (GuidedTask.fidelity), print the table and write it to
    run_dir/guidance_fidelity.json; None when config.fidelity_examples is 0 or the range has no w > 0."""
    weights = fidelity_weights(config.w_min, config.w_max)
    if not config.fidelity_examples or not weights:
        return None
    student = student.to(task.ctx.device)
    table = task.fidelity(student, weights, config.fidelity_examples)
    report = {
        "examples": config.fidelity_examples,
        "w": {
            f"{w:g}": {"relative_error": e, "guidance_captured": c, "effective_w": ew}
            for w, (e, c, ew) in table.items()
        },
    }
    print(f"guided student vs guided teacher on {config.fidelity_examples} clips (v; captured 1 = faithful, "
          "0 = ignores w):")  # fmt: skip
    for w, (e, c, ew) in table.items():
        print(
            f"  w = {w:<5g} relative error {100 * e:5.1f} %   guidance captured {c:6.3f}   "
            f"effective w {ew:6.2f}"
        )
    path = Path(config.run_dir) / "guidance_fidelity.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    return report


def guided_task(config: DistillConfig, ctx: distributed.Dist) -> tuple[Cascade, GuidedTask]:
    """The teacher cascade and the guided task whose student (a fresh copy of the teacher stage with a
    guidance embedding) distils it."""
    cascade, teacher_stage = _load_teacher(config)
    if teacher_stage.unet.guidance_embedding:
        raise UserError(
            f"stage {config.stage!r} of {config.teacher} already takes a guidance weight (it is a guided "
            "student); distil it further with `imagen-video distill progressive`"
        )
    unet = dataclasses.replace(teacher_stage.unet, guidance_embedding=True)
    stage = training_stage(config, dataclasses.replace(teacher_stage, unet=unet))
    task = GuidedTask(train_config(config, cascade, stage), ctx, config.w_min, config.w_max, config.frozen)
    task.set_teacher(cascade.unet(stage.name), stage)
    return cascade, task


def distill_guided(config: DistillConfig, resume: bool = False) -> Path:
    """Meng et al. stage 1 on the training loop; returns the output cascade folder."""
    ctx = distributed.setup(config.loop.threads)
    try:
        cascade, task = guided_task(config, ctx)
        stage = task.stage
        saved = _saved_config(config, cascade, stage)
        result = run_loop(task, config.loop, config.optim, config.run_dir, ctx, config=saved, resume=resume)
        if ctx.is_main:
            student_stage, student = ema_unet(checkpoint.load(result.checkpoint))
            write_student(cascade, student_stage, student, config.out)
            report_fidelity(task, student, config)
        distributed.barrier()
        return Path(config.out)
    finally:
        distributed.cleanup()


def distill_progressive(config: ProgressiveConfig, resume: bool = False) -> Path:
    """Salimans & Ho Alg. 2, N halved from start_steps to end_steps; returns the output cascade folder.

    With `resume`, finished rounds are skipped (their EMA weights become the next teacher) and an
    interrupted round continues exactly from its last checkpoint. When `loop.max_minutes` (counted over all
    rounds) runs out, the round it cut is written as the student (with its N) and the run stops there.
    """
    ctx = distributed.setup(config.loop.threads)
    try:
        cascade, teacher_stage = _load_teacher(config)
        start_steps = config.start_steps or teacher_stage.steps
        check_halving(start_steps, config.end_steps)
        rounds = halving_schedule(start_steps, config.end_steps)
        round_dirs = {n: Path(config.run_dir) / f"steps_{n:04d}" for n in rounds}
        started = [n for n in rounds if (round_dirs[n] / checkpoint.LATEST).is_file()]
        if resume and not started:
            raise UserError(f"--resume: no checkpoint under {config.run_dir}; run without --resume to start")

        def round_stage(n: int) -> Stage:
            return training_stage(
                config, dataclasses.replace(teacher_stage, sampler=DISTILLED_SAMPLER, steps=n)
            )

        task = ProgressiveTask(
            train_config(config, cascade, round_stage(rounds[0])),
            ctx,
            config.w_min,
            config.w_max,
            config.frozen,
        )
        teacher = cascade.unet(teacher_stage.name)
        show = ctx.is_main and config.loop.progress
        bar = tqdm(
            rounds, desc=f"halvings {start_steps}->{config.end_steps}", unit="halving", disable=not show
        )
        begun, student_steps = time.perf_counter(), rounds[-1]  # loop.max_minutes counts over all rounds
        for n in bar:
            bar.set_postfix_str(f"student {n} steps")
            latest = round_dirs[n] / checkpoint.LATEST
            if resume and latest.is_file() and checkpoint.load(latest)["step"] >= config.loop.steps:
                teacher = ema_unet(checkpoint.load(latest))[1]
                continue
            task.set_teacher(teacher, round_stage(n))
            saved = {**_saved_config(config, cascade, round_stage(n)), "student_steps": n}
            result = run_loop(
                task,
                config.loop,
                config.optim,
                round_dirs[n],
                ctx,
                config=saved,
                resume=resume and n in started,
                started=begun,
            )
            teacher = ema_unet(checkpoint.load(result.checkpoint))[1]
            if result.step < config.loop.steps:  # out of time: write this round's student; --resume goes on
                student_steps = n
                break
        bar.close()
        if ctx.is_main:
            write_student(cascade, round_stage(student_steps), teacher, config.out)
        distributed.barrier()
        return Path(config.out)
    finally:
        distributed.cleanup()
