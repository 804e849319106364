"""Honest baselines the diffusion model must beat, fitted on the training split only.

Every baseline puts a well-level *centre* in the RNA latent space and draws its cells as that centre plus
training residuals (a real training cell minus its well's mean), resampled and re-centred so the well mean
is exactly the centre. The centre is what differs:

* :class:`TrainingMeanBaseline`: the mean of every training well, whatever the imaging (the ``b`` of the
  scaled scores: "no better than the mean");
* :class:`ControlBaseline`: the mean of the training control wells (``Group == "control"``, e.g. DMSO);
* :class:`RidgeBaseline`: ridge regression from a well's mean standardised morphology to its mean latent.

:class:`NearestWellBaseline` instead returns the real RNA cells of the training well whose mean morphology
is closest, resampled; it can only ever output treatments and cells it has seen. :class:`ShuffledImaging`
feeds any generator another well's imaging: a control that should score at or below the mean baseline.

All expose ``name``, ``rna_space`` and ``generate(imaging_adata, cells_per_well, seed, progress=None)``
returning the synthetic-cell AnnData contract of :mod:`phenoseq.generate.output` (the diffusion model's
:class:`~phenoseq.phenoseq.PhenoSeq` too: see :class:`Generator`).
"""

from __future__ import annotations

from typing import Protocol

import anndata as ad
import numpy as np

from phenoseq import progress as _progress
from phenoseq.errors import PhenoseqError
from phenoseq.generate.output import synthetic_adata, well_metadata
from phenoseq.generate.seeds import well_rng, well_seed
from phenoseq.generate.well_ridge import ALPHAS, WellRidge
from phenoseq.groups import group_means
from phenoseq.io.screen import PairedScreen
from phenoseq.rna.space import RNASpace


class Generator(Protocol):
    """What the benchmarks need of a method: a name, the RNA space it works in, and ``generate``."""

    name: str
    rna_space: RNASpace

    def generate(self, imaging_adata: ad.AnnData, cells_per_well: int, seed: int = 0,
                 progress: _progress.Progress | None = None) -> ad.AnnData: ...


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


class _TrainingCells:
    """RNA latents of the training wells: per-well means and each cell's residual from its well mean."""

    def __init__(self, screen: PairedScreen, rna_space: RNASpace, wells: list[str] | None = None) -> None:
        wells = sorted(wells if wells is not None else screen.wells_in("train"))
        rna = screen.subset("rnaseq", wells)
        self.latent = rna_space.transform(rna).astype(np.float64)
        self.samples = rna.obs[screen.keys.sample].astype(str).to_numpy()
        self.wells, self.means = group_means(self.latent, self.samples, wells)
        self.residuals = self.latent - self.means[np.searchsorted(self.wells, self.samples)]


def _check_cells_per_well(cells_per_well: int) -> None:
    if int(cells_per_well) < 1:
        raise PhenoseqError(f"cells_per_well must be at least 1, got {cells_per_well}")


def _around(centre: np.ndarray, residuals: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """``k`` cells: ``centre`` plus resampled residuals, re-centred so that their mean is ``centre`` exactly."""
    draw = residuals[rng.choice(len(residuals), size=k, replace=k > len(residuals))]
    return centre + draw - draw.mean(axis=0)


def _output(latent: list[np.ndarray], names: list[str], imaging: ad.AnnData, screen: PairedScreen,
            rna_space: RNASpace, seed: int, settings: dict) -> ad.AnnData:
    samples = [s for s, z in zip(names, latent) for _ in range(len(z))]
    return synthetic_adata(
        np.concatenate(latent), samples, well_metadata(imaging, screen.keys), screen.keys,
        seeds=np.array([well_seed(seed, s) for s in samples]), settings=settings, decode=rna_space.decode,
        genes=rna_space.genes,
    )


class _CentredBaseline:
    """A baseline whose cells are a per-well centre plus resampled training residuals (subclasses: the centre)."""

    name = "centred"

    def __init__(self, screen: PairedScreen, rna_space: RNASpace) -> None:
        self.rna_space = rna_space
        self._screen = screen
        self._cells = _TrainingCells(screen, rna_space)
        self._sample_key = screen.keys.sample

    def centres(self, imaging_adata: ad.AnnData) -> tuple[list[str], np.ndarray]:
        """(sorted sample ids, ``(n_wells, d)`` latent centre of each well)."""
        raise NotImplementedError

    def settings(self) -> dict:
        return {}

    def generate(self, imaging_adata: ad.AnnData, cells_per_well: int, seed: int = 0,
                 progress: _progress.Progress | None = None) -> ad.AnnData:
        """``cells_per_well`` synthetic cells for every well of ``imaging_adata`` (contract in :mod:`output`)."""
        _check_cells_per_well(cells_per_well)
        names, centres = self.centres(imaging_adata)
        latent = [_around(c, self._cells.residuals, int(cells_per_well), well_rng(seed, n))
                  for n, c in _progress.get(progress).track(list(zip(names, centres)), f"{self.name} baseline")]
        settings = {"model": self.name, "cells_per_well": int(cells_per_well), "seed": int(seed), **self.settings()}
        return _output(latent, names, imaging_adata, self._screen, self.rna_space, seed, settings)

    def _wells(self, imaging_adata: ad.AnnData) -> list[str]:
        if self._sample_key not in imaging_adata.obs.columns:
            raise PhenoseqError(f"imaging: obs has no {self._sample_key!r} column to group cells into wells")
        return sorted(imaging_adata.obs[self._sample_key].astype(str).unique().tolist())


class TrainingMeanBaseline(_CentredBaseline):
    """Every well gets the mean latent of the training wells (wells weigh equally), plus training residuals."""

    name = "training_mean"

    def __init__(self, screen: PairedScreen, rna_space: RNASpace) -> None:
        super().__init__(screen, rna_space)
        self.centre = self._cells.means.mean(axis=0)

    def centres(self, imaging_adata: ad.AnnData) -> tuple[list[str], np.ndarray]:
        names = self._wells(imaging_adata)
        return names, np.repeat(self.centre[None], len(names), axis=0)


class ControlBaseline(TrainingMeanBaseline):
    """Every well gets the mean latent of the training control wells (e.g. DMSO), plus training residuals.

    Raises :class:`PhenoseqError` when the training split has no control well.
    """

    name = "control"

    def __init__(self, screen: PairedScreen, rna_space: RNASpace) -> None:
        controls = screen.control_wells("train")
        if not controls:
            raise PhenoseqError(
                f"no control wells in the training split (obs[{screen.keys.group!r}] == 'control'); the control "
                "baseline needs them"
            )
        super().__init__(screen, rna_space)
        self.centre = self._cells.means[np.searchsorted(self._cells.wells, sorted(controls))].mean(axis=0)


class RidgeBaseline(_CentredBaseline):
    """Ridge regression from mean well morphology to mean well RNA latent, plus resampled training residuals.

    Parameters
    ----------
    screen
        The paired screen; only its training wells are read.
    rna_space
        The RNA space the latents live in (the model's, so that every method is scored in one space).
    alphas
        Ridge penalties tried by cross-validation on the training wells, leaving out one treatment at a time
        (all its wells): the penalty that suits treatments the fit never saw.
    """

    name = "ridge"

    def __init__(self, screen: PairedScreen, rna_space: RNASpace,
                 alphas: tuple[float, ...] = ALPHAS) -> None:
        super().__init__(screen, rna_space)
        self._morph = _MorphologyWells(screen)
        names, X = self._morph.well_means(screen.subset("imaging", self._cells.wells))
        treatments = screen.wells.loc[names, screen.keys.treatment]
        self.regression = WellRidge.fit(X, self._cells.means, groups=treatments, alphas=alphas)
        self.alpha = self.regression.alpha

    def centres(self, imaging_adata: ad.AnnData) -> tuple[list[str], np.ndarray]:
        names, X = self._morph.well_means(imaging_adata)
        return names, self.regression.predict(X)

    def settings(self) -> dict:
        return {"alpha": self.alpha}


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
        cells = _TrainingCells(screen, rna_space)
        self.train_wells, self._centres = self._morph.well_means(screen.subset("imaging", cells.wells))
        self._cells = {w: cells.latent[cells.samples == w] for w in self.train_wells}

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


class ShuffledImaging:
    """Any generator fed the imaging of another well: each well's cells come from a different well's images.

    The wells are put in one random cycle (a derangement), so no well keeps its own imaging. Sample ids that
    share a well (the ``"<well>::set<j>"`` context sets of the matched-context benchmark) are moved together,
    so a set never receives a set of its own well. Scores at or below the training-mean baseline show that a
    method's figures come from the imaging and not from elsewhere.
    """

    def __init__(self, inner: Generator, name: str | None = None, sample_key: str = "Sample_ID") -> None:
        self.inner = inner
        self.rna_space = inner.rna_space
        self.name = name or f"shuffled_{getattr(inner, 'name', 'generator')}"
        self.sample_key = getattr(getattr(inner, "keys", None), "sample", sample_key)

    def generate(self, imaging_adata: ad.AnnData, cells_per_well: int, seed: int = 0,
                 progress: _progress.Progress | None = None) -> ad.AnnData:
        from phenoseq.generate.output import SET_SEPARATOR

        k = self.sample_key
        samples = imaging_adata.obs[k].astype(str).to_numpy()
        base = np.array([s.split(SET_SEPARATOR)[0] for s in samples])
        wells = np.unique(base)
        if len(wells) < 2:
            raise PhenoseqError("shuffling imaging between wells needs at least two wells")
        cycle = wells[np.random.default_rng(well_seed(seed, "", "shuffle")).permutation(len(wells))]
        donor_of = dict(zip(cycle, np.roll(cycle, -1)))
        # Each well w receives the cells of donor_of[w]: relabel the donor's cells (and sets) with w's ids.
        receiver_of = {d: w for w, d in donor_of.items()}
        relabelled = np.array([receiver_of[b] + s[len(b):] for s, b in zip(samples, base)])
        fed = imaging_adata.copy()
        original = imaging_adata.obs.drop_duplicates(k).set_index(k)
        fed.obs[k] = relabelled
        for col in fed.obs.columns:
            if col != k and col in original.columns:
                # The receiving well's annotations (treatment, replicate ...), not the donor's.
                fed.obs[col] = original.loc[relabelled, col].to_numpy()
        out = self.inner.generate(fed, cells_per_well, seed=seed, progress=progress)
        out.uns["phenoseq"] = {**dict(out.uns.get("phenoseq", {})), "model": self.name,
                               "imaging_from": {str(w): str(d) for w, d in donor_of.items()}}
        return out


def standard_baselines(screen: PairedScreen, rna_space: RNASpace, main: Generator | None = None) -> dict[str, Generator]:
    """Every baseline fitted on ``screen``'s training wells, by name: training mean, control (when the training
    split has control wells), ridge, nearest well, and the shuffled-imaging control of ``main`` (ridge when
    ``main`` is None). Put ``main`` (e.g. the diffusion model) first in the dict returned."""
    out: dict[str, Generator] = {} if main is None else {main.name: main}
    out["training_mean"] = TrainingMeanBaseline(screen, rna_space)
    if screen.control_wells("train"):
        out["control"] = ControlBaseline(screen, rna_space)
    out["ridge"] = RidgeBaseline(screen, rna_space)
    out["nearest_well"] = NearestWellBaseline(screen, rna_space)
    shuffled = ShuffledImaging(main or out["ridge"], sample_key=screen.keys.sample)
    out[shuffled.name] = shuffled
    return out
