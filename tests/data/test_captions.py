"""Captions: templates, paraphrases and synonyms; parse_caption inverts every caption the dataset writes."""

from __future__ import annotations

import numpy as np
import pytest

from imagen_video.data.captions import COLOR_WORDS, MOTION_PHRASES, SHAPE_WORDS
from imagen_video.data.shapes import COLORS, MOTIONS, NONE, SHAPES, caption, parse_caption, sample_attributes

KEYS = ("color", "shape", "motion", "count", "color2", "shape2")


def test_every_vocabulary_entry_has_words():
    assert set(COLOR_WORDS) == set(COLORS) and set(SHAPE_WORDS) == set(SHAPES)
    assert set(MOTION_PHRASES) == set(MOTIONS)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("a red circle moving to the left", ("red", "circle", "left")),
        ("a crimson ball slides leftwards", ("red", "circle", "left")),
        ("an amber star drifting towards the top right", ("orange", "star", "up_right")),
        ("a video of a cobalt box sliding diagonally down and left", ("blue", "square", "down_left")),
        ("a lemon wedge does not move", ("yellow", "triangle", "still")),
        ("a fuchsia five-pointed star gets smaller", ("magenta", "star", "shrinking")),
        ("an ivory dot expanding on a dark background", ("white", "circle", "growing")),
        ("A Turquoise Disc Rising.", ("cyan", "circle", "up")),
        ("a photo of a lime block", ("green", "square", NONE)),
    ],
)
def test_parse_caption_reads_paraphrases(text, expected):
    attributes = parse_caption(text)
    assert (attributes["color"], attributes["shape"], attributes["motion"]) == expected
    assert attributes["count"] == 1 and attributes["color2"] == NONE


def test_two_object_captions_name_the_moving_object_first():
    attributes = parse_caption("a scarlet triangle falls beside a sapphire square")
    assert [attributes[k] for k in KEYS] == ["red", "triangle", "down", 2, "blue", "square"]


def test_non_shapes_text_parses_to_none():
    assert parse_caption("a dog running on the beach") is None
    assert parse_caption("something red") is None


def test_every_dataset_caption_round_trips():
    rng = np.random.default_rng(0)
    for i in range(1500):
        attributes = sample_attributes(rng, "all", two_object_fraction=0.3)
        if i % 5 == 0:
            attributes["motion"] = NONE  # still-image captions name no motion
            attributes["count"] = 1
            attributes["color2"] = attributes["shape2"] = NONE
        text = caption(attributes, rng, paraphrase=bool(i % 2))
        assert {k: parse_caption(text)[k] for k in KEYS} == {k: attributes[k] for k in KEYS}, text


def test_canonical_captions():
    attributes = dict(color="red", shape="circle", motion="left", count=1)
    assert caption(attributes, paraphrase=False) == "a red circle moving to the left"
    attributes.update(color="orange", motion="up_right")
    assert caption(attributes, paraphrase=False) == "an orange circle moving up and to the right"
