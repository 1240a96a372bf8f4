"""ShapesDataset: procedural text-video clips of coloured shapes whose ground truth is known exactly.

A scene is one flat dict of attributes (strings and numbers only, so a DataLoader's default collate works):
  color, shape, motion          the primary object and what it does (motion "none" for still images)
  count, color2, shape2         count 2 adds a second, still object of another colour ("none" when count 1)
  background, background2       dark-grey names; background_layout "plain" | "left_right" | "top_bottom"
  background_cut                where the two-tone split lies (fraction of width or height)
  fps                           the frame rate the trajectory was planned for
  x, y, vx, vy                  primary centroid at t = 0 and its velocity, in frame fractions (per second)
  size, growth                  primary size at t = 0 (fraction of min(height, width)) and d log(size) / dt
  x2, y2, size2                 the second object's centroid and size
Motion is defined per second, so the same seed gives the same trajectory at any fps (sampled at t = k / fps).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from einops import rearrange

from imagen_video.data.captions import caption, parse_caption
from imagen_video.data.geometry import EXTENT, RADIUS, coverage
from imagen_video.data.vocab import (
    ALL_TRIPLES,
    BACKGROUNDS,
    COLORS,
    DIRECTIONS,
    HELDOUT_TRIPLES,
    MOTIONS,
    NONE,
    SHAPES,
    SPLITS,
    is_heldout,
)
from imagen_video.errors import UserError

__all__ = [
    "COLORS",
    "BACKGROUNDS",
    "SHAPES",
    "MOTIONS",
    "NONE",
    "HELDOUT_TRIPLES",
    "ShapesDataset",
    "caption",
    "parse_caption",
    "render",
    "sample_attributes",
    "scene_attributes",
    "shapes_prompts",
    "split_triples",
]

TWO_OBJECT_FRACTION = 0.25  # default share of scenes with a second, still object
SIZE_RANGE = (0.10, 0.16)  # size of moving and still objects, fraction of min(height, width)
GROW_SIZE_RANGE = (0.07, 0.09)  # smallest size of a growing or shrinking object
GROW_RATE_RANGE = (0.25, 0.45)  # d log(size) / dt per second, before clipping to the ratio range below
GROW_RATIO_RANGE = (1.6, 2.2)  # size ratio between first and last frame
SPEED_RANGE = (0.15, 0.30)  # frame fractions per second, before clipping to the travel range below
MIN_TRAVEL = 0.2  # a moving centroid travels at least this far over the clip (if the frame has room)
MARGIN_PX = 1.0  # objects stay this many pixels inside the frame
TWO_TONE_PROBABILITY = 0.4
PLACEMENT_TRIES = 30


def split_triples(split: str) -> tuple[tuple[str, str, str], ...]:
    """The (colour, shape, motion) triples of a split: train excludes HELDOUT_TRIPLES, heldout is them."""
    if split not in SPLITS:
        raise UserError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
    if split == "all":
        return ALL_TRIPLES
    return tuple(t for t in ALL_TRIPLES if (t in HELDOUT_TRIPLES) == (split == "heldout"))


def _bounds(shape: str, size: float, height: int, width: int) -> tuple[float, float, float, float]:
    """Centre range (x_lo, x_hi, y_lo, y_hi) in frame fractions that keeps the shape MARGIN_PX inside."""
    ex, ey = EXTENT[shape]
    bx = (ex * size * min(height, width) + MARGIN_PX) / width
    by = (ey * size * min(height, width) + MARGIN_PX) / height
    return bx, 1 - bx, by, 1 - by


def _uniform(rng: np.random.Generator, low: float, high: float) -> float:
    """Uniform in [low, high]; low when rounding leaves high a hair below low."""
    return low + max(high - low, 0.0) * rng.random()


def _trajectory(
    rng: np.random.Generator, shape: str, motion: str, span: float, height: int, width: int
) -> dict:
    """Start centroid, velocity, size and growth for `motion` over `span` seconds, inside the frame."""
    if motion in ("growing", "shrinking"):
        small = rng.uniform(*GROW_SIZE_RANGE)
        log_ratio = float(np.clip(rng.uniform(*GROW_RATE_RANGE) * span, *np.log(GROW_RATIO_RANGE)))
        x_lo, x_hi, y_lo, y_hi = _bounds(shape, small * math.exp(log_ratio), height, width)
        growth = log_ratio / span if span > 0 else 0.0
        size = small if motion == "growing" else small * math.exp(log_ratio)
        sign = 1.0 if motion == "growing" else -1.0
        return dict(
            x=_uniform(rng, x_lo, x_hi),
            y=_uniform(rng, y_lo, y_hi),
            vx=0.0,
            vy=0.0,
            size=size,
            growth=sign * growth,
        )
    size = rng.uniform(*SIZE_RANGE)
    x_lo, x_hi, y_lo, y_hi = _bounds(shape, size, height, width)
    dx, dy = DIRECTIONS.get(motion, (0.0, 0.0))
    room = min([(hi - lo) / abs(d) for d, lo, hi in ((dx, x_lo, x_hi), (dy, y_lo, y_hi)) if d != 0] or [0.0])
    travel = max(0.0, min(max(rng.uniform(*SPEED_RANGE) * span, MIN_TRAVEL), room))
    x0 = _uniform(rng, x_lo - min(dx * travel, 0.0), x_hi - max(dx * travel, 0.0))
    y0 = _uniform(rng, y_lo - min(dy * travel, 0.0), y_hi - max(dy * travel, 0.0))
    speed = travel / span if span > 0 else 0.0
    return dict(x=x0, y=y0, vx=dx * speed, vy=dy * speed, size=size, growth=0.0)


def _background(rng: np.random.Generator) -> dict:
    """A plain or two-tone dark background."""
    names = list(BACKGROUNDS)
    first = names[rng.integers(len(names))]
    if rng.random() >= TWO_TONE_PROBABILITY:
        return dict(background=first, background2=NONE, background_layout="plain", background_cut=0.5)
    layout = ("left_right", "top_bottom")[rng.integers(2)]
    others = [n for n in names if n != first]
    return dict(
        background=first,
        background2=others[rng.integers(len(others))],
        background_layout=layout,
        background_cut=rng.uniform(0.3, 0.7),
    )


def _second_object(
    rng: np.random.Generator, attributes: dict, shape2: str, span: float, height: int, width: int
) -> dict | None:
    """A still second object clear of the primary's whole path (checked on a fixed time grid), or None."""
    size2 = rng.uniform(*SIZE_RANGE)
    x_lo, x_hi, y_lo, y_hi = _bounds(shape2, size2, height, width)
    side = min(height, width)
    t = np.linspace(0.0, span, 17)
    px = (attributes["x"] + attributes["vx"] * t) * width
    py = (attributes["y"] + attributes["vy"] * t) * height
    r1 = RADIUS[attributes["shape"]] * attributes["size"] * np.exp(attributes["growth"] * t) * side
    r2 = RADIUS[shape2] * size2 * side
    for _ in range(PLACEMENT_TRIES):
        x2, y2 = _uniform(rng, x_lo, x_hi), _uniform(rng, y_lo, y_hi)
        if np.all(np.hypot(px - x2 * width, py - y2 * height) >= r1 + r2 + 2 * MARGIN_PX):
            return dict(x2=x2, y2=y2, size2=size2)
    return None


def scene_attributes(
    rng: np.random.Generator,
    color: str,
    shape: str,
    motion: str,
    frames: int,
    height: int,
    width: int,
    fps: float,
    second: tuple[str, str] | None = None,
) -> dict:
    """All attributes of a scene with this primary object and motion; `second` (colour, shape) optional."""
    span = (frames - 1) / fps
    attributes = dict(
        color=color, shape=shape, motion=motion, count=1, color2=NONE, shape2=NONE, fps=float(fps)
    )
    attributes.update(_background(rng))
    attributes.update({k: float(v) for k, v in _trajectory(rng, shape, motion, span, height, width).items()})
    attributes.update(x2=0.0, y2=0.0, size2=0.0)
    if second is not None:
        placed = _second_object(rng, attributes, second[1], span, height, width)
        if placed is not None:
            attributes.update(
                count=2, color2=second[0], shape2=second[1], **{k: float(v) for k, v in placed.items()}
            )
    return attributes


def sample_attributes(
    rng: np.random.Generator,
    split: str = "train",
    frames: int = 16,
    height: int = 32,
    width: int = 32,
    fps: float = 8.0,
    two_object_fraction: float = 0.0,
) -> dict:
    """A random video scene whose (colour, shape, motion) is uniform over the split's triples.

    A second object (probability two_object_fraction) has another colour; in the train split its
    (colour, shape, "still") triple is not held out either, so no held-out triple is ever seen in training.
    """
    triples = split_triples(split)
    color, shape, motion = triples[rng.integers(len(triples))]
    second = None
    if rng.random() < two_object_fraction:
        pairs = [
            (c, s)
            for c in COLORS
            for s in SHAPES
            if c != color and not (split == "train" and is_heldout(c, s, "still"))
        ]
        second = pairs[rng.integers(len(pairs))]
    return scene_attributes(rng, color, shape, motion, frames, height, width, fps, second)


def _background_image(attributes: dict, height: int, width: int) -> np.ndarray:
    """Background float32 [H, W, 3]: plain, or split at an integer column/row into two tones."""
    image = np.empty((height, width, 3), dtype=np.float32)
    image[:] = BACKGROUNDS[attributes["background"]]
    layout = attributes["background_layout"]
    if layout == "left_right":
        image[:, round(attributes["background_cut"] * width) :] = BACKGROUNDS[attributes["background2"]]
    elif layout == "top_bottom":
        image[round(attributes["background_cut"] * height) :] = BACKGROUNDS[attributes["background2"]]
    return image


def render(
    attributes: dict, frames: int, height: int, width: int, fps: float | None = None, supersample: int = 4
) -> np.ndarray:
    """Render a scene to uint8 [T, H, W, 3]; frame k shows time k / fps (fps defaults to attributes["fps"]).

    Objects are antialiased by supersampling (supersample**2 point tests per pixel); the second object is
    drawn first, under the primary.
    """
    fps = attributes["fps"] if fps is None else fps
    side = min(height, width)
    background = _background_image(attributes, height, width)
    video = np.empty((frames, height, width, 3), dtype=np.float32)
    for k in range(frames):
        t = k / fps
        objects = [
            (attributes["shape"], attributes["color"], attributes["x"] + attributes["vx"] * t,
             attributes["y"] + attributes["vy"] * t, attributes["size"] * math.exp(attributes["growth"] * t)),
        ]  # fmt: skip
        if attributes["count"] == 2:
            objects.insert(
                0,
                (
                    attributes["shape2"],
                    attributes["color2"],
                    attributes["x2"],
                    attributes["y2"],
                    attributes["size2"],
                ),
            )
        image = background.copy()
        for shape, color, x, y, size in objects:
            alpha = coverage(shape, x * width, y * height, size * side, height, width, supersample)[..., None]
            image = image * (1 - alpha) + np.asarray(COLORS[color], dtype=np.float32) * alpha
        video[k] = image
    return np.clip(np.round(video), 0, 255).astype(np.uint8)


class ShapesDataset(torch.utils.data.Dataset):
    """Procedural text-video data: ds[i] -> dict(video [C, T, H, W] in [-1, 1], caption, attributes, image).

    Deterministic per (seed, index) through a local numpy Generator: any worker or rank gets the same sample.
    split: "train" (held-out triples never appear), "heldout" (only held-out triples), "all".
    image_fraction: probability that a sample is a still-image sample for joint image-video training (paper
    §2.5): its T frames are T independent images of the same coloured shape (a packed image batch, to run with
    the U-Net's image_mode), its caption names no motion, attributes["motion"] == "none" and the attributes
    describe frame 0. frames == 1 makes every sample an image. two_object_fraction: probability of a second,
    still object ("a red circle moving left next to a blue square").
    """

    def __init__(
        self,
        frames: int = 16,
        height: int = 32,
        width: int = 32,
        fps: float = 8.0,
        split: str = "train",
        seed: int = 0,
        length: int = 100_000,
        image_fraction: float = 0.0,
        two_object_fraction: float = TWO_OBJECT_FRACTION,
        paraphrase: bool = True,
        supersample: int = 4,
    ):
        split_triples(split)
        if frames < 1 or height < 8 or width < 8 or fps <= 0 or length < 1 or seed < 0:
            raise UserError(
                "ShapesDataset needs frames >= 1, height, width >= 8, fps > 0, length >= 1, seed >= 0; got "
                f"frames={frames}, height={height}, width={width}, fps={fps}, length={length}, seed={seed}"
            )
        for name, value in (("image_fraction", image_fraction), ("two_object_fraction", two_object_fraction)):
            if not 0.0 <= value <= 1.0:
                raise UserError(f"ShapesDataset {name} must be in [0, 1], got {value}")
        self.frames, self.height, self.width, self.fps = frames, height, width, float(fps)
        self.split, self.seed, self.length = split, seed, length
        self.image_fraction, self.two_object_fraction = image_fraction, two_object_fraction
        self.paraphrase, self.supersample = paraphrase, supersample

    def __len__(self) -> int:
        return self.length

    def _image_sample(self, rng: np.random.Generator) -> tuple[dict, np.ndarray]:
        """T independent single-object images of one (colour, shape) pair; attributes of frame 0."""
        color, shape = list(COLORS)[rng.integers(len(COLORS))], SHAPES[rng.integers(len(SHAPES))]
        scenes = [
            scene_attributes(rng, color, shape, NONE, 1, self.height, self.width, self.fps)
            for _ in range(self.frames)
        ]
        video = np.concatenate(
            [render(s, 1, self.height, self.width, supersample=self.supersample) for s in scenes]
        )
        return scenes[0], video

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} out of range for ShapesDataset of length {self.length}")
        rng = np.random.default_rng([self.seed, index])
        image = bool(rng.random() < self.image_fraction) or self.frames == 1
        if image:
            attributes, video = self._image_sample(rng)
        else:
            attributes = sample_attributes(
                rng, self.split, self.frames, self.height, self.width, self.fps, self.two_object_fraction
            )
            video = render(attributes, self.frames, self.height, self.width, supersample=self.supersample)
        video = rearrange(video, "t h w c -> c t h w").astype(np.float32) / np.float32(127.5) - 1
        return {
            "video": torch.from_numpy(video),
            "caption": caption(attributes, rng, paraphrase=self.paraphrase),
            "attributes": attributes,
            "image": image,
        }


def shapes_prompts(split: str = "heldout", n: int = 100, seed: int = 0, paraphrase: bool = True) -> list[str]:
    """n one-object video prompts cycling through the split's triples, shuffled (parse_caption inverts them).

    With n = 44 and split "heldout", every held-out (colour, shape, motion) triple appears exactly once.
    """
    triples = split_triples(split)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(triples))
    prompts = []
    for i in range(n):
        color, shape, motion = triples[order[i % len(triples)]]
        prompts.append(caption(dict(color=color, shape=shape, motion=motion, count=1), rng, paraphrase))
    return prompts
