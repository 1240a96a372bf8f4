"""Distillation run configs (`imagen-video distill guided|progressive CONFIG.yaml`), unknown keys rejected.

Both stages read one stage of a teacher cascade folder and write a cascade folder (`out`) that is the teacher
with that stage replaced by the student; the data, optimiser and loop sections are the training run's
(train/config.py), so distillation runs on the same loop: DDP, EMA, atomic checkpoints, exact resume.

    teacher: runs/cascade          # a cascade folder (or packaged name) holding the teacher stage
    stage: base                    # which stage to distil
    out: runs/cascade-distilled    # where the cascade with the student goes (may equal `teacher`)
    run_dir: runs/distill/base     # checkpoints, metrics, previews
    w_min: 0.0                     # guidance weights the student learns (guided), or draws (progressive)
    w_max: 15.0
    start_steps: 128               # progressive only: the teacher's DDIM steps (default: the stage's)
    end_steps: 8                   # progressive only: halve until this many steps
    train_frames: 8                # optional: train on 8-frame temporal crops of the stage's clips
    loop: {steps: 2000, batch_size: 16}   # guided: iterations; progressive: iterations per halving
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from imagen_video.config import dataclass_from_dict, read_yaml
from imagen_video.diffusion import WEIGHTINGS
from imagen_video.errors import UserError
from imagen_video.train.config import DataSpec, LoopSpec, OptimSpec, SampleSpec, check_prefix_list

T = TypeVar("T")


@dataclass(frozen=True)
class DistillConfig:
    """Guided distillation (Meng et al. stage 1; SPEC §7), and what progressive distillation shares with it.

    - `w_min`, `w_max`: the student learns (1 + w) x(z, c) - w x(z) for w ~ U[w_min, w_max]. OUR CHOICE:
      [0, 15], which covers the paper's constant w = 6 and oscillate(15, 1).
    - `weighting`: weight on the x-MSE as in diffusion.v_loss; "snr_trunc" = max(SNR, 1) (Salimans & Ho),
      "v" = SNR + 1.
    - `cond_aug_max`: SR stages see their low-resolution condition augmented at t' ~ U[0, cond_aug_max].
      Set it to at most the cap the teacher was trained with: above it the teacher's outputs are off its
      training distribution and the student spends its iterations on inputs it never meets when sampled
      (the shipped tiny TSR / SSR1 students, of teachers trained at cap 0, were distilled at 1.0).
    - `text_cache`: a folder caching the teacher's text-encoder embeddings of the captions (None: memory).
    - `text_in_workers`: encode captions in the DataLoader workers (needs data.num_workers > 0), as the
      training config's text.in_workers: the same embeddings, off the main process. MEASURED on an H200:
      every stage of the tiny cascade distilled at ~0.6 s/step (batch 16 to 64) with captions encoded one
      at a time on the main process's CPU (~10 ms each), the likely bound; training with them in 14 workers
      ran at 0.15 s/step.
    - `fidelity_examples`: guided only: after the run, the EMA student's relative error and share of the
      guidance direction captured (guided.guidance_fidelity) at three w in the range are measured on this
      many clips (0: off), printed and written to run_dir/guidance_fidelity.json.
    - `train_frames`: train on clips of this many frames instead of the stage's (a temporal crop; the
      condition keeps the stage's frame ratio). OUR CHOICE for stages convolutional in time (the tiny SSRs
      were trained on 8-frame crops): a fraction of the cost per iteration; the student written out keeps
      the stage's frames. None: the stage's own.
    - `frozen`: parameter-name prefixes the student keeps at the teacher's values, untrained (e.g.
      [prior_mean.]). OUR CHOICE for a fitted text prior mean, which a guided student already applies in
      closed form, (1 + w) b(c) - w b(no text), so it needs no training; trained, it is rewritten by the
      distillation loss. Empty (default): every weight is trained.
    - `loop.steps`: the number of iterations (progressive: per halving).
    """

    teacher: str
    stage: str
    out: str
    run_dir: str = "runs/distill"
    seed: int = 0
    w_min: float = 0.0
    w_max: float = 15.0
    weighting: str = "snr_trunc"
    cond_aug_max: float = 1.0
    text_cache: str | None = None
    text_in_workers: bool = False
    fidelity_examples: int = 16
    train_frames: int | None = None
    frozen: tuple[str, ...] = ()
    data: DataSpec = field(default_factory=DataSpec)
    optim: OptimSpec = field(default_factory=OptimSpec)
    loop: LoopSpec = field(default_factory=LoopSpec)
    sample: SampleSpec = field(default_factory=SampleSpec)

    def __post_init__(self):
        if not 0.0 <= self.w_min <= self.w_max:
            raise UserError(f"need 0 <= w_min <= w_max (w = 0: no guidance); got {self.w_min}, {self.w_max}")
        if self.weighting not in WEIGHTINGS:
            raise UserError(f"weighting {self.weighting!r} unknown; choose one of {', '.join(WEIGHTINGS)}")
        if not 0.0 <= self.cond_aug_max <= 1.0:
            raise UserError(f"cond_aug_max is an augmentation level in [0, 1], got {self.cond_aug_max}")
        if self.fidelity_examples < 0:
            raise UserError(f"fidelity_examples must be >= 0 (0: off), got {self.fidelity_examples}")
        check_prefix_list(self.frozen, "frozen")
        if self.train_frames is not None and self.train_frames < 1:
            raise UserError(
                f"train_frames must be >= 1 (or unset: the stage's frames), got {self.train_frames}"
            )


@dataclass(frozen=True)
class ProgressiveConfig(DistillConfig):
    """Progressive distillation (Salimans & Ho Alg. 2; SPEC §7): N = start_steps DDIM steps, halved to
    end_steps (start_steps / end_steps a power of two); `loop.steps` iterations per halving. A teacher stage
    with a guidance embedding (a guided student) is distilled with w ~ U[w_min, w_max] per example."""

    start_steps: int | None = None
    end_steps: int = 8

    def __post_init__(self):
        super().__post_init__()
        check_halving(self.start_steps or 2 * self.end_steps, self.end_steps)


def check_halving(start_steps: int, end_steps: int) -> None:
    """UserError unless start_steps = end_steps * 2^k with k >= 1 and end_steps >= 1."""
    ratio = start_steps // end_steps if end_steps >= 1 else 0
    if end_steps < 1 or start_steps % end_steps or ratio < 2 or ratio & (ratio - 1):
        raise UserError(
            f"progressive distillation halves the step count: start_steps={start_steps} must be end_steps="
            f"{end_steps} times a power of two >= 2 (e.g. 128 -> 8); fix start_steps or end_steps"
        )


def load_config(cls: type[T], path: str | Path) -> T:
    """YAML file -> DistillConfig or ProgressiveConfig; unknown keys and bad values are UserErrors."""
    return dataclass_from_dict(cls, read_yaml(path), str(path))
