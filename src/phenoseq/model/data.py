"""Tensors the model trains and samples on, and the population-level pairing of RNA cells with imaging sets.

An RNA cell is never paired with an imaging cell: it is paired with a random *set* of imaging cells of
its well, drawn afresh every time it is seen.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class Standardiser:
    """Per-column ``(x - mean) / scale``; columns without spread keep scale 1 (so they become 0, not NaN)."""

    mean: np.ndarray
    scale: np.ndarray

    @classmethod
    def fit(cls, x: np.ndarray) -> "Standardiser":
        x = np.asarray(x, dtype=np.float64)
        scale = x.std(axis=0)
        scale[~np.isfinite(scale) | (scale < 1e-8)] = 1.0
        return cls(x.mean(axis=0).astype(np.float32), scale.astype(np.float32))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return ((np.asarray(x, dtype=np.float32) - self.mean) / self.scale).astype(np.float32)

    def inverse(self, z: np.ndarray) -> np.ndarray:
        return (np.asarray(z, dtype=np.float32) * self.scale + self.mean).astype(np.float32)

    def state(self, prefix: str) -> tuple[dict[str, np.ndarray], dict]:
        """(tensors named ``<prefix>.mean`` / ``<prefix>.scale``, JSON metadata) for a checkpoint."""
        return {f"{prefix}.mean": self.mean, f"{prefix}.scale": self.scale}, {}

    @classmethod
    def from_state(cls, tensors: dict[str, np.ndarray], prefix: str, width: int) -> "Standardiser":
        """Inverse of :meth:`state`; ``width`` is the number of columns it must have (a resized tensor is damage)."""
        mean, scale = np.asarray(tensors[f"{prefix}.mean"]), np.asarray(tensors[f"{prefix}.scale"])
        if mean.shape != (width,) or scale.shape != (width,):
            raise ValueError(f"tensors {prefix}.mean / {prefix}.scale have shapes {mean.shape} / {scale.shape}, "
                             f"expected ({width},)")
        return cls(mean, scale)


class WellImaging:
    """Standardised imaging cells grouped by well (``names`` sorted): rows ``starts[w]:starts[w] + counts[w]`` of
    ``features`` are well ``w``'s cells."""

    def __init__(self, features: np.ndarray, samples: np.ndarray) -> None:
        order = np.argsort(samples, kind="stable")
        self.features = torch.from_numpy(np.ascontiguousarray(features[order]))
        self.names, starts, counts = np.unique(samples[order], return_index=True, return_counts=True)
        self.starts, self.counts = starts, counts
        self.code = {name: i for i, name in enumerate(self.names)}

    def pool_size(self, wanted: int) -> int:
        """Pools need not exceed the largest well: a bigger pool would only repeat cells (bulk: one profile)."""
        return int(min(wanted, self.counts.max()))

    def pool(self, well: int, size: int, rng: np.random.Generator) -> torch.Tensor:
        """``(size, F)`` imaging cells of ``well``: a random subset, or all with repeats if the well is smaller."""
        n = self.counts[well]
        idx = rng.choice(n, size, replace=n < size) if n != size else rng.permutation(n)
        return self.features[self.starts[well] + idx]


@dataclass
class DrawnContext:
    """The imaging side of a training batch before encoding: ``pools`` ``(W, P, F)`` standardised imaging cells
    of each well, ``member`` ``(W, C, P)`` bool (each RNA cell's set), ``drop`` ``(W, C)`` bool (context hidden)."""

    pools: torch.Tensor
    member: torch.Tensor
    drop: torch.Tensor

    def to(self, device: torch.device) -> "DrawnContext":
        return DrawnContext(self.pools.to(device), self.member.to(device), self.drop.to(device))


def draw_context(
    imaging: WellImaging,
    wells: np.ndarray,
    cells_per_well: int,
    pool_size: int,
    context_size: int,
    rng: np.random.Generator,
    drop_prob: float = 0.0,
) -> DrawnContext:
    """Draw a pool of each well in ``wells`` (``(W,)`` codes) and give each of its ``cells_per_well`` RNA cells
    its own random set of ``context_size`` pool cells (CPU tensors; the network encodes each pool once)."""
    pool_size = imaging.pool_size(pool_size)
    pools = torch.stack([imaging.pool(w, pool_size, rng) for w in wells])
    return DrawnContext(
        pools=pools,
        member=torch.from_numpy(random_sets(rng, (len(wells), cells_per_well), pool_size, context_size)),
        drop=torch.from_numpy(rng.random((len(wells), cells_per_well)) < drop_prob),
    )


def random_sets(rng: np.random.Generator, shape: tuple[int, int], pool_size: int, set_size: int) -> np.ndarray:
    """``shape + (pool_size,)`` bool masks, each with ``min(set_size, pool_size)`` random members."""
    n = min(set_size, pool_size)
    chosen = np.argsort(rng.random((*shape, pool_size)), axis=-1)[..., :n]
    member = np.zeros((*shape, pool_size), dtype=bool)
    np.put_along_axis(member, chosen, True, axis=-1)
    return member


MIN_STEPS_PER_EPOCH = 8


class WellBatches:
    """Batches of RNA cells laid out as a grid of wells × cells, so each well's pool is encoded once per batch.

    ``wells``: ``(N,)`` well code of every RNA cell. A batch takes ``cells_per_well`` cells from each of up to
    ``batch_size // cells_per_well`` wells (all wells when there are fewer, with more cells each), so wells
    weigh equally whatever their size. An epoch has as many cells as the split; each well's cells are taken
    in a fresh random order, without repeats until the well is exhausted.
    """

    def __init__(self, wells: np.ndarray, batch_size: int, cells_per_well: int = 16) -> None:
        self.codes, inverse = np.unique(wells, return_inverse=True)
        self.members = [np.flatnonzero(inverse == i) for i in range(len(self.codes))]
        self.n_wells = min(len(self.codes), max(1, batch_size // cells_per_well))
        self.cells_per_well = max(1, batch_size // self.n_wells) if self.n_wells < batch_size // cells_per_well \
            else cells_per_well
        # Tiny data (bulk: one profile per well) would make an epoch a single step; a floor keeps validation and
        # early stopping at a sensible rate (each extra step sees the same profiles at new noise levels).
        self.steps = max(MIN_STEPS_PER_EPOCH, math.ceil(len(wells) / (self.n_wells * self.cells_per_well)))

    def epoch(self, rng: np.random.Generator):
        """Yield ``(well codes (W,), cell indices (W, C))`` for one epoch."""
        queues = [rng.permutation(m) for m in self.members]
        heads = np.zeros(len(queues), dtype=np.int64)
        for _ in range(self.steps):
            chosen = np.sort(rng.choice(len(self.codes), self.n_wells, replace=False))
            idx = np.empty((self.n_wells, self.cells_per_well), dtype=np.int64)
            for row, w in enumerate(chosen):
                take = (heads[w] + np.arange(self.cells_per_well)) % len(queues[w])
                idx[row] = queues[w][take]
                heads[w] += self.cells_per_well
            yield self.codes[chosen], idx
