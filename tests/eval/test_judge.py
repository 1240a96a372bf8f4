"""Synthetic-data judge: exact on ground-truth ShapesDataset videos, chance on noise, right on hand-made."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from imagen_video.data.shapes import (
    COLORS,
    MOTIONS,
    ShapesDataset,
    parse_caption,
    render,
    scene_attributes,
    shapes_prompts,
)
from imagen_video.errors import UserError
from imagen_video.eval.judge import (
    detect_each,
    detect_objects,
    judge_each,
    judge_r_precision,
    judge_video,
    judge_videos,
)
from imagen_video.eval.prompt_sets import load_prompts

H = W = 32


def to_uint8(video: torch.Tensor) -> np.ndarray:
    """[C, T, H, W] in [-1, 1] -> uint8 [T, H, W, C]."""
    return ((video.permute(1, 2, 3, 0) + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).numpy()


@pytest.fixture(scope="module")
def ground_truth():
    """200 ShapesDataset samples over all triples, a quarter with two objects: (uint8 videos, samples)."""
    dataset = ShapesDataset(
        frames=16, height=H, width=W, fps=8, split="all", seed=11, two_object_fraction=0.25
    )
    samples = [dataset[i] for i in range(200)]
    return [to_uint8(s["video"]) for s in samples], samples


def accuracy(videos, attributes) -> dict:
    """Fraction of videos whose colour, shape, motion the judge gets right."""
    results = [judge_video(v, a) for v, a in zip(videos, attributes, strict=True)]
    return {k: float(np.mean([r[k] for r in results])) for k in ("colour", "shape", "motion")}


def test_ground_truth_videos_are_judged_correctly(ground_truth):
    videos, samples = ground_truth
    scores = accuracy(videos, [s["attributes"] for s in samples])
    assert min(scores.values()) >= 0.98, scores
    assert judge_videos(videos[:50], [s["caption"] for s in samples[:50]]) == accuracy(
        videos[:50], [parse_caption(s["caption"]) for s in samples[:50]]
    )


def test_noise_videos_score_near_chance(ground_truth):
    _, samples = ground_truth
    rng = np.random.default_rng(0)
    noise = [rng.integers(0, 256, (16, H, W, 3), dtype=np.uint8) for _ in range(100)]
    scores = accuracy(noise, [s["attributes"] for s in samples[:100]])
    # chance: colour 1/8, shape 1/4, motion 1/11
    assert scores["colour"] <= 0.3 and scores["shape"] <= 0.45 and scores["motion"] <= 0.3, scores


def test_judge_r_precision_separates_truth_from_noise(ground_truth):
    dataset = ShapesDataset(frames=16, height=H, width=W, split="all", seed=5, two_object_fraction=0.0)
    samples = [dataset[i] for i in range(50)]
    videos, captions = [to_uint8(s["video"]) for s in samples], [s["caption"] for s in samples]
    pool = shapes_prompts("all", 400, seed=2)
    truth = judge_r_precision(videos, captions, 99, torch.Generator().manual_seed(0), distractor_pool=pool)
    objects = detect_each(videos, captions)  # detections computed once give the same verdicts and ranking
    assert judge_each(videos, captions, objects) == judge_each(videos, captions)
    generator = torch.Generator().manual_seed(0)
    assert judge_r_precision(videos, captions, 99, generator, distractor_pool=pool, objects=objects) == truth
    rng = np.random.default_rng(1)
    noise = [rng.integers(0, 256, (16, H, W, 3), dtype=np.uint8) for _ in range(50)]
    chance = judge_r_precision(noise, captions, 99, torch.Generator().manual_seed(0), distractor_pool=pool)
    assert truth >= 95 and chance <= 10, (truth, chance)


def test_paraphrases_are_judged_by_their_annotated_attributes():
    """builtin:paraphrases rendered as ShapesDataset scenes: right for the annotations, wrong for another
    colour; their prompt strings alone are not readable (parse_caption does not know their words)."""
    prompts, truth = load_prompts("builtin:paraphrases", None, 0)
    rng = np.random.default_rng(3)
    videos = [
        render(scene_attributes(rng, a["color"], a["shape"], a["motion"], 16, H, W, 8.0), 16, H, W)
        for a in truth
    ]
    assert judge_videos(videos, truth) == {"colour": 1.0, "shape": 1.0, "motion": 1.0}
    assert judge_r_precision(videos, truth, 99, torch.Generator().manual_seed(0)) == 100.0
    names = list(COLORS)
    swapped = [{**a, "color": names[(names.index(a["color"]) + 1) % len(names)]} for a in truth]
    assert judge_videos(videos, swapped)["colour"] == 0.0
    assert judge_r_precision(videos, swapped, 99, torch.Generator().manual_seed(0)) < 50.0
    bare = [{k: a[k] for k in ("color", "shape")} for a in truth]  # no motion: not judged
    assert judge_videos(videos, bare)["motion"] != judge_videos(videos, bare)["motion"]  # NaN
    with pytest.raises(UserError, match="colour and a shape"):
        judge_videos(videos, prompts)


# ---- hand-made videos, drawn with numpy (no antialiasing, independent of the dataset's renderer) ----


def blank(frames: int = 8, background=(0, 0, 0), two_tone=None) -> np.ndarray:
    """uint8 [T, H, W, 3] background; two_tone=(column, colour) paints columns >= column another grey."""
    video = np.zeros((frames, H, W, 3), dtype=np.uint8)
    video[:] = background
    if two_tone is not None:
        video[:, :, two_tone[0] :] = two_tone[1]
    return video


def pixel_centres():
    """Pixel-centre coordinates (x, y), each [H, W]."""
    y, x = np.mgrid[0:H, 0:W] + 0.5
    return x, y


def convex(vertices) -> np.ndarray:
    """Mask [H, W] of a convex polygon (vertices in order), by half-plane tests."""
    x, y = pixel_centres()
    v = np.asarray(vertices, dtype=float)
    cross = [
        (b[0] - a[0]) * (y - a[1]) - (b[1] - a[1]) * (x - a[0])
        for a, b in zip(v, np.roll(v, -1, 0), strict=True)
    ]
    return np.all(np.stack(cross) >= 0, axis=0) | np.all(np.stack(cross) <= 0, axis=0)


def shape_mask(shape: str, cx: float, cy: float, r: float) -> np.ndarray:
    """A hand-drawn mask: disc, axis-aligned square, tall isosceles triangle, five-pointed star."""
    x, y = pixel_centres()
    if shape == "circle":
        return (x - cx) ** 2 + (y - cy) ** 2 <= r * r
    if shape == "square":
        return (abs(x - cx) <= r * 0.9) & (abs(y - cy) <= r * 0.9)
    if shape == "triangle":
        return convex([(cx, cy - 1.2 * r), (cx + r, cy + 0.75 * r), (cx - r, cy + 0.75 * r)])
    outer = [
        (cx + 1.3 * r * math.cos(a), cy + 1.3 * r * math.sin(a)) for a in np.radians(-90 + 72 * np.arange(5))
    ]
    inner = [
        (cx + 0.5 * r * math.cos(a), cy + 0.5 * r * math.sin(a)) for a in np.radians(-54 + 72 * np.arange(5))
    ]
    mask = convex(inner)  # the pentagon, plus one triangle per point
    for k in range(5):
        mask |= convex([outer[k], inner[k], inner[k - 1]])
    return mask


def attributes(color="red", shape="circle", motion="still") -> dict:
    return dict(color=color, shape=shape, motion=motion, count=1)


@pytest.mark.parametrize("color", list(COLORS))
def test_colour_of_a_hand_made_disc(color):
    video = blank(background=(35, 35, 35))
    video[:, shape_mask("circle", 14, 17, 6)] = COLORS[color]
    assert judge_video(video, attributes(color=color)) == {"colour": True, "shape": True, "motion": True}


@pytest.mark.parametrize("shape", ["circle", "square", "triangle", "star"])
@pytest.mark.parametrize("two_tone", [None, (15, (70, 70, 70))])
def test_shape_of_a_hand_made_object(shape, two_tone):
    video = blank(two_tone=two_tone)
    video[:, shape_mask(shape, 16.3, 15.6, 7)] = COLORS["yellow"]
    assert detect_objects(video)[0].shape == shape


@pytest.mark.parametrize("motion", MOTIONS)
def test_motion_of_a_hand_made_square(motion):
    video = blank(frames=8, background=(70, 70, 70))
    dx, dy = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}.get(
        motion.split("_")[-1], (0, 0)
    )
    if "_" in motion:
        dy = -1 if motion.startswith("up") else 1
    for k in range(8):
        half = {"growing": 2 + k, "shrinking": 9 - k}.get(motion, 4)
        cx, cy = 16 + 1.5 * dx * (k - 3.5), 16 + 1.5 * dy * (k - 3.5)
        x, y = pixel_centres()
        video[k, (abs(x - cx) <= half) & (abs(y - cy) <= half)] = COLORS["cyan"]
    assert detect_objects(video)[0].motion == motion


def test_two_objects_judge_the_prompted_one():
    video = blank(frames=8)
    for k in range(8):
        video[k, shape_mask("circle", 7 + 2 * k, 9, 4)] = COLORS["red"]
    video[:, shape_mask("square", 16, 24, 5)] = COLORS["blue"]
    pair = parse_caption("a red circle moving to the right next to a blue square")
    assert judge_video(video, pair) == {"colour": True, "shape": True, "motion": True}
    wrong = parse_caption("a blue square moving to the right next to a red circle")
    assert judge_video(video, wrong) == {"colour": True, "shape": True, "motion": False}


def test_r_precision_counts_ties_fractionally():
    video = blank(frames=8)
    for k in range(8):
        video[k, shape_mask("circle", 8 + 2 * k, 16, 5)] = COLORS["red"]
    generator = torch.Generator().manual_seed(0)
    right = "a red circle moving to the right"
    pool = ["a red circle moving to the left", "a red square slides rightwards", "a blue star growing", right]
    assert (
        judge_r_precision([video], [right], 99, generator, distractor_pool=pool) == 100.0
    )  # 3 beats 2, 2, 0
    tied = ["a red triangle moving to the right", "a red star moving to the right", "a blue star growing"]
    square = "a red square moving to the right"  # scores 2, tied with two distractors
    assert judge_r_precision([video], [square], 99, generator, distractor_pool=tied) == pytest.approx(100 / 3)
    assert judge_r_precision([video], [square], 99, generator, distractor_pool=[right]) == 0.0


def test_bad_inputs_are_user_errors():
    with pytest.raises(UserError, match="uint8"):
        judge_video(np.zeros((4, 8, 8, 3), dtype=np.float32), attributes())
    with pytest.raises(UserError, match="colour and a shape"):
        judge_videos([blank()], ["a dog on a beach"])
    assert judge_video(blank(), attributes()) == {"colour": False, "shape": False, "motion": False}


def test_judge_tolerates_noise_and_blur(ground_truth):
    """Generated videos are noisy and soft: Gaussian noise (sigma 10 grey levels) after a 3x3 box blur."""
    videos, samples = ground_truth
    rng = np.random.default_rng(2)
    degraded = []
    for video in videos[:60]:
        padded = np.pad(video.astype(np.float64), ((0, 0), (1, 1), (1, 1), (0, 0)), mode="edge")
        blurred = sum(padded[:, i : i + H, j : j + W] for i in range(3) for j in range(3)) / 9
        noisy = blurred + rng.normal(0, 10, blurred.shape)
        degraded.append(np.clip(np.round(noisy), 0, 255).astype(np.uint8))
    scores = accuracy(degraded, [s["attributes"] for s in samples[:60]])
    assert scores["colour"] >= 0.98 and scores["shape"] >= 0.85 and scores["motion"] >= 0.95, scores
