"""A short digest of the data a model trains on, so ``resume`` can refuse to continue on other data."""

from __future__ import annotations

import hashlib

import numpy as np
import scipy.sparse as sp

from phenoseq.io.screen import PairedScreen


def _row_sums(X) -> np.ndarray:
    sums = np.asarray(X.sum(axis=1)).ravel() if sp.issparse(X) else np.asarray(X, dtype=np.float64).sum(axis=1)
    # Rounded so that the same file read twice (or by another numpy) gives the same digest.
    return np.round(np.asarray(sums, dtype=np.float64), 4)


def screen_fingerprint(screen: PairedScreen, splits: tuple[str, ...] = ("train", "val")) -> str:
    """sha256 over the wells of ``splits`` (ids, keys, cell counts), the feature and gene names, and every
    cell's total of those wells in both modalities. Different files, genes or cells give a different digest."""
    wells = [w for s in splits for w in screen.wells_in(s)]
    digest = hashlib.sha256()
    table = screen.wells.loc[wells].astype(str)
    digest.update(table.to_csv().encode())
    for modality in ("imaging", "rnaseq"):
        adata = screen.subset(modality, wells)
        digest.update("\0".join(adata.var_names).encode())
        digest.update("\0".join(adata.obs_names).encode())
        digest.update(_row_sums(adata.X).tobytes())
    return digest.hexdigest()
