"""Honest baselines the diffusion model must beat, fitted on the training split only.

* :class:`RidgeBaseline`: ridge regression from a well's mean (standardised) morphology to the well's mean
  RNA latent; synthetic cells are drawn around the prediction with the pooled covariance of training cells
  around their well mean (so the spread is realistic but not treatment-specific).
* :class:`NearestWellBaseline`: the RNA cells of the training well whose mean morphology is closest,
  resampled. It can only ever output treatments it has seen, and only real training cells.

Both expose ``generate(imaging_adata, cells_per_well, seed, progress=None)`` returning the synthetic-cell
AnnData contract of :mod:`phenoseq.generate.output`, and a ``rna_space`` attribute, like the model.
"""

from __future__ import annotations

import anndata as ad
import numpy as np

from phenoseq import progress as _progress
from phenoseq.errors import PhenoseqError
from phenoseq.generate.output import synthetic_adata, well_metadata
from phenoseq.generate.seeds import well_rng, well_seed
from phenoseq.groups import group_means
from phenoseq.io.screen import PairedScreen
from phenoseq.rna.space import RNASpace


class _MorphologyWells:
    """Standardisation of morphology fitted on training imaging cells, and per-well mean profiles."""

    def __init__(self, screen: PairedScreen) -> None:
        train = screen.subset("imaging", screen.wells_in("train"))
        X = np.asarray(train.X, dtype=np.float64)
        self.features = screen.imaging.var_names.tolist()
        self.mean = X.mean(axis=0)
        sd = X.std(axis=0)
        self.scale = np.where(sd > 0, sd, 1.0)
        self.sample_key = screen.keys.sample

    def well_means(self, imaging: ad.AnnData) -> tuple[list[str], np.ndarray]:
        """(sorted sample ids, ``(n_wells, n_features)`` mean standardised morphology)."""
        if imaging.var_names.tolist() != self.features:
            raise PhenoseqError(
                "the imaging data's features differ from those the baseline was fitted on "
                f"({imaging.n_vars} vs {len(self.features)} features, or a different order)"
            )
        X = (np.asarray(imaging.X, dtype=np.float64) - self.mean) / self.scale
        return group_means(X, imaging.obs[self.sample_key].astype(str).to_numpy())


def _check_cells_per_well(cells_per_well: int) -> None:
    if int(cells_per_well) < 1:
        raise PhenoseqError(f"cells_per_well must be at least 1, got {cells_per_well}")


def _output(latent: list[np.ndarray], names: list[str], imaging: ad.AnnData, screen: PairedScreen,
            rna_space: RNASpace, seed: int, settings: dict) -> ad.AnnData:
    samples = [s for s, z in zip(names, latent) for _ in range(len(z))]
    return synthetic_adata(
        np.concatenate(latent), samples, well_metadata(imaging, screen.keys), screen.keys,
        seeds=np.array([well_seed(seed, s) for s in samples]), settings=settings, decode=rna_space.decode, genes=rna_space.genes,
    )


class RidgeBaseline:
    """Ridge regression from mean well morphology to mean well RNA latent, plus pooled cell noise.

    Parameters
    ----------
    screen
        The paired screen; only its training wells are read.
    rna_space
        The RNA space the latents live in (the model's, so that every method is scored in one space).
    alphas
        Ridge penalties tried by leave-one-well-out cross-validation on the training wells.
    """

    name = "ridge"

    def __init__(self, screen: PairedScreen, rna_space: RNASpace,
                 alphas: tuple[float, ...] = tuple(np.logspace(-2, 4, 13))) -> None:
        from sklearn.linear_model import RidgeCV

        self.rna_space = rna_space
        self._screen = screen
        self._morph = _MorphologyWells(screen)
        train = screen.wells_in("train")
        names, X = self._morph.well_means(screen.subset("imaging", train))
        rna = screen.subset("rnaseq", train)
        Z = rna_space.transform(rna).astype(np.float64)
        samples = rna.obs[screen.keys.sample].astype(str).to_numpy()
        _, Y = group_means(Z, samples, names)
        codes = np.searchsorted(names, samples)
        # With one training well per treatment there are few rows; RidgeCV's efficient leave-one-out picks alpha.
        self.regression = RidgeCV(alphas=alphas).fit(X, Y)
        self.alpha = float(self.regression.alpha_)
        residual = Z - Y[codes]
        cov = residual.T @ residual / max(len(Z) - len(names), 1)
        # A tiny ridge keeps the Cholesky factor defined when some latent directions carry no within-well spread.
        jitter = 1e-6 * max(float(np.trace(cov)) / len(cov), 1e-12)
        self._chol = np.linalg.cholesky(cov + jitter * np.eye(len(cov)))

    def generate(self, imaging_adata: ad.AnnData, cells_per_well: int, seed: int = 0,
                 progress: _progress.Progress | None = None) -> ad.AnnData:
        """``cells_per_well`` synthetic cells for every well of ``imaging_adata`` (contract in :mod:`output`)."""
        _check_cells_per_well(cells_per_well)
        names, X = self._morph.well_means(imaging_adata)
        centres = self.regression.predict(X)
        latent = []
        for name, centre in _progress.get(progress).track(list(zip(names, centres)), "ridge baseline"):
            noise = well_rng(seed, name).standard_normal((int(cells_per_well), len(centre)))
            latent.append(centre + noise @ self._chol.T)
        settings = {"model": self.name, "alpha": self.alpha, "cells_per_well": int(cells_per_well), "seed": int(seed)}
        return _output(latent, names, imaging_adata, self._screen, self.rna_space, seed, settings)


class NearestWellBaseline:
    """RNA cells of the training well with the closest mean standardised morphology, resampled.

    Parameters
    ----------
    screen
        The paired screen; only its training wells are read.
    rna_space
        The RNA space the training cells are mapped into.
    """

    name = "nearest_well"

    def __init__(self, screen: PairedScreen, rna_space: RNASpace) -> None:
        self.rna_space = rna_space
        self._screen = screen
        self._morph = _MorphologyWells(screen)
        train = screen.wells_in("train")
        self.train_wells, self._centres = self._morph.well_means(screen.subset("imaging", train))
        rna = screen.subset("rnaseq", train)
        Z = rna_space.transform(rna)
        samples = rna.obs[screen.keys.sample].astype(str).to_numpy()
        self._cells = {w: Z[samples == w] for w in self.train_wells}

    def generate(self, imaging_adata: ad.AnnData, cells_per_well: int, seed: int = 0,
                 progress: _progress.Progress | None = None) -> ad.AnnData:
        """``cells_per_well`` resampled training cells for every well of ``imaging_adata``.

        ``uns["phenoseq"]["source_wells"]`` maps each well to the training well its cells came from.
        """
        from scipy.spatial.distance import cdist

        _check_cells_per_well(cells_per_well)
        names, X = self._morph.well_means(imaging_adata)
        nearest = np.argmin(cdist(X, self._centres), axis=1)
        latent, sources = [], {}
        for name, j in _progress.get(progress).track(list(zip(names, nearest)), "nearest-well baseline"):
            pool = self._cells[self.train_wells[j]]
            k = int(cells_per_well)
            idx = well_rng(seed, name).choice(len(pool), size=k, replace=k > len(pool))
            latent.append(pool[idx])
            sources[name] = self.train_wells[j]
        settings = {"model": self.name, "cells_per_well": int(cells_per_well), "seed": int(seed),
                    "source_wells": sources}
        return _output(latent, names, imaging_adata, self._screen, self.rna_space, seed, settings)
