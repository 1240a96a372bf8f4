"""--prompts sources (issue 8): annotated JSON Lines, text files, builtin:paraphrases and its coverage."""

from __future__ import annotations

import itertools
import json
from collections import Counter

import pytest

from imagen_video.data.captions import (
    COLOR_WORDS,
    MOTION_PHRASES,
    SHAPE_WORDS,
    VIDEO_TEMPLATES,
    parse_caption,
)
from imagen_video.data.vocab import COLORS, MOTIONS, NONE, SHAPES
from imagen_video.errors import UserError
from imagen_video.eval.prompt_sets import builtin_names, load_prompts, parse_annotation

GOOD = [
    {"prompt": "a scarlet disc drifting to the left", "color": "red", "shape": "circle", "motion": "left"},
    {"prompt": "a navy block", "color": "blue", "shape": "square"},
    {"prompt": "a jade pyramid, no motion judged", "color": "green", "shape": "triangle", "motion": "none"},
    {
        "prompt": "a ruby ball beside a pearl cube",
        "color": "red",
        "shape": "circle",
        "color2": "white",
        "shape2": "square",
    },
]


def write_jsonl(path, lines) -> str:
    """Lines (dicts become JSON, strings are written as they are) -> path as a str."""
    path.write_text("\n".join(json.dumps(x) if isinstance(x, dict) else x for x in lines) + "\n")
    return str(path)


def test_annotated_file_gives_prompts_and_attributes(tmp_path):
    source = write_jsonl(tmp_path / "p.jsonl", [GOOD[0], "", *GOOD[1:]])
    prompts, attributes = load_prompts(source, None, 0)
    assert prompts == [g["prompt"] for g in GOOD]
    assert attributes[0] == dict(
        color="red", shape="circle", motion="left", count=1, color2=NONE, shape2=NONE
    )
    assert attributes[1]["motion"] == NONE and attributes[2]["motion"] == NONE
    assert attributes[3] == dict(
        color="red", shape="circle", motion=NONE, count=2, color2="white", shape2="square"
    )
    assert load_prompts(source, 2, 0) == (prompts[:2], attributes[:2])
    one = parse_annotation(json.dumps({**GOOD[1], "color2": "none", "shape2": "none"}), "here")
    assert one == (GOOD[1]["prompt"], attributes[1])


def test_text_files_keep_parse_caption_attributes(tmp_path):
    path = tmp_path / "p.txt"
    path.write_text("a red circle moving left\nan astronaut riding a horse\n")
    prompts, attributes = load_prompts(str(path), None, 0)
    assert prompts == ["a red circle moving left", "an astronaut riding a horse"]
    assert attributes == [parse_caption(prompts[0]), None]
    prompts, attributes = load_prompts("shapes:heldout", 4, 0)
    assert attributes == [parse_caption(p) for p in prompts] and None not in attributes


@pytest.mark.parametrize(
    "line, message",
    [
        ('{"prompt": "a red circle", "color": "red"', "not valid JSON"),
        ('["a red circle", "red", "circle"]', "expected a JSON object"),
        ({**GOOD[0], "colour": "red"}, "unknown key 'colour'"),
        ({"prompt": "a red circle", "shape": "circle"}, "missing key 'color'"),
        ({**GOOD[0], "prompt": "  "}, "'prompt' must be a non-empty string"),
        ({**GOOD[0], "prompt": 3}, "'prompt' must be a non-empty string"),
        ({**GOOD[0], "color": "ruby"}, "unknown color 'ruby'"),
        ({**GOOD[0], "shape": "ball"}, "unknown shape 'ball'"),
        ({**GOOD[0], "motion": "sideways"}, "unknown motion 'sideways'"),
        ({**GOOD[0], "color2": "blue"}, "both 'color2' and 'shape2'"),
        ({**GOOD[0], "shape2": "star", "color2": "purple"}, "unknown color2 'purple'"),
        ({**GOOD[0], "color2": "red", "shape2": "star"}, "'color2' must differ"),
    ],
)
def test_bad_annotated_lines_name_file_and_line(tmp_path, line, message):
    source = write_jsonl(tmp_path / "bad.jsonl", [GOOD[0], "", line, GOOD[1]])
    with pytest.raises(UserError, match=f"bad.jsonl, line 3: .*{message}"):
        load_prompts(source, None, 0)


def test_bad_sources(tmp_path):
    (tmp_path / "empty.jsonl").write_text("\n \n")
    for source, message in [
        ("builtin:nope", "use one of builtin:paraphrases"),
        (str(tmp_path / "missing.jsonl"), "no such file"),
        (str(tmp_path / "empty.jsonl"), "has no prompts"),
    ]:
        with pytest.raises(UserError, match=message):
            load_prompts(source, None, 0)


# ---- builtin:paraphrases: hand-written prompts the caption templates never produce ----


@pytest.fixture(scope="module")
def paraphrases():
    return load_prompts("builtin:paraphrases", None, 0)


def template_captions(a: dict) -> set[str]:
    """Every one-object caption the ShapesDataset templates can write for these attributes."""
    out = set()
    for c, s, (ing, verb), template in itertools.product(
        COLOR_WORDS[a["color"]], SHAPE_WORDS[a["shape"]], MOTION_PHRASES[a["motion"]], VIDEO_TEMPLATES
    ):
        obj = f"{'an' if c[0] in 'aeiou' else 'a'} {c} {s}"
        out.add(template.format(obj=obj, ing=ing, verb=verb))
    return out


def test_paraphrases_are_50_valid_one_object_prompts(paraphrases):
    prompts, attributes = paraphrases
    assert "paraphrases" in builtin_names()
    assert len(prompts) == len(set(prompts)) == 50
    assert all(a["count"] == 1 and a["motion"] != NONE for a in attributes)


def test_paraphrases_really_are_paraphrases(paraphrases):
    """No template writes any of them, and parse_caption misreads (or cannot read) at least 40."""
    prompts, attributes = paraphrases
    assert not any(p in template_captions(a) for p, a in zip(prompts, attributes, strict=True))

    def key(a):
        return a and (a["color"], a["shape"], a["motion"])

    misread = [p for p, a in zip(prompts, attributes, strict=True) if key(parse_caption(p)) != key(a)]
    assert len(misread) >= 40, len(misread)


def test_paraphrases_cover_the_vocabulary_evenly(paraphrases):
    _, attributes = paraphrases
    for key, values, least in [("color", COLORS, 6), ("shape", SHAPES, 12), ("motion", MOTIONS, 4)]:
        counts = Counter(a[key] for a in attributes)
        assert set(counts) == set(values) and min(counts.values()) >= least, (key, counts)
