"""A second opinion on a well's mean: ridge regression from mean morphology to mean RNA latent.

The diffusion model and this regression are fitted to the same training wells by very different means; where
their predicted well means disagree, at least one of them is wrong, so the disagreement is the model's cheapest
ensemble-style estimate of its own error (:mod:`phenoseq.generate.calibrate` turns it into intervals and a
confidence). Both sides live in the model's standardised spaces: morphology after the imaging scaler, latents
after the latent scaler.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ALPHAS = tuple(np.logspace(-2, 6, 17))  # penalties tried by cross-validation


@dataclass
class WellRidge:
    coef: np.ndarray  # (F, d)
    intercept: np.ndarray  # (d,)
    alpha: float

    @classmethod
    def fit(cls, X: np.ndarray, Y: np.ndarray, groups: np.ndarray | None = None,
            alphas: tuple[float, ...] = ALPHAS) -> "WellRidge":
        """Fit on training wells: ``X`` ``(n, F)`` mean morphology, ``Y`` ``(n, d)`` mean latent. The penalty
        is the one with the smallest cross-validated error: with ``groups`` ``(n,)`` (e.g. each well's
        treatment) every group's wells are predicted by a fit without the group, as a treatment never seen
        would be; without, every well by a fit without it (closed form, from one SVD). The two agree when each
        group has one well; with replicate wells per treatment, leaving one well out would pick the penalty
        that suits treatments the fit has already seen."""
        X, Y = np.asarray(X, np.float64), np.asarray(Y, np.float64)
        if len(alphas) == 1:
            alpha = float(alphas[0])
        elif groups is None:
            alpha = _leave_one_out_alpha(X, Y, alphas)
        else:
            alpha = _leave_group_out_alpha(X, Y, np.asarray(groups).astype(str), alphas)
        x0, y0 = X.mean(axis=0), Y.mean(axis=0)
        U, s, Vt = np.linalg.svd(X - x0, full_matrices=False)
        coef = Vt.T @ ((s / (s**2 + alpha))[:, None] * (U.T @ (Y - y0)))
        return cls(coef.astype(np.float32), (y0 - x0 @ coef).astype(np.float32), alpha)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """``(n, d)`` predicted mean latent of wells with mean morphology ``X`` ``(n, F)``."""
        return np.asarray(X, np.float64) @ self.coef + self.intercept

    def state(self) -> tuple[dict[str, np.ndarray], dict]:
        return {"well_ridge.coef": self.coef, "well_ridge.intercept": self.intercept}, {"alpha": self.alpha}

    @classmethod
    def from_state(cls, tensors: dict[str, np.ndarray], meta: dict, n_features: int, n_latent: int) -> "WellRidge":
        coef, intercept = np.asarray(tensors["well_ridge.coef"]), np.asarray(tensors["well_ridge.intercept"])
        if coef.shape != (n_features, n_latent) or intercept.shape != (n_latent,):
            raise ValueError(f"well-ridge tensors have shapes {coef.shape} and {intercept.shape}, expected "
                             f"({n_features}, {n_latent}) and ({n_latent},)")
        return cls(coef, intercept, float(meta["alpha"]))


def leave_group_out_errors(X: np.ndarray, Y: np.ndarray, groups: np.ndarray, alpha: float) -> np.ndarray:
    """``(n,)`` RMS error of each well's mean latent predicted by a ridge (penalty ``alpha``) fitted on the wells
    of the *other* groups (treatments): how wrong a regression from morphology is on a treatment it never saw.
    NaN for wells whose group is ``None`` (e.g. controls, which always have training wells)."""
    groups = np.asarray(groups, dtype=object)
    out = np.full(len(X), np.nan)
    for g in {x for x in groups if x is not None}:
        held = groups == g
        if held.all():
            continue
        ridge = WellRidge.fit(X[~held], Y[~held], alphas=(alpha,))
        out[held] = np.sqrt(((ridge.predict(X[held]) - Y[held]) ** 2).mean(axis=1))
    return out


def disagreement(model_means: np.ndarray, ridge_means: np.ndarray) -> np.ndarray:
    """``(n,)`` root-mean-square difference of two ``(n, d)`` well-mean predictions in standardised latent units."""
    return np.sqrt(((np.asarray(model_means) - np.asarray(ridge_means)) ** 2).mean(axis=1)).astype(np.float32)


def _leave_one_out_alpha(X: np.ndarray, Y: np.ndarray, alphas: tuple[float, ...]) -> float:
    """The penalty with the smallest exact leave-one-well-out squared error (closed form, from one SVD)."""
    x0, y0 = X.mean(axis=0), Y.mean(axis=0)
    U, s, _ = np.linalg.svd(X - x0, full_matrices=False)
    UtY = U.T @ (Y - y0)
    best = (np.inf, float(alphas[0]))
    for alpha in alphas:
        shrink = s**2 / (s**2 + alpha)
        leverage = (U**2) @ shrink + 1.0 / len(X)
        resid = (Y - y0 - U @ (shrink[:, None] * UtY)) / np.maximum(1.0 - leverage, 1e-6)[:, None]
        best = min(best, (float((resid**2).mean()), float(alpha)))
    return best[1]


def _leave_group_out_alpha(X: np.ndarray, Y: np.ndarray, groups: np.ndarray, alphas: tuple[float, ...]) -> float:
    """The penalty with the smallest squared error of each group's wells predicted without the group (one SVD
    per group); leave-one-well-out when there is a single group."""
    names = np.unique(groups)
    if len(names) < 2:
        return _leave_one_out_alpha(X, Y, alphas)
    errors = np.zeros(len(alphas))
    for g in names:
        held = groups == g
        x0, y0 = X[~held].mean(axis=0), Y[~held].mean(axis=0)
        U, s, Vt = np.linalg.svd(X[~held] - x0, full_matrices=False)
        UtY, Xh = U.T @ (Y[~held] - y0), (X[held] - x0) @ Vt.T
        for i, alpha in enumerate(alphas):
            errors[i] += float(((y0 + Xh @ ((s / (s**2 + alpha))[:, None] * UtY) - Y[held]) ** 2).sum())
    return float(alphas[int(np.argmin(errors))])
