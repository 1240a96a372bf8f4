"""The one training loop (nanoGPT style, read it top to bottom), shared by stage training and distillation.

What is trained, on what, with which loss is a `Task`; the loop owns everything else: AdamW with linear
warmup, gradient accumulation (no gradient sync on non-final micro-steps), bf16 autocast, global-norm
clipping, a float32 EMA, a NaN/inf guard, DDP or FSDP2, metrics, preview samples and atomic checkpoints with
exact resume.

Exact resume holds because nothing in a step depends on hidden state: every random draw of a sample is a
pure function of (seed, step, position in the global batch), and the checkpoint restores model, EMA,
optimizer, scheduler and every process's RNG.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import Tensor, nn
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_optimizer_state_dict,
    set_model_state_dict,
    set_optimizer_state_dict,
)
from tqdm import tqdm

from imagen_video.errors import UserError
from imagen_video.train import checkpoint, distributed
from imagen_video.train.config import LoopSpec, OptimSpec
from imagen_video.train.distributed import Dist
from imagen_video.train.ema import EMA, ema_decay_at
from imagen_video.train.metrics import MetricsLogger


class Task(Protocol):
    """What the loop trains: `model` (unwrapped), its micro-batches in order, its loss, its previews."""

    model: nn.Module
    unused_parameters: bool  # True when some micro-batches leave parameters out of the graph

    def batches(self, start_step: int, micro_batch: int) -> Iterator[Any]:
        """This process's micro-batches of every step from `start_step` on, `grad_accum` per step."""

    def loss(self, model: nn.Module, batch: Any) -> Tensor:
        """Scalar mean loss of one micro-batch; `model` is the (possibly DDP-wrapped) network to call."""

    def write_samples(self, ema_state: dict[str, Tensor], step: int, folder: Path) -> list[Path]:
        """Preview videos from the EMA weights (called on rank 0 only)."""


class TrainingDiverged(RuntimeError):
    """The loss or gradient norm became NaN/inf; nothing of that step was saved."""


@dataclass(frozen=True)
class LoopResult:
    step: int
    loss: float
    checkpoint: Path | None


def autocast(precision: str, device: torch.device):
    """bf16 autocast on CUDA for 'auto'/'bf16', on CPU only for 'bf16'; float32 otherwise."""
    if precision == "bf16" or (precision == "auto" and device.type == "cuda"):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def warmup_factor(step: int, warmup_steps: int) -> float:
    """Linear warmup: lr * min(1, (step + 1) / warmup_steps), then constant."""
    return min(1.0, (step + 1) / warmup_steps) if warmup_steps else 1.0


def decay_factor(step: int, start: int, end: int, final_ratio: float) -> float:
    """Cosine decay: 1 before `start`, r + (1 - r) (1 + cos(pi (step - start) / (end - start))) / 2 on
    [start, end], r = final_ratio after `end`; 1 everywhere when end <= start (no decay)."""
    if end <= start or step <= start:
        return 1.0
    progress = min(1.0, (step - start) / (end - start))
    return final_ratio + (1.0 - final_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def lr_factor(step: int, optim: OptimSpec) -> float:
    """The lr multiplier at optimizer step `step`: warmup times decay."""
    decay = decay_factor(step, optim.decay_start, optim.decay_end, optim.final_lr_ratio)
    return warmup_factor(step, optim.warmup_steps) * decay


def check_finite(step: int, loss: float, grad_norm: float, saved: Path | None, lr: float) -> None:
    """Raise TrainingDiverged (naming the step and the kept checkpoint) if loss or grad norm is NaN/inf."""
    if math.isfinite(loss) and math.isfinite(grad_norm):
        return
    what = f"loss is {loss}" if not math.isfinite(loss) else f"gradient norm is {grad_norm}"
    kept = f"the last good checkpoint {saved} is intact" if saved else "no checkpoint was written yet"
    raise TrainingDiverged(
        f"training diverged at step {step}: {what}; stopped without updating or saving ({kept}). "
        f"Lower optim.lr (now {lr}), raise optim.warmup_steps or set optim.grad_clip, then --resume."
    )


def _full(value: Tensor) -> Tensor:
    return value.full_tensor() if hasattr(value, "full_tensor") else value


def out_of_time(started: float, max_minutes: float, device: torch.device) -> bool:
    """True on every process once any has run `max_minutes` since `started` (never when it is 0)."""
    if not max_minutes:
        return False
    over = torch.tensor(float(time.perf_counter() - started >= 60.0 * max_minutes), device=device)
    return bool(distributed.all_reduce_mean(over) > 0)


def run_loop(
    task: Task,
    loop: LoopSpec,
    optim: OptimSpec,
    out_dir: str | Path,
    ctx: Dist,
    *,
    config: dict,
    resume: bool = False,
    max_steps: int | None = None,
    started: float | None = None,
) -> LoopResult:
    """Train `task.model` to step `max_steps` (default `loop.steps`), or until `loop.max_minutes` have passed
    since `started` (a time.perf_counter() value; default: now); checkpoints and logs go to `out_dir`."""
    started = time.perf_counter() if started is None else started
    out_dir = Path(out_dir)
    total_steps = max_steps or loop.steps
    per_step = ctx.world_size * loop.grad_accum
    if loop.batch_size % per_step:
        raise UserError(
            f"loop.batch_size={loop.batch_size} is not divisible by processes x grad_accum = "
            f"{ctx.world_size} x "
            f"{loop.grad_accum}; change batch_size, grad_accum or the number of processes"
        )
    micro_batch = loop.batch_size // per_step
    latest = out_dir / checkpoint.LATEST
    if resume and not latest.is_file():
        raise UserError(f"--resume: no checkpoint at {latest}; run without --resume to start a new run")
    if not resume and latest.is_file():
        raise UserError(
            f"{latest} exists: pass --resume to continue that run, or choose another --out folder"
        )
    if ctx.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
        checkpoint.remove_stale_temps(out_dir)

    # model, DDP/FSDP2, EMA shadow, optimizer; the same initial weights on every process
    model = task.model.to(ctx.device)
    wrapped = distributed.wrap(model, loop.parallel, ctx, find_unused_parameters=task.unused_parameters)
    if loop.compile:
        wrapped.compile()  # in place: parameters and state-dict keys stay those of `model`
    ema = EMA(model)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        params, lr=optim.lr, betas=optim.betas, eps=optim.eps, weight_decay=optim.weight_decay
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, optim))
    full = StateDictOptions(full_state_dict=True, cpu_offload=True)

    step = 0
    if resume:
        state = checkpoint.load(latest)
        set_model_state_dict(wrapped, state["model"], options=StateDictOptions(full_state_dict=True))
        set_optimizer_state_dict(
            wrapped, optimizer, state["optimizer"], options=StateDictOptions(full_state_dict=True)
        )
        scheduler.load_state_dict(state["scheduler"])
        ema.load_state_dict(state["ema"])
        checkpoint.restore_rng(state["rng"][min(ctx.rank, len(state["rng"]) - 1)])
        step = int(state["step"])
        del state

    def save(step: int) -> Path:
        state = {
            "step": step,
            "model": get_model_state_dict(wrapped, options=full),
            "ema": ema.state_dict(),
            "optimizer": get_optimizer_state_dict(wrapped, optimizer, options=full),
            "scheduler": scheduler.state_dict(),
            "rng": distributed.all_gather_objects(checkpoint.capture_rng()),
            "config": config,
            "world_size": ctx.world_size,
        }
        if ctx.is_main:
            checkpoint.write(state, out_dir, step, loop.keep_every)
        distributed.barrier()
        return latest

    logger = MetricsLogger(out_dir, step, loop.tensorboard) if ctx.is_main else None
    show = ctx.is_main and loop.progress
    bar = tqdm(total=total_steps, initial=step, disable=not show, dynamic_ncols=True)
    batches = task.batches(step, micro_batch)
    saved = latest if resume else None
    loss_value = float("nan")
    wrapped.train()
    try:
        while step < total_steps:
            step_started = time.perf_counter()
            loss_sum = torch.zeros((), device=ctx.device)
            for micro in range(loop.grad_accum):
                batch = next(batches)
                with distributed.no_sync(wrapped, skip=micro < loop.grad_accum - 1):
                    with autocast(loop.precision, ctx.device):
                        loss = task.loss(wrapped, batch) / loop.grad_accum
                    loss.backward()
                loss_sum += loss.detach().float()
            loss_value = float(distributed.all_reduce_mean(loss_sum))
            grad_norm = float(_full(nn.utils.clip_grad_norm_(params, optim.grad_clip or float("inf"))))
            check_finite(step + 1, loss_value, grad_norm, saved, optim.lr)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            ema.update(model, ema_decay_at(step, loop.ema_decay, loop.ema_warmup))
            step += 1

            if ctx.is_main:
                if step % loop.log_every == 0:
                    lr, seconds = scheduler.get_last_lr()[0], time.perf_counter() - step_started
                    logger.log(step, loss=loss_value, lr=lr, grad_norm=grad_norm, seconds=seconds)
                bar.set_postfix(loss=f"{loss_value:.4f}", refresh=False)
                bar.update()
            if loop.sample_every and step % loop.sample_every == 0:
                ema_state = ema.model_state_dict(model)
                if ctx.is_main:
                    with torch.random.fork_rng(devices=[ctx.device] if ctx.device.type == "cuda" else []):
                        paths = task.write_samples(ema_state, step, out_dir / "samples")
                    bar.write(f"step {step}: samples {', '.join(map(str, paths))}")
                distributed.barrier()
            stop = out_of_time(started, loop.max_minutes, ctx.device)
            if step % loop.checkpoint_every == 0 or step == total_steps or stop:
                saved = save(step)
            if stop and step < total_steps:
                if ctx.is_main:
                    bar.write(
                        f"loop.max_minutes={loop.max_minutes:g} reached at step {step} of {total_steps}: "
                        "checkpoint written; --resume continues the run"
                    )
                break
    finally:
        bar.close()
        if logger is not None:
            logger.close()
    return LoopResult(step=step, loss=loss_value, checkpoint=saved)
