"""Per-well random streams keyed by the well's id, so a well's draws never depend on which other wells are
processed with it, nor in what order."""

from __future__ import annotations

import hashlib

import numpy as np


def well_seed(seed: int, sample: str, purpose: str = "") -> int:
    """A 63-bit seed from a run seed, a well (sample) id and an optional purpose label."""
    digest = hashlib.blake2b(f"{int(seed)}:{sample}:{purpose}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def well_rng(seed: int, sample: str, purpose: str = "") -> np.random.Generator:
    """A numpy generator seeded by :func:`well_seed`."""
    return np.random.default_rng(well_seed(seed, sample, purpose))
