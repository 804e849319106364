"""Bootstrap over test wells: the well, not the cell, is the independent unit of a screen."""

from __future__ import annotations

import numpy as np


def well_draws(n_wells: int, n_boot: int, seed: int) -> np.ndarray:
    """``(n_boot, n_wells)`` multiplicities: each row resamples the wells with replacement.

    Every metric of one split uses the same draws, so differences and ratios (gap recovered) get paired CIs.
    """
    rng = np.random.default_rng(seed)
    return rng.multinomial(n_wells, np.full(n_wells, 1.0 / n_wells), size=n_boot).astype(np.float64)


def interval(values: np.ndarray, level: float = 0.95) -> list[float | None]:
    """Percentile interval ``[low, high]`` of bootstrap values, ignoring NaN (``None`` when all are NaN)."""
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return [None, None]
    tail = (1.0 - level) / 2.0 * 100.0
    lo, hi = np.percentile(values, [tail, 100.0 - tail])
    return [float(lo), float(hi)]


def gap_recovered(base: np.ndarray, augmented: np.ndarray, ceiling: np.ndarray) -> np.ndarray:
    """``(augmented − base) / (ceiling − base)``; NaN where the ceiling does not beat the base."""
    base, augmented, ceiling = (np.asarray(a, dtype=np.float64) for a in (base, augmented, ceiling))
    denom = ceiling - base
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, (augmented - base) / np.where(denom > 0, denom, 1.0), np.nan)
