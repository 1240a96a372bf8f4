"""Data order as a pure function of (seed, step): which sample sits at each position of each global batch.

Position j of the global batch of `step` is global sample p = step * batch_size + j, read from a fresh
permutation of the dataset every epoch (epoch = p // N). Process `rank` of `world` runs, on micro-step `micro`
of `grad_accum`, the positions j = ((micro * world) + rank) * b + k, k < b (b the per-process micro batch):
so W processes with batch B / W see exactly the samples one process with batch B sees (DistributedSampler
style), and resuming at a step needs nothing but the step.
"""

from __future__ import annotations

import math

import numpy as np


def sample_seed(*keys: int) -> int:
    """A 63-bit seed that is a pure, well-mixed function of integer keys (numpy SeedSequence)."""
    words = np.random.SeedSequence([int(k) for k in keys]).generate_state(2, dtype=np.uint32)
    return (int(words[0]) << 31) ^ int(words[1])


def micro_positions(micro: int, rank: int, world: int, micro_batch: int) -> range:
    """Positions j in a step's global batch that process `rank` runs on micro-step `micro`."""
    start = (micro * world + rank) * micro_batch
    return range(start, start + micro_batch)


def is_image_position(j: int, image_fraction: float) -> bool:
    """Joint training at a set ratio: floor(B f) or one more of every B positions are images, evenly."""
    return math.floor((j + 1) * image_fraction) > math.floor(j * image_fraction)


class DataOrder:
    """index(step, j): dataset index at position j of step's global batch; a new permutation every epoch."""

    def __init__(self, length: int, batch_size: int, seed: int):
        self.length, self.batch_size, self.seed = length, batch_size, seed
        self._epoch, self._perm = -1, np.empty(0, dtype=np.int64)

    def permutation(self, epoch: int) -> np.ndarray:
        """The dataset order of one epoch, seeded by (seed, epoch)."""
        if epoch != self._epoch:
            rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([self.seed, epoch])))
            self._epoch, self._perm = epoch, rng.permutation(self.length)
        return self._perm

    def index(self, step: int, j: int) -> int:
        p = step * self.batch_size + j
        return int(self.permutation(p // self.length)[p % self.length])
