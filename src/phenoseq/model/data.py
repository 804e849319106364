"""Tensors the model trains and samples on, and the population-level pairing of RNA cells with imaging sets.

An RNA cell is never paired with an imaging cell: it is paired with a random *set* of imaging cells of
its well, drawn afresh every time it is seen.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import torch

from phenoseq.model.denoiser import ContextSet, Denoiser


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


class WellImaging:
    """Standardised imaging cells grouped by well: ``cells(w)`` gives the rows of well ``w``."""

    def __init__(self, features: np.ndarray, samples: np.ndarray) -> None:
        order = np.argsort(samples, kind="stable")
        self.features = torch.from_numpy(np.ascontiguousarray(features[order]))
        self.names, starts, counts = np.unique(samples[order], return_index=True, return_counts=True)
        self.starts, self.counts = starts, counts
        self.code = {name: i for i, name in enumerate(self.names)}

    def pool(self, well: int, size: int, rng: np.random.Generator) -> torch.Tensor:
        """``(size, F)`` imaging cells of ``well``: a random subset, or all with repeats if the well is smaller."""
        n = self.counts[well]
        idx = rng.choice(n, size, replace=n < size) if n != size else rng.permutation(n)
        return self.features[self.starts[well] + idx]


def make_context(
    denoiser: Denoiser,
    imaging: WellImaging,
    wells: np.ndarray,
    pool_size: int,
    context_size: int,
    rng: np.random.Generator,
    drop_prob: float = 0.0,
) -> ContextSet:
    """Encode each distinct well of ``wells`` (``(B,)`` well codes) once and draw each cell's context set.

    Every RNA cell gets its own random ``context_size`` cells out of its well's encoded pool of ``pool_size``.
    """
    unique, inverse = np.unique(wells, return_inverse=True)
    pools = torch.stack([imaging.pool(w, pool_size, rng) for w in unique])
    n = min(context_size, pool_size)
    index = np.argsort(rng.random((len(wells), pool_size)), axis=1)[:, :n]
    drop = rng.random(len(wells)) < drop_prob
    return ContextSet(
        tokens=denoiser.encode(pools),
        well=torch.from_numpy(inverse.astype(np.int64)),
        index=torch.from_numpy(index.astype(np.int64)),
        drop=torch.from_numpy(drop),
    )


def well_seed(seed: int, sample: str) -> int:
    """A 63-bit seed for one well, so its synthetic cells do not depend on which other wells are generated."""
    digest = hashlib.blake2b(f"{seed}:{sample}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1
