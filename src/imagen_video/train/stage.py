"""Training one cascade stage (SPEC §3-§6): examples with all their random draws, the v-loss, preview videos.

An example is keyed by (step, position j in the global batch). Everything random about it (which clip, t, eps,
text dropout, the augmentation level t' and its noise) is drawn from a generator seeded by (seed, step, j), so
the run is identical on any number of processes and resumes exactly from a step number.
"""

from __future__ import annotations

from itertools import count
from pathlib import Path

import torch
from einops import rearrange
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, Sampler

from imagen_video.cascade import (
    Stage,
    StageDenoiser,
    augment,
    cond_aug_log_snr,
    condition_to_shape,
    parse_guidance,
    upsample_bilinear,
)
from imagen_video.diffusion import sample, v_loss
from imagen_video.io import to_uint8, write_video
from imagen_video.models import VideoUNet
from imagen_video.train.config import DataSpec, TrainConfig, build_stage
from imagen_video.train.distributed import Dist
from imagen_video.train.order import DataOrder, is_image_position, micro_positions, sample_seed
from imagen_video.train.text import TextConditioner, build_text_encoder

PREVIEW_SEED = 0x5EED


def build_source(data: DataSpec, stage: Stage, images: bool = False) -> Dataset:
    """Clips (dict video [C, T, H, W], caption) at the stage's shape and fps; `images`: stills."""
    if data.source == "shapes":
        from imagen_video.data.shapes import ShapesDataset

        return ShapesDataset(
            frames=stage.frames, height=stage.height, width=stage.width, fps=stage.fps, split=data.split,
            seed=data.seed, length=data.length, image_fraction=1.0 if images else 0.0,
        )  # fmt: skip
    from imagen_video.data import stage_source

    return stage_source(data, stage)


def low_resolution(target: Tensor, cond_shape: tuple[int, int, int]) -> Tensor:
    """The previous stage's view of a clip [B, C, T, H, W]: frames skipped (lower fps), resized down."""
    frames, height, width = cond_shape
    return upsample_bilinear(target[:, :, :: target.shape[2] // frames], height, width)


class StageExamples(Dataset):
    """(step, j) -> one training example: x [C, T, H, W], eps, t, caption, drop (text), image, and for SR
    stages lowres (condition upsampled to x's shape, noise-augmented at t' ~ U[0, cond_aug_max]) and t'."""

    def __init__(self, config: TrainConfig, stage: Stage, videos: Dataset, images: Dataset | None):
        self.config, self.stage, self.videos, self.images = config, stage, videos, images
        self.cond_shape = config.condition.shape(stage)
        self.order = DataOrder(len(videos), config.loop.batch_size, config.seed)

    def __len__(self) -> int:
        return len(self.videos)

    def __getitem__(self, key: tuple[int, int]) -> dict:
        step, j = key
        cfg = self.config
        image = is_image_position(j, cfg.data.image_fraction)
        source = self.images if image and self.images is not None else self.videos
        item = source[self.order.index(step, j)]
        x = item["video"]
        g = torch.Generator().manual_seed(sample_seed(cfg.seed, step, j))
        example = {
            "x": x,
            "t": torch.rand((), generator=g),
            "eps": torch.randn(x.shape, generator=g),
            "caption": item["caption"],
            "drop": bool(torch.rand((), generator=g) < cfg.text.dropout),
            "image": image or bool(item.get("image", False)),
        }
        if self.cond_shape is not None:
            level = torch.rand((), generator=g) * cfg.condition.cond_aug_max
            cond = condition_to_shape(
                low_resolution(x[None], self.cond_shape), *self.stage.shape, self.stage.frame_fill
            )
            example["lowres"] = augment(cond, level, g)[0]
            example["cond_aug_level"] = level
        return example


class StepBatches(Sampler):
    """Keys of this process's micro-batches from `start_step` on: grad_accum lists of (step, j) per step."""

    def __init__(self, start_step: int, grad_accum: int, micro_batch: int, ctx: Dist):
        self.start_step, self.grad_accum, self.micro_batch, self.ctx = (
            start_step,
            grad_accum,
            micro_batch,
            ctx,
        )

    def __iter__(self):
        for step in count(self.start_step):
            for micro in range(self.grad_accum):
                positions = micro_positions(micro, self.ctx.rank, self.ctx.world_size, self.micro_batch)
                yield [(step, j) for j in positions]


class StageTask:
    """The `Task` of one stage: U-Net from the stage config, examples, v-loss, EMA previews."""

    def __init__(self, config: TrainConfig, ctx: Dist):
        self.config, self.ctx = config, ctx
        self.text = TextConditioner(
            build_text_encoder(config.text.encoder, config.text.max_length, config.text.cache)
        )
        self.stage = build_stage(config, self.text.dim)
        torch.manual_seed(config.seed)
        self.model = VideoUNet(self.stage.unet)
        videos = build_source(config.data, self.stage)
        images = None
        if config.data.image_fraction > 0 and config.data.source == "shapes":
            images = build_source(config.data, self.stage, images=True)
        self.examples = StageExamples(config, self.stage, videos, images)
        self._preview_unet: VideoUNet | None = None

    def batches(self, start_step: int, micro_batch: int):
        """A DataLoader over this process's micro-batches, in step order (workers prefetch)."""
        sampler = StepBatches(start_step, self.config.loop.grad_accum, micro_batch, self.ctx)
        return iter(
            DataLoader(self.examples, batch_sampler=sampler, num_workers=self.config.data.num_workers)
        )

    def loss(self, model: nn.Module, batch: dict) -> Tensor:
        """v-loss (SPEC §5) at the example's t and eps; text dropped where `drop`; images in image mode."""
        device, schedule = self.ctx.device, self.stage.schedule
        x, t, eps = batch["x"].to(device), batch["t"].to(device), batch["eps"].to(device)
        emb, mask = self.text(batch["caption"], batch["drop"])
        emb, mask = emb.to(device), mask.to(device)
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
        items = [self.examples.videos[i] for i in range(cfg.count)]
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
            cond = condition_to_shape(low_resolution(real, cond_shape), *stage.shape, stage.frame_fill)
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
