"""ShapesDataset captions: templates with paraphrases and synonyms, and the parser that inverts them."""

from __future__ import annotations

import re

import numpy as np

from imagen_video.data.vocab import DIRECTIONS, NONE

# The canonical word comes first; paraphrases draw uniformly from the whole list.
COLOR_WORDS: dict[str, tuple[str, ...]] = {
    "red": ("red", "crimson", "scarlet"),
    "green": ("green", "emerald", "lime"),
    "blue": ("blue", "cobalt", "sapphire"),
    "yellow": ("yellow", "golden", "lemon"),
    "cyan": ("cyan", "turquoise", "aqua"),
    "magenta": ("magenta", "fuchsia"),
    "orange": ("orange", "amber", "tangerine"),
    "white": ("white", "ivory", "snowy"),
}
SHAPE_WORDS: dict[str, tuple[str, ...]] = {
    "circle": ("circle", "ball", "disc", "dot"),
    "square": ("square", "box", "block"),
    "triangle": ("triangle", "wedge"),
    "star": ("star", "five-pointed star"),
}


def _directional(where: str, adverb: str, towards: str) -> tuple[tuple[str, str], ...]:
    """(participle, verb) phrase pairs for a direction, e.g. ("moving to the left", "slides leftwards")."""
    return (
        (f"moving {where}", f"moves {where}"),
        (f"sliding {adverb}", f"slides {adverb}"),
        (f"drifting towards the {towards}", f"drifts towards the {towards}"),
        (f"travelling {where}", f"travels {where}"),
    )


# Motion phrases as (participle, third-person verb) pairs; the first pair is canonical.
MOTION_PHRASES: dict[str, tuple[tuple[str, str], ...]] = {
    "left": _directional("to the left", "leftwards", "left"),
    "right": _directional("to the right", "rightwards", "right"),
    "up": (("moving up", "moves up"), ("rising", "rises"), ("floating upwards", "floats upwards")),
    "down": (("moving down", "moves down"), ("falling", "falls"), ("sinking", "sinks")),
    **{
        name: _directional(
            f"{v} and to the {h}", f"diagonally {v} and {h}", f"{'top' if v == 'up' else 'bottom'} {h}"
        )
        for name, (v, h) in ((n, n.split("_")) for n in DIRECTIONS if "_" in n)
    },
    "growing": (("growing", "grows"), ("getting bigger", "gets bigger"), ("expanding", "expands")),
    "shrinking": (
        ("shrinking", "shrinks"),
        ("getting smaller", "gets smaller"),
        ("contracting", "contracts"),
    ),
    "still": (
        ("standing still", "stands still"),
        ("staying put", "stays put"),
        ("not moving", "does not move"),
    ),
}

VIDEO_TEMPLATES = (
    "{obj} {ing}",
    "{obj} {verb}",
    "a video of {obj} {ing}",
    "{obj} {ing} on a dark background",
)
IMAGE_TEMPLATES = ("{obj}", "a picture of {obj}", "a photo of {obj}", "{obj} on a dark background")
PAIR_TEMPLATES = ("{obj} {ing} next to {obj2}", "{obj} {verb} beside {obj2}", "{obj} {ing} near {obj2}")


def _object_phrase(color_word: str, shape_word: str) -> str:
    """'a red circle' / 'an orange star'."""
    article = "an" if color_word[0] in "aeiou" else "a"
    return f"{article} {color_word} {shape_word}"


def caption(attributes: dict, rng: np.random.Generator | None = None, paraphrase: bool = True) -> str:
    """Caption for a scene: canonical ("a red circle moving to the left") or a random paraphrase from rng."""
    if paraphrase and rng is None:
        rng = np.random.default_rng(0)

    def pick(options: tuple) -> object:
        return options[int(rng.integers(len(options)))] if paraphrase else options[0]

    obj = _object_phrase(pick(COLOR_WORDS[attributes["color"]]), pick(SHAPE_WORDS[attributes["shape"]]))
    if attributes["motion"] == NONE:
        return pick(IMAGE_TEMPLATES).format(obj=obj)
    ing, verb = pick(MOTION_PHRASES[attributes["motion"]])
    if attributes.get("count", 1) == 2:
        obj2 = _object_phrase(
            pick(COLOR_WORDS[attributes["color2"]]), pick(SHAPE_WORDS[attributes["shape2"]])
        )
        return pick(PAIR_TEMPLATES).format(obj=obj, ing=ing, verb=verb, obj2=obj2)
    return pick(VIDEO_TEMPLATES).format(obj=obj, ing=ing, verb=verb)


_COLOR_OF = {w: name for name, words in COLOR_WORDS.items() for w in words}
_SHAPE_OF = {w: name for name, words in SHAPE_WORDS.items() for w in words if " " not in w}
_STILL = {"still", "motionless", "stationary", "put"}
_GROW = {"growing", "grows", "grow", "bigger", "larger", "expanding", "expands", "swelling", "swells"}
_SHRINK = {"shrinking", "shrinks", "shrink", "smaller", "contracting", "contracts", "dwindling", "dwindles"}
_UP = {"up", "upward", "upwards", "rising", "rises", "climbing", "climbs", "top"}
_DOWN = {
    "down",
    "downward",
    "downwards",
    "falling",
    "falls",
    "sinking",
    "sinks",
    "dropping",
    "drops",
    "bottom",
}
_LEFT = {"left", "leftward", "leftwards"}
_RIGHT = {"right", "rightward", "rightwards"}


def _parse_motion(words: list[str]) -> str:
    """Motion named by the caption's words, or NONE when it names none."""
    text = set(words)
    if text & _STILL or any(
        a == "not" and b.startswith("mov") for a, b in zip(words[:-1], words[1:], strict=True)
    ):
        return "still"
    if text & _GROW:
        return "growing"
    if text & _SHRINK:
        return "shrinking"
    vertical = "up" if text & _UP else "down" if text & _DOWN else ""
    horizontal = "left" if text & _LEFT else "right" if text & _RIGHT else ""
    return "_".join(p for p in (vertical, horizontal) if p) or NONE


def parse_caption(text: str) -> dict | None:
    """Attributes named by a caption: color, shape, motion (NONE if unnamed), count, color2, shape2.

    The first colour and shape words are the primary (moving) object; a second colour and shape word make a
    two-object caption. None when no colour or no shape is named (not a ShapesDataset caption).
    """
    words = re.findall(r"[a-z]+", text.lower())
    colors = [_COLOR_OF[w] for w in words if w in _COLOR_OF]
    shapes = [_SHAPE_OF[w] for w in words if w in _SHAPE_OF]
    if not colors or not shapes:
        return None
    two = len(colors) >= 2 and len(shapes) >= 2
    return {
        "color": colors[0],
        "shape": shapes[0],
        "motion": _parse_motion(words),
        "count": 2 if two else 1,
        "color2": colors[1] if two else NONE,
        "shape2": shapes[1] if two else NONE,
    }
