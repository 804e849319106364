"""Context sets: the matched-context multi-cell profiles of the identification benchmark.

Each well's imaging cells are drawn into ``sets_per_well`` random sets of ``set_size`` cells. A generator is
given the imaging of **one set** as if it were a well (sample id ``"<well>::set<j>"``) and generates
``set_size`` synthetic cells from it, so a profile's synthetic part is conditioned on exactly the imaging
cells of that profile, no more. The set's profiles are then

* imaging: mean morphology of the set;
* real RNA: mean of ``set_size`` random real RNA cells of the well (the ceiling);
* synthetic RNA: mean of the set's synthetic cells.

Comparing these at equal set sizes removes the confound of single-cell benchmarks, where a synthetic cell
conditioned on dozens of imaging cells is compared with one imaging cell.
"""

from __future__ import annotations

from dataclasses import dataclass

import anndata as ad
import numpy as np

from phenoseq.evaluate.profiles import CellTable
from phenoseq.generate.output import LATENT_KEY, SET_SEPARATOR
from phenoseq.generate.seeds import well_rng
from phenoseq.groups import group_means


@dataclass
class ContextSets:
    """``ids`` ``(S,)`` set ids, ``wells`` ``(S,)`` their wells, ``members`` ``(S, N)`` imaging rows."""

    ids: np.ndarray
    wells: np.ndarray
    members: np.ndarray

    @classmethod
    def draw(cls, imaging: ad.AnnData, sample_key: str, wells: list[str], set_size: int, sets_per_well: int,
             seed: int) -> "ContextSets":
        """Sets of ``set_size`` imaging cells (without replacement unless the well is smaller) per well."""
        samples = imaging.obs[sample_key].astype(str).to_numpy()
        ids, owner, members = [], [], []
        wanted = set(wells)
        for well, rows in CellTable(np.zeros((len(samples), 0)), samples).groups().items():
            if well not in wanted:
                continue
            rng = well_rng(seed, well, "context-sets")
            for j in range(sets_per_well):
                members.append(rng.choice(rows, size=set_size, replace=len(rows) < set_size))
                ids.append(f"{well}{SET_SEPARATOR}{j}")
                owner.append(well)
        return cls(np.array(ids), np.array(owner), np.stack(members))

    def imaging(self, imaging: ad.AnnData, sample_key: str) -> ad.AnnData:
        """The imaging cells of every set, each set labelled as its own sample (what generators are given)."""
        rows = self.members.ravel()
        obs = imaging.obs.iloc[rows].copy()
        obs.index = [f"{n}#{i}" for i, n in enumerate(obs.index)]  # a cell may sit in several sets
        obs[sample_key] = np.repeat(self.ids, self.members.shape[1])
        X = imaging.X[rows]
        return ad.AnnData(X=X.toarray() if hasattr(X, "toarray") else np.asarray(X), obs=obs, var=imaging.var.copy())

    def imaging_means(self, X: np.ndarray) -> CellTable:
        """``(S, F)`` mean of each set's rows of ``X`` (the imaging matrix the sets were drawn from)."""
        return CellTable(np.asarray(X, dtype=np.float32)[self.members].mean(axis=1), self.wells)

    def real_means(self, rna: CellTable, seed: int) -> CellTable:
        """``(S, d)`` mean of ``set_size`` random real RNA cells of each set's well."""
        groups = rna.groups()
        n = self.members.shape[1]
        out = np.empty((len(self.ids), rna.X.shape[1]), dtype=np.float32)
        for i, (sid, well) in enumerate(zip(self.ids, self.wells)):
            pool = groups[well]
            out[i] = rna.X[well_rng(seed, sid, "real-set").choice(pool, size=n, replace=len(pool) < n)].mean(axis=0)
        return CellTable(out, self.wells)

    def synthetic_means(self, synthetic: ad.AnnData, sample_key: str) -> CellTable:
        """``(S, d)`` mean latent of each set's synthetic cells (``synthetic`` generated from :meth:`imaging`)."""
        labels = synthetic.obs[sample_key].astype(str).to_numpy()
        _, means = group_means(np.asarray(synthetic.obsm[LATENT_KEY]), labels, self.ids.tolist())
        return CellTable(means, self.wells)
