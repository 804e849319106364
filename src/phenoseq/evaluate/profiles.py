"""Cell tables (features of cells tagged by well) and the profiles classifiers see.

A *single* profile is one cell (multi-cell profiles are matched-context sets: :mod:`phenoseq.evaluate.contexts`).
Concatenated modalities pair each imaging cell with an RNA cell (real or synthetic) of the same well at
random: the two modalities were measured on different cells, so only the well links them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from phenoseq.generate.seeds import well_rng
from phenoseq.groups import group_means


@dataclass
class CellTable:
    """``X``: ``(n, d)`` float32 features; ``wells``: ``(n,)`` sample id of each row."""

    X: np.ndarray
    wells: np.ndarray

    def __post_init__(self) -> None:
        self.X = np.asarray(self.X, dtype=np.float32)
        self.wells = np.asarray(self.wells).astype(str)
        if len(self.X) != len(self.wells):
            raise ValueError(f"{len(self.X)} rows of features but {len(self.wells)} well labels")

    def groups(self) -> dict[str, np.ndarray]:
        """Sorted well id → row indices."""
        order = np.argsort(self.wells, kind="stable")
        names, starts = np.unique(self.wells[order], return_index=True)
        return dict(zip(names.tolist(), np.split(order, starts[1:])))

    def well_means(self, wells: list[str]) -> np.ndarray:
        """``(len(wells), d)`` mean feature vector of each listed well."""
        return group_means(self.X, self.wells, wells)[1]


def paired(imaging: CellTable, rna: CellTable, seed: int, purpose: str) -> CellTable:
    """Each imaging cell concatenated with a random RNA row of the same well: ``(n_imaging, d_img + d_rna)``.

    Wells without RNA rows are left out (callers check coverage beforehand).
    """
    rna_groups = rna.groups()
    parts, wells = [], []
    for well, rows in imaging.groups().items():
        pool = rna_groups.get(well)
        if pool is None:
            continue
        pick = pool[well_rng(seed, well, "pair:" + purpose).integers(len(pool), size=len(rows))]
        parts.append(np.concatenate([imaging.X[rows], rna.X[pick]], axis=1))
        wells.append(np.full(len(rows), well))
    return CellTable(np.concatenate(parts), np.concatenate(wells))


def single_profiles(table: CellTable, max_per_well: int, seed: int, purpose: str) -> CellTable:
    """At most ``max_per_well`` random cells of each well (all of them when the well has fewer)."""
    idx = sample_rows(table, max_per_well, seed, purpose)
    return CellTable(table.X[idx], table.wells[idx])


def pooled(imaging: CellTable, rows: np.ndarray, context: int, seed: int, purpose: str) -> CellTable:
    """The matched-morphology control: imaging cell ``rows[i]`` joined with the mean morphology of a random set
    of ``context`` cells of its well (all of them when the well is smaller): ``(len(rows), 2 F)``.

    An image-conditioned generator sees such a set for every synthetic cell, so ``imaging ⊕ pooled`` is the
    floor that any gain from synthetic RNA must be measured against.
    """
    groups = imaging.groups()
    out = np.empty((len(rows), imaging.X.shape[1]), dtype=np.float32)
    for well, members in groups.items():
        mine = np.flatnonzero(imaging.wells[rows] == well)
        if not len(mine):
            continue
        rng = well_rng(seed, well, "pooled:" + purpose)
        n = min(context, len(members))
        for i in mine:
            out[i] = imaging.X[rng.choice(members, size=n, replace=False)].mean(axis=0)
    return CellTable(np.concatenate([imaging.X[rows], out], axis=1), imaging.wells[rows])


def sample_rows(table: CellTable, max_per_well: int, seed: int, purpose: str) -> np.ndarray:
    """Sorted row indices of at most ``max_per_well`` random cells of each well."""
    keep = []
    for well, rows in table.groups().items():
        if len(rows) > max_per_well:
            rows = np.sort(well_rng(seed, well, "single:" + purpose).choice(rows, size=max_per_well, replace=False))
        keep.append(rows)
    return np.sort(np.concatenate(keep))
