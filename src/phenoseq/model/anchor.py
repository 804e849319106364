"""The well-mean anchor: a regression that predicts a well's mean RNA latent from its mean morphology.

The diffusion model generates each cell's *deviation* from its well's mean; the anchor supplies the mean.
Measured on the default simulated screen and on real Cell Painting → L1000 data, a regularised regression
predicts a well's mean better than a generator left to find it (``benchmarks/bench_unseen.py``,
``bench_cmea.py``), so the generator is never worse than the regression on the mean by construction and spends
its capacity on what a regression cannot give: the shape of the well's cell distribution.

Three parts, in the model's spaces (morphology after the imaging scaler; latents as the RNA space gives them,
so squared error in the latent is squared error in expression over the model's genes):

* **reduced-rank ridge**: ridge regression onto the top ``rank`` principal directions of the training wells'
  mean latents. Rank and penalty are chosen by treatment-grouped K-fold cross-validation on the training wells
  (every fold's wells are of treatments the fit did not see, as an unseen compound's are), keeping the smallest
  rank within one standard error of the best fit. With ~65 real L1000 profiles a rank of one to three beats
  full-rank ridge; on the simulated screens the rank kept is 16 to the full rank.
* **nearest-well blend**: ``(1 - blend) · regression + blend · mean of the nearest training well`` (by mean
  morphology), ``blend`` chosen by the same grouped folds. A compound's nearest training well is often one of
  the same mechanism, which carries the part of the RNA response that morphology shows only through
  similarity (measured: +0.02 to +0.08 Pearson over ridge on unseen simulated compounds). A blend that lowers
  the squared error must not turn the predicted change away from the real one (median cosine over the folds'
  wells): a heavily penalised regression predicts a small change, and a nearest-well term that barely moves the
  squared error can swamp its direction (on the real L1000 profiles a blend of 0.1 chosen on error alone cost
  0.02 of median Pearson).
* **memory**: a kernel-weighted sum of the training wells' own residuals from the blend,
  ``Σ_j k_j r_j / (prior + Σ_j k_j)`` with ``k_j = exp(-d_j² / bandwidth)`` (``d_j²``: mean squared difference
  of standardised mean morphology to training well ``j``). A well whose morphology matches a training well
  recalls that well's RNA, as the nearest-well lookup does; a novel one keeps the blend. The bandwidth is
  chosen on the validation wells (replicates of training treatments); without them the memory is off.

The memory also keeps up to ``CELLS_PER_WELL`` real cells of each training well, as deviations from their well
mean, so that a recognised well can recall the *shape* of its twin's cells as well as its mean
(:meth:`WellAnchor.recall`): the fraction of a well's cells recalled is its memory weight ``Σ_j k_j /
(prior + Σ_j k_j)``, so a novel well gets all its cells from the diffusion model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ALPHAS = tuple(np.logspace(-2, 6, 17))
RANKS = (1, 2, 3, 5, 8, 16, 32, 64)  # tried up to the data's full rank, which is always tried too
BANDWIDTH_QUANTILES = (0.01, 0.03, 0.1, 0.3)  # of the training wells' pairwise squared distances
PRIORS = (0.1, 1.0)  # weight of "no correction" in the memory's weighted mean
BLENDS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)  # weights of the nearest training well tried by cross-validation
MAX_FOLDS = 5
CELLS_PER_WELL = 256  # real cells kept per training well for recall
MIN_GAIN = 0.02  # relative drop in validation error the memory must bring to be switched on


@dataclass
class WellAnchor:
    coef: np.ndarray  # (F, d) slope of the reduced-rank ridge
    intercept: np.ndarray  # (d,)
    wells_x: np.ndarray  # (n, F) mean morphology of the training wells
    wells_y: np.ndarray  # (n, d) their mean latents
    alpha: float
    rank: int
    blend: float  # weight of the nearest training well's mean beside the regression's
    bandwidth: float = 0.0  # of the memory; 0: memory off
    prior: float = 1.0
    cells: np.ndarray | None = None  # (m, d) deviations of training cells from their well means (memory on)
    cell_well: np.ndarray | None = None  # (m,) row of wells_x each of those cells belongs to, ascending

    @classmethod
    def fit(cls, X: np.ndarray, Y: np.ndarray, groups: np.ndarray, X_val: np.ndarray | None = None,
            Y_val: np.ndarray | None = None, cells: np.ndarray | None = None,
            cell_well: np.ndarray | None = None) -> "WellAnchor":
        """Fit on training wells: ``X`` ``(n, F)`` mean morphology, ``Y`` ``(n, d)`` mean latent, ``groups``
        ``(n,)`` treatment of each well (folds never split a treatment). ``X_val``/``Y_val``: validation wells
        that choose the memory's bandwidth (none: memory off). ``cells`` ``(m, d)`` and ``cell_well`` ``(m,)``:
        training cells' latents and their well's row in ``X``, kept (at most ``CELLS_PER_WELL`` per well, as
        deviations from the well mean) for :meth:`recall` when the memory is on."""
        X, Y = np.asarray(X, np.float64), np.asarray(Y, np.float64)
        alpha, rank, blend = _choose(X, Y, np.asarray(groups).astype(str))
        coef, intercept = _reduced_rank_ridge(X, Y, alpha, rank)
        anchor = cls(coef.astype(np.float32), intercept.astype(np.float32), X.astype(np.float32),
                     Y.astype(np.float32), alpha, rank, blend)
        if X_val is None or len(X_val) == 0 or len(X) < 2:
            return anchor
        X_val, Y_val = np.asarray(X_val, np.float64), np.asarray(Y_val, np.float64)
        d2 = _sq_distances(X, X)[np.triu_indices(len(X), 1)]
        off = float(((anchor.base(X_val) - Y_val) ** 2).mean())
        best = (np.inf, 0.0, 1.0)
        for q in BANDWIDTH_QUANTILES:
            for prior in PRIORS:
                anchor.bandwidth, anchor.prior = float(np.quantile(d2, q)), prior
                best = min(best, (float(((anchor.predict(X_val) - Y_val) ** 2).mean()), anchor.bandwidth, prior))
        # A memory that does not clearly help the validation wells stays off (chance gains are not worth it).
        _, anchor.bandwidth, anchor.prior = best if best[0] < (1 - MIN_GAIN) * off else (off, 0.0, 1.0)
        if anchor.bandwidth > 0 and cells is not None:
            cell_well = np.asarray(cell_well, dtype=np.int64)
            rng = np.random.default_rng(0)
            keep = np.concatenate([np.sort(rng.permutation(np.flatnonzero(cell_well == j))[:CELLS_PER_WELL])
                                   for j in range(len(X))])  # grouped by well, for recall's lookups
            anchor.cells = (np.asarray(cells, np.float64)[keep] - Y[cell_well[keep]]).astype(np.float32)
            anchor.cell_well = cell_well[keep]
        return anchor

    def out_of_fold(self, groups: np.ndarray, X_new: np.ndarray | None = None,
                    groups_new: np.ndarray | None = None) -> np.ndarray:
        """``(n + m, d)`` each training well's mean predicted by the regression and blend refitted without its
        treatment's fold (the folds that chose rank, penalty and blend): what the anchor predicts for a compound
        it never saw, on wells whose real means are known. ``X_new`` ``(m, F)`` with treatments ``groups_new``
        (all among ``groups``): other wells of the training treatments (e.g. validation wells), predicted the
        same way; their ``m`` rows follow the training wells' ``n``. With a lone treatment every well gets the
        full fit."""
        groups = np.asarray(groups).astype(str)
        X, Y = self.wells_x.astype(np.float64), self.wells_y.astype(np.float64)
        X_new = np.zeros((0, X.shape[1])) if X_new is None else np.asarray(X_new, np.float64)
        groups_new = np.zeros(0, str) if groups_new is None else np.asarray(groups_new).astype(str)
        if len(X_new) != len(groups_new) or not np.isin(groups_new, groups).all():
            raise ValueError("out_of_fold: X_new needs one treatment per row, each a training treatment")
        if len(np.unique(groups)) < 2:
            return self.base(np.r_[X, X_new])
        folds = _folds(groups)
        fold_of = dict(zip(groups, folds))
        folds = np.r_[folds, np.array([fold_of[g] for g in groups_new], dtype=folds.dtype)]
        pred, nearest = _out_of_fold_parts(np.r_[X, X_new], Y, folds, self.alpha, self.rank)
        return (1 - self.blend) * pred + self.blend * nearest

    def regression(self, X: np.ndarray) -> np.ndarray:
        """``(n, d)`` the reduced-rank ridge alone."""
        return np.asarray(X, np.float64) @ self.coef + self.intercept

    def base(self, X: np.ndarray) -> np.ndarray:
        """``(n, d)`` the regression blended with the nearest training well's mean (no memory)."""
        X = np.asarray(X, np.float64)
        out = self.regression(X)
        if self.blend > 0:
            nearest = self.wells_y[np.argmin(_sq_distances(X, self.wells_x), axis=1)]
            out = (1 - self.blend) * out + self.blend * nearest
        return out

    def memory_weights(self, X: np.ndarray) -> np.ndarray:
        """``(n, n_train)`` weight of each training well in the memory term (rows sum to the memory weight,
        below 1); ``(n, 0)`` when the memory is off."""
        if self.bandwidth <= 0:
            return np.zeros((len(X), 0))
        k = np.exp(-_sq_distances(np.asarray(X, np.float64), self.wells_x) / self.bandwidth)
        return k / (self.prior + k.sum(axis=1, keepdims=True))

    def predict(self, X: np.ndarray) -> np.ndarray:
        """``(n, d)`` anchored mean latent of wells with mean morphology ``X`` ``(n, F)``."""
        w = self.memory_weights(X)
        if not w.shape[1]:
            return self.base(X)
        # A training well is its own nearest well, so its residual from the blend is (1 - blend) of the regression's.
        residuals = (1 - self.blend) * (self.wells_y - self.regression(self.wells_x))
        return self.base(X) + w @ residuals

    def recall(self, x: np.ndarray, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """For one well of mean morphology ``x`` ``(F,)``: which of its ``n`` cells recall a training cell
        (``(n,)`` bool, each with probability the well's memory weight) and their deviations ``(n_recalled, d)``,
        drawn from the training wells in proportion to their memory weights."""
        w = self.memory_weights(np.asarray(x)[None])[0]
        if self.cells is None or not w.size or w.sum() <= 0:
            return np.zeros(n, dtype=bool), np.zeros((0, self.coef.shape[1]), np.float32)
        chosen = rng.random(n) < w.sum()
        wells = rng.choice(len(w), size=int(chosen.sum()), p=w / w.sum())
        starts = np.searchsorted(self.cell_well, wells)
        counts = np.searchsorted(self.cell_well, wells, side="right") - starts
        return chosen, self.cells[starts + (rng.random(len(wells)) * counts).astype(np.int64)]

    def state(self) -> tuple[dict[str, np.ndarray], dict]:
        tensors = {"anchor.coef": self.coef, "anchor.intercept": self.intercept, "anchor.wells_x": self.wells_x,
                   "anchor.wells_y": self.wells_y}
        if self.cells is not None:
            tensors |= {"anchor.cells": self.cells, "anchor.cell_well": self.cell_well}
        return tensors, {"alpha": self.alpha, "rank": self.rank, "blend": self.blend, "bandwidth": self.bandwidth,
                         "prior": self.prior}

    @classmethod
    def from_state(cls, tensors: dict[str, np.ndarray], meta: dict, n_features: int, n_latent: int) -> "WellAnchor":
        t = {k: np.asarray(tensors[f"anchor.{k}"]) for k in ("coef", "intercept", "wells_x", "wells_y")}
        if (t["coef"].shape != (n_features, n_latent) or t["intercept"].shape != (n_latent,)
                or t["wells_x"].shape[1:] != (n_features,) or t["wells_y"].shape != (len(t["wells_x"]), n_latent)):
            raise ValueError(f"anchor tensors have shapes {[v.shape for v in t.values()]}, expected ({n_features}, "
                             f"{n_latent}), ({n_latent},), (n, {n_features}) and (n, {n_latent})")
        cells = cell_well = None
        if "anchor.cells" in tensors:
            cells, cell_well = np.asarray(tensors["anchor.cells"]), np.asarray(tensors["anchor.cell_well"])
            if (cells.shape[1:] != (n_latent,) or cell_well.shape != (len(cells),) or np.any(np.diff(cell_well) < 0)
                    or not np.array_equal(np.unique(cell_well), np.arange(len(t["wells_x"])))):
                raise ValueError(f"anchor cell tensors have shapes {cells.shape} and {cell_well.shape}, or name wells "
                                 f"outside the {len(t['wells_x'])} training wells")
        return cls(**t, alpha=float(meta["alpha"]), rank=int(meta["rank"]), blend=float(meta["blend"]),
                   bandwidth=float(meta["bandwidth"]), prior=float(meta["prior"]), cells=cells, cell_well=cell_well)


def _sq_distances(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """``(len(A), len(B))`` mean squared difference per feature."""
    d = (A**2).sum(1)[:, None] + (B**2).sum(1)[None] - 2.0 * A @ B.T
    return np.maximum(d, 0.0) / A.shape[1]


def _reduced_rank_ridge(X: np.ndarray, Y: np.ndarray, alpha: float, rank: int) -> tuple[np.ndarray, np.ndarray]:
    """Ridge from ``X`` onto the top ``rank`` principal directions of ``Y``: ``(coef (F, d), intercept (d,))``."""
    x0, y0 = X.mean(axis=0), Y.mean(axis=0)
    V = np.linalg.svd(Y - y0, full_matrices=False)[2][:rank]  # (rank, d)
    U, s, Vt = np.linalg.svd(X - x0, full_matrices=False)
    coef = Vt.T @ ((s / (s**2 + alpha))[:, None] * (U.T @ ((Y - y0) @ V.T))) @ V
    return coef, y0 - x0 @ coef


def _folds(groups: np.ndarray) -> np.ndarray:
    """``(n,)`` fold of each well: up to ``MAX_FOLDS`` folds of whole treatments, fixed by the treatment names."""
    names = np.unique(groups)
    fold_of = dict(zip(names[np.random.default_rng(0).permutation(len(names))],
                       np.arange(len(names)) % min(MAX_FOLDS, len(names))))
    return np.array([fold_of[g] for g in groups])


def _out_of_fold_parts(X: np.ndarray, Y: np.ndarray, folds: np.ndarray, alpha: float,
                       rank: int) -> tuple[np.ndarray, np.ndarray]:
    """``(len(X), d)`` each well's reduced-rank ridge prediction and its nearest well's mean, both from the
    wells outside its fold. ``Y`` holds the first ``len(Y)`` wells' means, the ones fitted on; rows of ``X``
    beyond them are only predicted."""
    n = len(Y)
    pred, nearest = np.empty((len(X), Y.shape[1])), np.empty((len(X), Y.shape[1]))
    for f in np.unique(folds):
        held, fit = folds == f, np.flatnonzero(folds[:n] != f)
        coef, intercept = _reduced_rank_ridge(X[fit], Y[fit], alpha, rank)
        pred[held] = X[held] @ coef + intercept
        nearest[held] = Y[fit][np.argmin(_sq_distances(X[held], X[fit]), axis=1)]
    return pred, nearest


def _choose(X: np.ndarray, Y: np.ndarray, groups: np.ndarray) -> tuple[float, int, float]:
    """(penalty, rank, blend) by treatment-grouped K-fold cross-validation of the squared error: penalty and
    rank by :func:`_one_standard_error`, then the blend of those predictions with the fold's nearest training
    well (:func:`_blend`)."""
    full = int(min(len(X) - 1, Y.shape[1]))
    if full < 1:
        return ALPHAS[len(ALPHAS) // 2], max(1, min(len(X), Y.shape[1])), 0.0
    ranks = sorted({r for r in RANKS if r < full} | {full})
    names, treatment = np.unique(groups, return_inverse=True)
    if len(names) < 2:
        return ALPHAS[len(ALPHAS) // 2], full, 0.0
    folds = _folds(groups)
    errors = np.zeros((len(ALPHAS), len(ranks), len(names)))  # per treatment, for the standard error
    for f in np.unique(folds):
        held = folds == f
        Xt, Yt = X[~held], Y[~held]
        x0, y0 = Xt.mean(axis=0), Yt.mean(axis=0)
        V = np.linalg.svd(Yt - y0, full_matrices=False)[2]
        U, s, Vt = np.linalg.svd(Xt - x0, full_matrices=False)
        UtYV = U.T @ ((Yt - y0) @ V.T)  # every rank's target at once
        Xh = (X[held] - x0) @ Vt.T
        for a, alpha in enumerate(ALPHAS):
            scores = Xh @ ((s / (s**2 + alpha))[:, None] * UtYV)  # (held, all directions)
            for j, r in enumerate(ranks):
                pred = y0 + scores[:, :r] @ V[:r]
                np.add.at(errors[a, j], treatment[held], ((pred - Y[held]) ** 2).sum(axis=1))
    a, j = _one_standard_error(errors)
    alpha, rank = float(ALPHAS[a]), int(ranks[j])
    pred, nearest = _out_of_fold_parts(X, Y, folds, alpha, rank)
    origin = np.empty_like(Y)  # each well's fold's training mean: the change is measured from it
    for f in np.unique(folds):
        origin[folds == f] = Y[folds != f].mean(axis=0)
    return alpha, rank, _blend(pred, nearest, Y, origin)


def _one_standard_error(errors: np.ndarray) -> tuple[int, int]:
    """``(a, j)`` of ``errors`` ``(penalties, ranks, treatments)``: the smallest rank ``j`` whose best penalty's
    total error is within one standard error of the smallest total (the standard error of the paired
    per-treatment differences), and that penalty. A simpler fit that cross-validation cannot tell from the
    best is the safer one to keep."""
    total = errors.sum(axis=2)
    best = np.unravel_index(np.argmin(total), total.shape)
    se = np.sqrt(errors.shape[2]) * (errors - errors[best][None, None]).std(axis=2, ddof=1)
    close = total - total[best] <= se
    j = int(np.flatnonzero(close.any(axis=0))[0])
    return int(np.argmin(np.where(close[:, j], total[:, j], np.inf))), j


def _blend(pred: np.ndarray, nearest: np.ndarray, Y: np.ndarray, origin: np.ndarray) -> float:
    """The weight in ``BLENDS`` of ``nearest`` beside ``pred`` (all ``(n, d)``: out-of-fold predictions, nearest
    wells' means, real means, the folds' training means) with the smallest squared error among the blends
    whose predicted change from ``origin`` agrees with the real change at least as well as no blend does (median
    cosine over wells); the smaller blend on ties."""
    blended = [(1 - blend) * pred + blend * nearest for blend in BLENDS]
    agreement = [_median_cosine(b - origin, Y - origin) for b in blended]
    errors = [((b - Y) ** 2).sum() if a >= agreement[0] else np.inf for a, b in zip(agreement, blended)]
    return float(BLENDS[int(np.argmin(errors))])


def _median_cosine(A: np.ndarray, B: np.ndarray) -> float:
    """Median over rows of the cosine between ``A``'s and ``B``'s rows (0 for an all-zero row)."""
    norms = np.sqrt((A**2).sum(axis=1) * (B**2).sum(axis=1))
    return float(np.median(np.where(norms > 0, (A * B).sum(axis=1) / np.where(norms > 0, norms, 1.0), 0.0)))
