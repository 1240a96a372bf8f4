"""Training one cascade stage (SPEC §3-§6): the U-Net, its examples, the v-loss, preview videos."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import islice
from pathlib import Path

import torch
from einops import rearrange
from safetensors.torch import load_file
from torch import Tensor, nn
from torch.utils.data import IterableDataset

from imagen_video.cascade import StageDenoiser, augment, cond_aug_log_snr, parse_guidance
from imagen_video.cascade.stage import Stage
from imagen_video.cascade.weights import check_tensor_shapes
from imagen_video.diffusion import sample, v_loss
from imagen_video.errors import UserError
from imagen_video.io import to_uint8, write_video
from imagen_video.models import VideoUNet
from imagen_video.train import checkpoint
from imagen_video.train.config import TrainConfig, build_stage
from imagen_video.train.distributed import Dist
from imagen_video.train.examples import (
    ExampleMaker,
    IndexedExamples,
    StepBatches,
    build_source,
    conditioning,
    indexed_batches,
    stream_batches,
)
from imagen_video.train.text import TextConditioner, build_text_encoder, drop_text

PREVIEW_SEED = 0x5EED


def initial_weights(path: Path, stage: Stage) -> dict[str, Tensor]:
    """The `init_from` state dict: a cascade folder's `<stage>.safetensors`, a stage weights file, or the EMA
    weights of a training checkpoint (.pt; its model weights where the EMA lacks them: frozen ones). Every
    stored tensor must exist in the stage's U-Net with the same shape; U-Net tensors the file lacks (layers
    added for fine-tuning) keep their initialisation."""
    if path.is_dir():
        path = path / f"{stage.name}.safetensors"
    if not path.is_file():
        raise UserError(f"init_from: {path} is missing (give a cascade folder, .safetensors or .pt file)")
    if path.suffix == ".pt":
        saved = checkpoint.load(path)
        state = {**saved["model"], **saved["ema"]}
    else:
        state = load_file(path)
    shapes = {k: tuple(v.shape) for k, v in state.items()}
    check_tensor_shapes(shapes, stage.unet, path, stage.name, allow_missing=True)
    return state


def check_prefixes(model: VideoUNet, prefixes: tuple[str, ...], key: str) -> None:
    """UserError (naming the config `key`) for a prefix that starts no parameter name of `model`."""
    names = [n for n, _ in model.named_parameters()]
    for prefix in prefixes:
        if not any(n.startswith(prefix) for n in names):
            roots = sorted({n.split(".")[0] for n in names})
            raise UserError(f"{key}: {prefix!r} names no U-Net parameter (top-level names: {roots})")


def freeze_except(model: VideoUNet, prefixes: tuple[str, ...]) -> VideoUNet:
    """`model` with requires_grad off for every parameter whose name starts with none of `prefixes`
    (no prefixes: all stay trainable); a prefix that names no parameter is a UserError."""
    if not prefixes:
        return model
    check_prefixes(model, prefixes, "trainable")
    for name, param in model.named_parameters():
        param.requires_grad_(name.startswith(tuple(prefixes)))
    return model


class StageTask:
    """The `Task` of one stage: U-Net from the stage config, examples, v-loss, EMA previews."""

    def __init__(self, config: TrainConfig, ctx: Dist, resume: bool = False):
        self.config, self.ctx, self.resume = config, ctx, resume
        self.text = TextConditioner(
            build_text_encoder(config.text.encoder, config.text.max_length, config.text.cache)
        )
        self.stage = build_stage(config, self.text.dim)
        self.model = self.initial_model()
        in_workers = config.text.in_workers and config.data.num_workers > 0
        self.make = ExampleMaker(config, self.stage, self.text if in_workers else None)
        # an all-image micro-batch skips the temporal layers: DDP must expect parameters without gradients
        self.unused_parameters = config.data.image_fraction > 0
        self.videos = build_source(config, self.stage, ctx)
        self.images = None
        if config.data.image_fraction > 0 and config.data.source == "shapes":
            self.images = build_source(config, self.stage, ctx, images=True)
        self._preview_unet: VideoUNet | None = None

    def initial_model(self) -> VideoUNet | None:
        """The U-Net training starts from: the stage's U-Net, randomly initialised under config.seed, then
        given the weights of `init_from` if set (checked against the stage's U-Net config), every weight
        outside `trainable` frozen. A resumed run skips init_from: its checkpoint replaces every weight."""
        torch.manual_seed(self.config.seed)
        model = VideoUNet(self.stage.unet)
        if self.config.init_from is not None and not self.resume:
            model.load_state_dict(initial_weights(Path(self.config.init_from), self.stage), strict=False)
        return freeze_except(model, self.config.trainable)

    def batches(self, start_step: int, micro_batch: int) -> Iterator[dict]:
        """This process's micro-batches in step order, from `start_step` on."""
        sampler = StepBatches(start_step, self.config.loop.grad_accum, micro_batch, self.ctx)
        workers = self.config.data.num_workers
        if isinstance(self.videos, IterableDataset):
            return stream_batches(self.videos, self.make, sampler, workers)
        return indexed_batches(IndexedExamples(self.make, self.videos, self.images), sampler, workers)

    def preview_clips(self, count: int) -> list[dict]:
        """The first `count` clips of the source: the same real clips (and captions) in every preview."""
        if isinstance(self.videos, IterableDataset):
            return list(islice(iter(self.videos), count))
        return [self.videos[i] for i in range(count)]

    def text_condition(self, batch: dict) -> tuple[Tensor, Tensor]:
        """(text_emb [B, L, D], text_mask [B, L]) of a micro-batch on the device, CFG dropout applied."""
        if "text_emb" in batch:  # encoded in the DataLoader workers
            emb, mask = drop_text(batch["text_emb"], batch["text_mask"], batch["drop"])
        else:
            emb, mask = self.text(batch["caption"], batch["drop"])
        return emb.to(self.ctx.device), mask.to(self.ctx.device)

    def loss(self, model: nn.Module, batch: dict) -> Tensor:
        """v-loss (SPEC §5) at the example's t and eps; text dropped where `drop`; images in image mode."""
        device, schedule = self.ctx.device, self.stage.schedule
        x, t, eps = batch["x"].to(device), batch["t"].to(device), batch["eps"].to(device)
        emb, mask = self.text_condition(batch)
        image = batch["image"].to(device)
        image_mode = image if bool(image.any()) else None
        lowres = aug_log_snr = None
        if "lowres" in batch:
            lowres = batch["lowres"].to(device)
            aug_log_snr = cond_aug_log_snr(batch["cond_aug_level"], x.shape[0]).to(device)

        def denoise(z: Tensor, t: Tensor, cond: object) -> Tensor:
            return model(z, schedule.log_snr(t), emb, mask, lowres, aug_log_snr, image_mode=image_mode)

        return v_loss(denoise, x, None, schedule, self.config.loss_weighting, t=t, noise=eps)

    @torch.no_grad()
    def write_samples(self, ema_state: dict[str, Tensor], step: int, folder: Path) -> list[Path]:
        """A gif per preview: rows = EMA samples, (SR) the upsampled condition, the real clip."""
        cfg, stage, device = self.config.sample, self.stage, self.ctx.device
        if self._preview_unet is None:
            self._preview_unet = VideoUNet(stage.unet).to(device).eval().requires_grad_(False)
        unet = self._preview_unet
        unet.load_state_dict(ema_state)
        items = self.preview_clips(cfg.count)
        real = torch.stack([it["video"] for it in items]).to(device)  # [n, C, T, H, W]
        captions = (
            list(cfg.prompts) if cfg.prompts and stage.kind == "base" else [it["caption"] for it in items]
        )
        emb, mask = self.text(captions)
        g = torch.Generator(device).manual_seed(PREVIEW_SEED)
        lowres = aug = None
        rows = []
        cond_shape = self.config.condition.shape(stage)
        if cond_shape is not None:
            cond = conditioning(real, stage, cond_shape)
            lowres = augment(cond, stage.cond_aug_level, g)
            aug = cond_aug_log_snr(stage.cond_aug_level, len(items)).to(device)
            rows.append(cond)
        denoiser = StageDenoiser(unet, emb.to(device), mask.to(device), lowres, aug, stage.schedule)
        video = sample(
            denoiser, (len(captions), stage.unet.out_channels, *stage.shape), schedule=stage.schedule,
            steps=cfg.steps or stage.steps, sampler=stage.sampler, cond=True,
            guidance=parse_guidance(stage.guidance),
            dynamic_threshold=stage.dynamic_threshold, generator=g, device=device,
        ).clamp(-1, 1)  # fmt: skip
        rows = [video, *rows, real] if len(captions) == len(items) else [video]
        grid = rearrange(torch.stack(rows), "r n c t h w -> 1 c t (r h) (n w)")
        folder.mkdir(parents=True, exist_ok=True)
        path = write_video(folder / f"step_{step:08d}.gif", to_uint8(grid)[0], stage.fps)
        path.with_suffix(".txt").write_text("\n".join(captions) + "\n")
        return [path]
