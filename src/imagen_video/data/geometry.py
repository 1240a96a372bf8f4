"""Shape outlines in units of the object size s, and their antialiased pixel coverage by supersampling.

Every shape is centred on its area centroid (so growing keeps the centroid fixed), drawn upright, in image
coordinates (+y down). Sizes: circle radius 1; square half-side 0.9; equilateral triangle circumradius 1.3;
five-pointed star outer radius 1.35, inner radius 0.45 * 1.35.
"""

from __future__ import annotations

import math

import numpy as np


def _regular(radii: list[float], count: int) -> np.ndarray:
    """Vertices [count * len(radii), 2] of a star-like polygon, first vertex pointing up."""
    step = 2 * math.pi / (count * len(radii))
    angles = -math.pi / 2 + step * np.arange(count * len(radii))
    r = np.tile(radii, count)
    return np.stack([r * np.cos(angles), r * np.sin(angles)], axis=1)


POLYGONS: dict[str, np.ndarray] = {
    "square": np.array([[-0.9, -0.9], [0.9, -0.9], [0.9, 0.9], [-0.9, 0.9]]),
    "triangle": _regular([1.3], 3),
    "star": _regular([1.35, 0.45 * 1.35], 5),
}


def _polygon_area(v: np.ndarray) -> float:
    """Shoelace formula: |sum(x_i y_{i+1} - x_{i+1} y_i)| / 2."""
    x, y = v[:, 0], v[:, 1]
    return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y)) / 2)


# Area of each shape at size s = 1 (pixel area = AREA[shape] * size_px**2).
AREA: dict[str, float] = {"circle": math.pi, **{k: _polygon_area(v) for k, v in POLYGONS.items()}}
# Half extents (x, y) at size 1 (bounding box of the outline around the centroid, symmetric bound).
EXTENT: dict[str, tuple[float, float]] = {
    "circle": (1.0, 1.0),
    **{k: (float(np.abs(v[:, 0]).max()), float(np.abs(v[:, 1]).max())) for k, v in POLYGONS.items()},
}
# Radius of the smallest centred disc containing the shape at size 1.
RADIUS: dict[str, float] = {
    "circle": 1.0,
    **{k: float(np.sqrt((v**2).sum(axis=1)).max()) for k, v in POLYGONS.items()},
}


def inside(shape: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Boolean mask: is the point (u, v), in units of the size around the centroid, inside `shape`."""
    if shape == "circle":
        return u * u + v * v <= 1.0
    verts = POLYGONS[shape]
    result = np.zeros(u.shape, dtype=bool)
    # Even-odd crossing test over the polygon's edges (the star is not convex).
    for (xi, yi), (xj, yj) in zip(verts, np.roll(verts, 1, axis=0), strict=True):
        if yi == yj:
            continue
        crosses = (yi > v) != (yj > v)
        x_cross = (xj - xi) * (v - yi) / (yj - yi) + xi
        result ^= crosses & (u < x_cross)
    return result


def coverage(
    shape: str, cx: float, cy: float, size: float, height: int, width: int, supersample: int = 4
) -> np.ndarray:
    """Fraction of each pixel [height, width] covered by `shape` at centroid (cx, cy), size in pixels.

    Pixel (i, j) spans [j, j + 1] x [i, i + 1]; coverage is the mean of supersample**2 point tests.
    """
    out = np.zeros((height, width), dtype=np.float32)
    if size <= 0:
        return out
    ex, ey = (e * size for e in EXTENT[shape])
    x0, x1 = max(0, math.floor(cx - ex)), min(width, math.ceil(cx + ex) + 1)
    y0, y1 = max(0, math.floor(cy - ey)), min(height, math.ceil(cy + ey) + 1)
    if x0 >= x1 or y0 >= y1:
        return out
    offsets = (np.arange(supersample) + 0.5) / supersample
    xs = (np.arange(x0, x1)[:, None] + offsets).reshape(-1)
    ys = (np.arange(y0, y1)[:, None] + offsets).reshape(-1)
    u, v = np.meshgrid((xs - cx) / size, (ys - cy) / size)
    hits = inside(shape, u, v).reshape(y1 - y0, supersample, x1 - x0, supersample)
    out[y0:y1, x0:x1] = hits.mean(axis=(1, 3))
    return out
