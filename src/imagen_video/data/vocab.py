"""ShapesDataset vocabularies (colours, backgrounds, shapes, motions) and the held-out combination rule."""

from __future__ import annotations

import itertools
import math

# Object colours, pairwise >= 100 apart in RGB (closest pair: yellow-orange) and >= 130 from every background.
COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (30, 190, 40),
    "blue": (40, 80, 240),
    "yellow": (240, 220, 30),
    "cyan": (30, 210, 220),
    "magenta": (220, 40, 210),
    "orange": (250, 125, 0),
    "white": (240, 240, 240),
}

# Backgrounds are dark greys only, so they are never confusable with an object colour.
BACKGROUNDS: dict[str, tuple[int, int, int]] = {
    "black": (0, 0, 0),
    "charcoal": (35, 35, 35),
    "dark grey": (70, 70, 70),
}

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star")

# Unit direction (dx, dy) in frame fractions, image convention: +x right, +y down.
_D = 1 / math.sqrt(2)
DIRECTIONS: dict[str, tuple[float, float]] = {
    "left": (-1.0, 0.0),
    "right": (1.0, 0.0),
    "up": (0.0, -1.0),
    "down": (0.0, 1.0),
    "up_left": (-_D, -_D),
    "up_right": (_D, -_D),
    "down_left": (-_D, _D),
    "down_right": (_D, _D),
}
MOTIONS: tuple[str, ...] = (*DIRECTIONS, "growing", "shrinking", "still")

# Attribute value meaning "not present": motion of a still-image sample, second object of a one-object scene.
NONE = "none"

SPLITS = ("train", "heldout", "all")


def is_heldout(color: str, shape: str, motion: str) -> bool:
    """Held-out rule: (colour index + 3 * shape index + 5 * motion index) % 8 == 0.

    44 of the 8 * 4 * 11 = 352 (colour, shape, motion) triples (12.5%) are held out. Every colour, shape and
    motion, and every (colour, shape) pair, still occurs in training with other partners, so the held-out
    split measures compositional generalisation. Motion "none" (still images) is never held out.
    """
    if motion == NONE:
        return False
    return (list(COLORS).index(color) + 3 * SHAPES.index(shape) + 5 * MOTIONS.index(motion)) % 8 == 0


ALL_TRIPLES: tuple[tuple[str, str, str], ...] = tuple(itertools.product(COLORS, SHAPES, MOTIONS))
HELDOUT_TRIPLES: frozenset[tuple[str, str, str]] = frozenset(t for t in ALL_TRIPLES if is_heldout(*t))
