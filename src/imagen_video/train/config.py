"""Training run configs: frozen dataclasses loaded from YAML (`load_train_config`), unknown keys rejected.

A run config has one section per concern: `stage` (a cascade stage entry exactly as in a cascade YAML, see
cascade/config.py: it is what `export` writes into the cascade folder), `condition` (SR stages: the previous
stage's shape, the augmentation cap), `data`, `text`, `optim`, `loop` (steps, batch, parallelism, checkpoints;
shared with distillation) and `sample` (the preview videos written during training).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from imagen_video.cascade import Stage
from imagen_video.cascade.config import resolve_unet
from imagen_video.config import dataclass_from_dict, read_yaml
from imagen_video.data.shapes import TWO_OBJECT_FRACTION
from imagen_video.errors import UserError

DATA_SOURCES = ("shapes", "folder", "shards")
PRECISIONS = ("auto", "bf16", "fp32")
PARALLEL = ("ddp", "fsdp")


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise UserError(message)


def check_prefix_list(value: object, key: str) -> None:
    """UserError unless `value` (config key `key`) is a list of non-empty parameter-name prefixes."""
    prefixes = value if isinstance(value, (list, tuple)) else [None]
    _check(
        all(isinstance(p, str) and p for p in prefixes),
        f"{key} must be a list of parameter-name prefixes like [prior_mean.], got {value!r}",
    )


def _positive(section: str, **values: float) -> None:
    for name, value in values.items():
        _check(value > 0, f"{section}.{name} must be > 0, got {value}")


@dataclass(frozen=True)
class ConditionSpec:
    """SR stages: the previous stage's output shape (what this stage is conditioned on) and the training
    noise-augmentation cap, t' ~ U[0, cond_aug_max] (SPEC §3, OUR CHOICE: 1.0).

    Unset sizes default to the paper's factors: a TSR halves the frames (and fps), an SSR halves height and
    width (set them for x4 stages).
    """

    frames: int | None = None
    height: int | None = None
    width: int | None = None
    cond_aug_max: float = 1.0

    def __post_init__(self):
        _check(
            0.0 <= self.cond_aug_max <= 1.0,
            f"condition.cond_aug_max must be in [0, 1], got {self.cond_aug_max}",
        )

    def shape(self, stage: Stage) -> tuple[int, int, int] | None:
        """(frames, height, width) of the condition of `stage`, or None for a base stage."""
        if stage.kind == "base":
            return None
        frames = stage.frames // 2 if stage.kind == "tsr" else stage.frames
        height, width = (
            (stage.height, stage.width) if stage.kind == "tsr" else (stage.height // 2, stage.width // 2)
        )
        shape = (self.frames or frames, self.height or height, self.width or width)
        if stage.kind == "tsr":
            _check(
                shape[0] >= 1 and stage.frames % shape[0] == 0 and shape[1:] == (stage.height, stage.width),
                f"condition of tsr stage {stage.name!r}: {stage.frames} frames must be a multiple of "
                f"condition.frames={shape[0]} at the same {stage.height}x{stage.width} size",
            )
        else:
            _check(
                shape[0] == stage.frames and shape[1] <= stage.height and shape[2] <= stage.width,
                f"condition of ssr stage {stage.name!r}: {shape} must keep {stage.frames} frames and be no "
                f"larger than {stage.height}x{stage.width}",
            )
        return shape


@dataclass(frozen=True)
class DataSpec:
    """Where clips come from: `shapes` (procedural), `folder` (videos + .txt captions), `shards` (tar).

    `image_fraction` of every global batch are still-image samples in image mode (joint training, SPEC §4).
    `two_object_fraction`, `paraphrase`: ShapesDataset's share of two-object scenes and its paraphrased
    captions (False: canonical captions only); `shapes` source only.
    """

    source: str = "shapes"
    path: str | None = None
    split: str = "train"
    length: int = 100_000
    seed: int = 0
    image_fraction: float = 0.0
    two_object_fraction: float = TWO_OBJECT_FRACTION
    paraphrase: bool = True
    num_workers: int = 0

    def __post_init__(self):
        _check(self.source in DATA_SOURCES, f"data.source must be one of {DATA_SOURCES}, got {self.source!r}")
        _check(
            self.source == "shapes" or bool(self.path),
            f"data.path is required for data.source={self.source!r} (a folder of videos or tar shards)",
        )
        _check(
            0.0 <= self.image_fraction <= 1.0,
            f"data.image_fraction must be in [0, 1], got {self.image_fraction}",
        )
        _check(self.num_workers >= 0, f"data.num_workers must be >= 0, got {self.num_workers}")
        _check(
            0.0 <= self.two_object_fraction <= 1.0,
            f"data.two_object_fraction must be in [0, 1], got {self.two_object_fraction}",
        )
        _check(
            self.source == "shapes" or (self.two_object_fraction == TWO_OBJECT_FRACTION and self.paraphrase),
            "data.two_object_fraction and data.paraphrase set the shapes source only; data.source is "
            f"{self.source!r}",
        )


@dataclass(frozen=True)
class TextSpec:
    """Frozen text encoder ('minilm', 'minilm+input', a T5 folder, or 'hash' for tests) and
    classifier-free-guidance dropout.

    `dropout`: fraction of training samples whose text is dropped (mask all False), SPEC §6 OUR CHOICE 10%.
    `cache`: a directory for cached prompt embeddings (None: an in-memory cache only).
    `in_workers`: encode captions in the DataLoader workers (needs data.num_workers > 0; for CPU encoders),
    so text encoding overlaps training on a CPU.
    """

    encoder: str = "minilm"
    max_length: int = 16
    dropout: float = 0.1
    cache: str | None = None
    in_workers: bool = False

    def __post_init__(self):
        _check(0.0 <= self.dropout <= 1.0, f"text.dropout must be in [0, 1], got {self.dropout}")
        _positive("text", max_length=self.max_length)


@dataclass(frozen=True)
class OptimSpec:
    """AdamW with linear warmup to `lr`, constant, then (if decay_end > decay_start) a cosine decay to
    lr * final_lr_ratio over steps [decay_start, decay_end]; global-norm gradient clipping (0: off)."""

    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.99)
    eps: float = 1e-8
    weight_decay: float = 0.0
    warmup_steps: int = 500
    grad_clip: float = 1.0
    decay_start: int = 0
    decay_end: int = 0
    final_lr_ratio: float = 0.1

    def __post_init__(self):
        _positive("optim", lr=self.lr)
        _check(
            self.warmup_steps >= 0 and self.grad_clip >= 0, "optim.warmup_steps and grad_clip must be >= 0"
        )
        _check(
            self.decay_start >= 0 and (self.decay_end == 0 or self.decay_end > self.decay_start),
            f"optim.decay_end must be 0 (no decay) or > decay_start >= 0, "
            f"got decay_start {self.decay_start}, decay_end {self.decay_end}",
        )
        _check(
            0.0 <= self.final_lr_ratio <= 1.0,
            f"optim.final_lr_ratio must be in [0, 1], got {self.final_lr_ratio}",
        )


@dataclass(frozen=True)
class LoopSpec:
    """The step loop, shared by training and distillation.

    `batch_size` is global: each of W processes runs `batch_size / (W * grad_accum)` samples per micro-step so
    the same config gives the same run on any number of processes. `precision: auto` is bf16 autocast on CUDA,
    float32 on CPU. `keep_every` also keeps `step_XXXXXXXX.pt` every that many steps (0: only `latest.pt`).
    `threads`: CPU threads per process (0: torch's default; 1 is much faster for tiny models on a busy CPU).
    `compile`: torch.compile the (wrapped) model's forward in place (same parameters and state-dict keys, so
    checkpoints and resume are unchanged); for GPUs, where a small U-Net's step is bound by kernel launches.
    `max_minutes`: stop after the first step that ends this many wall-clock minutes into the run (0: no
    limit), writing a checkpoint there; `--resume` continues it exactly (for time-limited jobs).
    """

    steps: int = 10_000
    batch_size: int = 16
    grad_accum: int = 1
    precision: str = "auto"
    parallel: str = "ddp"
    ema_decay: float = 0.999
    ema_warmup: bool = True
    log_every: int = 10
    sample_every: int = 1000
    checkpoint_every: int = 500
    keep_every: int = 0
    tensorboard: bool = True
    progress: bool = True
    threads: int = 0
    compile: bool = False
    max_minutes: float = 0.0

    def __post_init__(self):
        _positive(
            "loop", steps=self.steps, batch_size=self.batch_size, grad_accum=self.grad_accum,
            log_every=self.log_every, checkpoint_every=self.checkpoint_every,
        )  # fmt: skip
        _check(
            self.precision in PRECISIONS,
            f"loop.precision must be one of {PRECISIONS}, got {self.precision!r}",
        )
        _check(self.parallel in PARALLEL, f"loop.parallel must be one of {PARALLEL}, got {self.parallel!r}")
        _check(0.0 <= self.ema_decay < 1.0, f"loop.ema_decay must be in [0, 1), got {self.ema_decay}")
        _check(
            min(self.sample_every, self.keep_every, self.threads) >= 0,
            "loop.sample_every, keep_every and threads must be >= 0",
        )
        _check(self.max_minutes >= 0, f"loop.max_minutes must be >= 0 (0: no limit), got {self.max_minutes}")


@dataclass(frozen=True)
class SampleSpec:
    """Preview videos every `loop.sample_every` steps, from the EMA weights with the stage's own sampler,
    guidance and (SR stages) fixed augmentation level of a real downsampled clip. `steps`: None = stage.steps;
    `prompts`: base stages only, default the captions of the first `count` training clips."""

    count: int = 4
    steps: int | None = None
    prompts: tuple[str, ...] = ()

    def __post_init__(self):
        _positive("sample", count=self.count)


@dataclass(frozen=True)
class TrainConfig:
    """One training run of one stage: `imagen-video train CONFIG.yaml`.

    `init_from`: start from trained weights instead of a random U-Net (fine-tuning): a cascade folder (its
    `<stage name>.safetensors`), a stage weights file, or a run's checkpoint (.pt, its EMA weights); see
    train.stage.initial_weights.
    `t_range`: [t_min, t_max], the diffusion times t ~ U[t_min, t_max] the loss is drawn at (default [0, 1],
    SPEC §5); a narrower range (e.g. [0.85, 0.99], log_snr -2.9 .. -8.3) fine-tunes one band of noise levels.
    `trainable`: parameter-name prefixes to train (e.g. [prior_mean.] to fit only a layer added for
    fine-tuning); every other U-Net weight is frozen. Empty (default): every weight is trained.
    """

    stage: dict
    seed: int = 0
    out_dir: str = "runs/train"
    init_from: str | None = None
    condition: ConditionSpec = field(default_factory=ConditionSpec)
    data: DataSpec = field(default_factory=DataSpec)
    text: TextSpec = field(default_factory=TextSpec)
    loss_weighting: str = "v"
    t_range: tuple[float, float] = (0.0, 1.0)
    trainable: tuple[str, ...] = ()
    optim: OptimSpec = field(default_factory=OptimSpec)
    loop: LoopSpec = field(default_factory=LoopSpec)
    sample: SampleSpec = field(default_factory=SampleSpec)

    def __post_init__(self):
        _check(isinstance(self.stage, dict), "stage must be a mapping (a cascade stage entry)")
        _check(
            self.loss_weighting in ("v", "eps", "snr_trunc"),
            f"loss_weighting must be v, eps or snr_trunc, got {self.loss_weighting!r}",
        )
        t_range = tuple(self.t_range) if isinstance(self.t_range, (list, tuple)) else ()
        numbers = len(t_range) == 2 and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in t_range
        )
        _check(
            numbers and 0.0 <= t_range[0] < t_range[1] <= 1.0,
            f"t_range must be [t_min, t_max] with 0 <= t_min < t_max <= 1, got {self.t_range!r}",
        )
        check_prefix_list(self.trainable, "trainable")


def build_stage(config: TrainConfig, text_dim: int | None = None, where: str = "stage") -> Stage:
    """The cascade Stage the run trains; its U-Net's text_dim is set to the text encoder's width `text_dim`
    (unless the config sets unet.text_dim itself, which must then match)."""
    fields = dict(config.stage)
    _check("unet" in fields, f"{where}: missing key 'unet' (a preset like tiny/base, or U-Net settings)")
    unet = resolve_unet(fields["unet"], f"{where}.unet")
    explicit = isinstance(fields["unet"], dict) and "text_dim" in fields["unet"]
    if text_dim is not None and unet.text_dim != text_dim:
        _check(
            not explicit,
            f"{where}.unet.text_dim={unet.text_dim} but text encoder {config.text.encoder!r} gives "
            f"{text_dim}-wide embeddings; remove unet.text_dim or set it to {text_dim}",
        )
        unet = unet.replace(text_dim=text_dim)
    fields["unet"] = unet
    stage = dataclass_from_dict(Stage, fields, where)
    config.condition.shape(stage)
    return stage


def load_train_config(path: str | Path) -> TrainConfig:
    """YAML file -> TrainConfig; unknown keys, bad values (stage included) are UserErrors naming the key."""
    config = dataclass_from_dict(TrainConfig, read_yaml(path), str(path))
    build_stage(config, where=f"{path}: stage")
    return config
