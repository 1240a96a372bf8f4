"""Training examples of one stage, keyed by (step, position j in the global batch) (SPEC §3-§6).

Everything random about an example (which clip, t, eps, text dropout, the augmentation level t' and its
noise) is drawn from a generator seeded by (seed, step, j), so a run is the same on any number of processes
and resumes exactly from a step number. Tar shards are a stream: each process reads its own part, and resume
replays it up to the step (exact, at the cost of decoding the skipped samples again).
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import count

import torch
from torch.utils.data import DataLoader, Dataset, Sampler, default_collate

from imagen_video.cascade import Stage, augment, condition_to_shape
from imagen_video.data import ShapesDataset, TarVideoStream, VideoTextFolder, stage_condition
from imagen_video.errors import UserError
from imagen_video.train.config import TrainConfig
from imagen_video.train.distributed import Dist
from imagen_video.train.order import DataOrder, is_image_position, micro_positions, sample_seed
from imagen_video.train.text import TextConditioner


def build_source(config: TrainConfig, stage: Stage, ctx: Dist, images: bool = False):
    """Clips dict(video [C, T, H, W], caption) at the stage's shape and fps: a Dataset, or a TarVideoStream.
    `images`: the still-image samples of ShapesDataset (T independent images, for image mode)."""
    data, shape = (
        config.data,
        dict(frames=stage.frames, height=stage.height, width=stage.width, fps=stage.fps),
    )
    if data.source == "shapes":
        images = 1.0 if images else 0.0
        return ShapesDataset(
            **shape, split=data.split, seed=data.seed, length=data.length, image_fraction=images,
            two_object_fraction=data.two_object_fraction, paraphrase=data.paraphrase,
        )  # fmt: skip
    if data.source == "folder":
        return VideoTextFolder(data.path, **shape)
    return TarVideoStream(
        data.path, **shape, shuffle=True, seed=config.seed, rank=ctx.rank, world_size=ctx.world_size
    )


def conditioning(clip: torch.Tensor, stage: Stage, cond_shape: tuple[int, int, int]) -> torch.Tensor:
    """[B, C, T, H, W] stage target -> the previous stage's view of it (data.stage_condition), then frames
    repeated / upsampled back to the stage's shape (cascade.condition_to_shape), as at sampling time."""
    cond_fps = stage.fps * cond_shape[0] / stage.frames
    cond = stage_condition(clip, stage.fps, *stage.shape, stage.fps, *cond_shape, cond_fps)
    return condition_to_shape(cond, *stage.shape, fill=stage.frame_fill)


class ExampleMaker:
    """(clip, step, j) -> one example: x [C, T, H, W], t, eps, caption, drop (text), image, and for SR stages
    lowres (the condition at x's shape, noise-augmented at t' ~ U[0, cond_aug_max]) and cond_aug_level t'.
    With `text`, also the caption's text_emb [L, D] and text_mask [L] (computed where the example is made,
    e.g. in DataLoader workers)."""

    def __init__(self, config: TrainConfig, stage: Stage, text: TextConditioner | None = None):
        self.config, self.stage, self.text = config, stage, text
        self.cond_shape = config.condition.shape(stage)

    def __call__(self, item: dict, step: int, j: int, image: bool) -> dict:
        cfg = self.config
        x = item["video"]
        g = torch.Generator().manual_seed(sample_seed(cfg.seed, step, j))
        t_min, t_max = cfg.t_range
        example = {
            "x": x,
            "t": t_min + (t_max - t_min) * torch.rand((), generator=g),
            "eps": torch.randn(x.shape, generator=g),
            "caption": item["caption"],
            "drop": bool(torch.rand((), generator=g) < cfg.text.dropout),
            "image": image or bool(item.get("image", False)),
        }
        if self.text is not None:
            emb, mask = self.text([item["caption"]])
            example["text_emb"], example["text_mask"] = emb[0], mask[0]
        if self.cond_shape is not None:
            level = torch.rand((), generator=g) * cfg.condition.cond_aug_max
            example["lowres"] = augment(conditioning(x[None], self.stage, self.cond_shape), level, g)[0]
            example["cond_aug_level"] = level
        return example


class IndexedExamples(Dataset):
    """(step, j) -> the example at position j of step's global batch, read from a map-style source."""

    def __init__(self, make: ExampleMaker, videos: Dataset, images: Dataset | None):
        self.make, self.videos, self.images = make, videos, images
        cfg = make.config
        self.image_fraction = cfg.data.image_fraction
        self.order = DataOrder(len(videos), cfg.loop.batch_size, cfg.seed)

    def __len__(self) -> int:
        return len(self.videos)

    def __getitem__(self, key: tuple[int, int]) -> dict:
        step, j = key
        image = is_image_position(j, self.image_fraction)
        source = self.images if image and self.images is not None else self.videos
        return self.make(source[self.order.index(step, j)], step, j, image)


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


def indexed_batches(examples: IndexedExamples, sampler: StepBatches, num_workers: int) -> Iterator[dict]:
    """Micro-batches in step order from a map-style source (DataLoader workers prefetch)."""
    return iter(DataLoader(examples, batch_sampler=sampler, num_workers=num_workers))


def stream_batches(
    stream: TarVideoStream, make: ExampleMaker, sampler: StepBatches, num_workers: int
) -> Iterator[dict]:
    """Micro-batches from this process's part of a tar stream, epoch by epoch; replayed up to start_step."""

    def clips() -> Iterator[dict]:
        for epoch in count():
            stream.set_epoch(epoch)
            empty = True
            for item in DataLoader(stream, batch_size=None, num_workers=num_workers):
                empty = False
                yield item
            if empty:
                raise UserError(
                    f"the tar shards {stream.shards[:3]} gave no readable samples to this process"
                )

    items = clips()
    image_fraction = make.config.data.image_fraction
    replay = StepBatches(0, sampler.grad_accum, sampler.micro_batch, sampler.ctx)
    for keys in replay:
        batch = [(next(items), step, j) for step, j in keys]
        if keys[0][0] >= sampler.start_step:
            yield default_collate(
                [make(item, step, j, is_image_position(j, image_fraction)) for item, step, j in batch]
            )
