"""ShapesDataset: vocabularies, geometry, determinism, held-out split, rendering invariants, image samples."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from imagen_video.data.geometry import AREA, coverage
from imagen_video.data.shapes import (
    BACKGROUNDS,
    COLORS,
    HELDOUT_TRIPLES,
    MOTIONS,
    NONE,
    SHAPES,
    ShapesDataset,
    render,
    sample_attributes,
    scene_attributes,
    shapes_prompts,
    split_triples,
)
from imagen_video.data.vocab import is_heldout
from imagen_video.errors import UserError


def test_vocabularies_are_well_separated():
    assert len(COLORS) >= 8 and {"circle", "square", "triangle", "star"} <= set(SHAPES)
    assert len(MOTIONS) == 11
    colour_gap = min(math.dist(a, b) for a, b in itertools.combinations(COLORS.values(), 2))
    background_gap = min(math.dist(c, b) for c in COLORS.values() for b in BACKGROUNDS.values())
    assert colour_gap >= 100 and background_gap >= 130


def test_heldout_rule_is_an_eighth_and_keeps_every_pair_in_training():
    assert len(HELDOUT_TRIPLES) == 44 and len(split_triples("train")) == 352 - 44
    assert HELDOUT_TRIPLES == {t for t in split_triples("all") if is_heldout(*t)}
    train = split_triples("train")
    assert {(c, s) for c, s, _ in train} == set(itertools.product(COLORS, SHAPES))
    assert {m for *_, m in train} == set(MOTIONS) == {m for *_, m in HELDOUT_TRIPLES}


def test_shape_areas_match_analytic_values_and_coverage():
    assert AREA["triangle"] == pytest.approx(3 * math.sqrt(3) / 4 * 1.3**2)
    assert AREA["star"] == pytest.approx(5 * 1.35 * (0.45 * 1.35) * math.sin(math.radians(36)))
    assert AREA["square"] == pytest.approx(1.8**2)
    for shape in SHAPES:  # coverage integrates to the area (size 30 px, off-grid centre)
        total = coverage(shape, 50.3, 49.7, 30.0, 100, 100).sum()
        assert total == pytest.approx(AREA[shape] * 30.0**2, rel=3e-3)


def test_dataset_is_deterministic_per_seed_and_index():
    a, b = ShapesDataset(seed=3, image_fraction=0.3), ShapesDataset(seed=3, image_fraction=0.3)
    for i in (5, 0, 17, 5):  # any access order
        x, y = a[i], b[i]
        assert torch.equal(x["video"], y["video"]) and x["caption"] == y["caption"]
        assert x["attributes"] == y["attributes"]
    assert not torch.equal(a[0]["video"], ShapesDataset(seed=4)[0]["video"])


def test_trajectories_are_per_second_so_any_fps_shows_the_same_motion():
    slow = ShapesDataset(frames=16, fps=8, two_object_fraction=0.5)
    fast = ShapesDataset(frames=31, fps=16, two_object_fraction=0.5)  # same 1.875 s span
    for i in range(6):
        assert torch.equal(slow[i]["video"], fast[i]["video"][:, ::2])


def test_object_moves_at_its_per_second_velocity():
    rng = np.random.default_rng(0)
    scene = scene_attributes(rng, "white", "square", "right", 16, 32, 48, 8.0)
    scene.update(background="black", background_layout="plain")
    video = render(scene, 16, 32, 48).astype(np.float64)[..., 0] / 240.0  # coverage of the white square
    cx = (video * np.arange(48)).sum((1, 2)) / video.sum((1, 2)) + 0.5
    expected = (scene["x"] + scene["vx"] * np.arange(16) / 8.0) * 48
    assert np.abs(cx - expected).max() < 0.15  # supersampling 4x4 puts edges on a 1/4-pixel grid
    assert np.polyfit(np.arange(16), cx, 1)[0] == pytest.approx(scene["vx"] * 48 / 8.0, rel=0.01)
    assert scene["vx"] * 15 / 8.0 >= 0.2 - 1e-9  # travels at least MIN_TRAVEL over the clip


def test_heldout_triples_never_appear_in_train():
    rng = np.random.default_rng(0)
    for _ in range(3000):
        a = sample_attributes(rng, "train", two_object_fraction=0.5)
        assert (a["color"], a["shape"], a["motion"]) not in HELDOUT_TRIPLES
        if a["count"] == 2:
            assert (a["color2"], a["shape2"], "still") not in HELDOUT_TRIPLES
    dataset = ShapesDataset(split="train", two_object_fraction=0.5)
    for i in range(200):
        a = dataset[i]["attributes"]
        assert (a["color"], a["shape"], a["motion"]) not in HELDOUT_TRIPLES
    seen = set()
    for _ in range(1500):
        a = sample_attributes(rng, "heldout")
        seen.add((a["color"], a["shape"], a["motion"]))
    assert seen == HELDOUT_TRIPLES


def test_rendered_objects_stay_inside_and_keep_their_colour():
    dataset = ShapesDataset(split="all", two_object_fraction=0.5)
    for i in range(60):
        sample = dataset[i]
        a, video = sample["attributes"], sample["video"]
        assert video.shape == (3, 16, 32, 32) and video.min() >= -1 and video.max() <= 1
        frames = render(a, 16, 32, 32)
        assert np.array_equal(np.round((video.permute(1, 2, 3, 0).numpy() + 1) * 127.5), frames)
        border = np.concatenate([frames[:, 0], frames[:, -1], frames[:, :, 0], frames[:, :, -1]], axis=1)
        palette = np.array(list(BACKGROUNDS.values()))
        assert (np.abs(border[..., None, :] - palette).sum(-1).min(-1) == 0).all()
        # the pixel under the primary's centroid at t = 0 is exactly its colour (all shapes cover it)
        px, py = int(a["x"] * 32), int(a["y"] * 32)
        if a["size"] * 32 >= 3:
            assert tuple(frames[0, py, px]) == COLORS[a["color"]]


def test_image_samples_are_independent_frames_of_one_object():
    dataset = ShapesDataset(frames=4, image_fraction=1.0)
    sample = dataset[0]
    assert sample["image"] and sample["attributes"]["motion"] == NONE
    frames = sample["video"]
    assert not torch.equal(frames[:, 0], frames[:, 1])
    assert ShapesDataset(frames=1)[3]["video"].shape == (3, 1, 32, 32)
    mixed = [ShapesDataset(image_fraction=0.5)[i]["image"] for i in range(40)]
    assert 8 < sum(mixed) < 32


def test_default_collate_batches_samples():
    dataset = ShapesDataset(frames=4, image_fraction=0.5, two_object_fraction=0.5)
    batch = torch.utils.data.default_collate([dataset[i] for i in range(6)])
    assert batch["video"].shape == (6, 3, 4, 32, 32) and len(batch["caption"]) == 6
    assert batch["image"].dtype == torch.bool


def test_shapes_prompts_cover_heldout_triples_once():
    from imagen_video.data.shapes import parse_caption

    prompts = shapes_prompts("heldout", 44, seed=1)
    triples = [tuple(parse_caption(p)[k] for k in ("color", "shape", "motion")) for p in prompts]
    assert set(triples) == HELDOUT_TRIPLES and len(triples) == 44
    assert shapes_prompts("heldout", 10, seed=1) == prompts[:10]


@pytest.mark.parametrize(
    "kwargs", [dict(split="val"), dict(image_fraction=1.5), dict(frames=0), dict(height=4), dict(seed=-1)]
)
def test_bad_arguments_are_user_errors(kwargs):
    with pytest.raises(UserError):
        ShapesDataset(**kwargs)
