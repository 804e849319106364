"""Calibrated trust for synthetic wells: prediction intervals for well means, a confidence, an OOD threshold.

Everything is fitted on **calibration wells**: wells with real RNA that the model did not train on (the
validation split). Each calibration well has a predicted well mean ``p`` (the mean of its synthetic cells)
and a real one ``y`` over the same ``G`` features (genes, or latent dimensions for an embedding space).

What the model knows about a well, from its imaging alone (:class:`WellScores`)
    ``ood_w``, its morphological novelty (:mod:`phenoseq.generate.ood`); ``dis_w``, a disagreement on its
    mean: for an anchored model (the default), how far the diffusion network's own cells drift from the
    anchor's mean; otherwise, between the network and a ridge regression (:mod:`phenoseq.generate.well_ridge`);
    ``ctrl_w``, how
    control-like the morphology of a treated well is (0 for control wells): where morphology shows no effect
    it cannot tell an inactive compound from one whose effect is only transcriptional.
Normalised split-conformal intervals
    A well's error on feature ``g`` is modelled as ``|y_g − p_g| ≈ s_g · d_w``: ``s_g`` is the feature's
    typical error (its mean absolute error over the calibration wells) and ``d_w`` the well's difficulty,
    ``log d_w = a + b · log(ood_w) + c · log(dis_w) + e · ctrl_w`` with ``b, c, e ≥ 0`` (a more novel, more
    disputed or more effect-less treated well is never deemed easier), fitted on the calibration wells'
    realised errors. Calibration wells of seen treatments barely vary in novelty, so ``b`` is measured
    elsewhere when it can be (``novelty_slope``: a ridge refitted without each training treatment). The
    interval at level ``L`` is ``p_g ± q_L · s_g · d_w`` with ``q_L`` the finite-sample conformal quantile of
    the calibration scores ``|y_g − p_g| / (s_g d_w)``, so on wells exchangeable with the calibration wells the
    intervals cover a fraction ``≥ L`` of (well, feature) pairs. Calibration wells whose treatment has no
    training well (an unseen compound) are kept as a separate set (``"unseen"``), used for wells of treatments
    the model never trained on. Without them, the ``"unseen"`` set comes from **out-of-fold wells** when the
    model can give them: each training or validation well of a training treatment has its mean predicted by a
    fit that left its treatment out (the anchor's treatment-grouped folds) and is scored as an unseen
    compound's well would be; the difficulty model stays the one fitted on the validation wells. Without
    either, such wells use the ``"seen"`` set, widened by their difficulty.
Confidence
    ``exp(−d_w / d_ref)`` in (0, 1]: ``d_ref`` is the median normalised error of the training-mean
    prediction on the calibration wells, so a confidence of ``e⁻¹ ≈ 0.37`` means "expected to be as wrong as
    predicting the training mean", and 1 means "no error expected".
OOD threshold
    The conformal ``1 − α`` quantile of the OOD scores of the calibration wells of seen treatments: a new well
    of a treatment the model trained on is flagged with probability at most about ``α`` (default 5%).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

SEEN, UNSEEN = "seen", "unseen"
OUT_OF_FOLD = "unseen_out_of_fold"  # n_wells key: out-of-fold wells behind the unseen set
DEFAULT_LEVEL = 0.9
FALSE_FLAG_RATE = 0.05
_MAX_SCORES = 200_000  # calibration scores kept per set (an even subsample beyond): bounds the checkpoint
_EPS = 1e-6


def conformal_quantile(scores: np.ndarray, level: float) -> float:
    """The ``⌈(n + 1) · level⌉``-th smallest of ``n`` scores (the largest when that rank exceeds ``n``)."""
    s = np.sort(np.asarray(scores, dtype=np.float64))
    if s.size == 0:
        raise ValueError("no calibration scores")
    rank = min(s.size, math.ceil((s.size + 1) * level))
    return float(s[max(rank, 1) - 1])


@dataclass
class WellScores:
    """What the model knows about each of ``n`` wells from imaging alone (module docstring)."""

    ood: np.ndarray  # (n,) morphological novelty
    disagreement: np.ndarray  # (n,) network drift from the anchor (or model vs ridge), standardised latent units
    control_likeness: np.ndarray  # (n,) in [0, 1]: 0 for control wells (and without training control wells)

    def design(self) -> np.ndarray:
        """``(n, 3)`` columns ``log ood``, ``log dis``, ``ctrl`` of the difficulty model."""
        return np.c_[np.log(np.maximum(np.asarray(self.ood, np.float64), _EPS)),
                     np.log(np.maximum(np.asarray(self.disagreement, np.float64), _EPS)),
                     np.asarray(self.control_likeness, np.float64)]


@dataclass
class Calibration:
    """What the intervals, confidence and OOD threshold need; fitted by :meth:`fit`, saved with the model."""

    feature_scale: np.ndarray  # (G,) s_g
    coef: tuple[float, float, float, float]  # (a, b, c, e) of log d_w (module docstring)
    scores: dict[str, np.ndarray]  # set name -> sorted normalised calibration scores
    reference: float  # d_ref: median normalised error of the training-mean prediction
    train_treatments: list[str]  # treatments with training wells (decide a new well's calibration set)
    n_wells: dict[str, int] = field(default_factory=dict)
    ood_threshold: float = math.inf

    @classmethod
    def fit(cls, predicted: np.ndarray, real: np.ndarray, scores: WellScores, unseen: np.ndarray,
            training_mean: np.ndarray, train_treatments: list[str], false_flag_rate: float = FALSE_FLAG_RATE,
            novelty_slope: float | None = None,
            out_of_fold: tuple[np.ndarray, np.ndarray, WellScores] | None = None) -> "Calibration":
        """Fit on calibration wells.

        ``predicted``, ``real``: ``(n, G)`` well means; ``scores``: the wells' :class:`WellScores`; ``unseen``:
        ``(n,)`` bool, the well's treatment has no training well; ``training_mean``: ``(G,)`` the training wells'
        mean profile; ``novelty_slope``: ``b`` when measured elsewhere (:func:`novelty_slope`);
        ``out_of_fold``: ``(predicted, real, scores)`` of out-of-fold wells, the ``"unseen"`` set when
        no calibration well is unseen (module docstring).
        """
        predicted, real = np.asarray(predicted, np.float64), np.asarray(real, np.float64)
        unseen = np.asarray(unseen, dtype=bool)
        ood = np.asarray(scores.ood, dtype=np.float64)
        err = np.abs(real - predicted)
        seen_rows = ~unseen if (~unseen).any() else unseen
        scale = err[seen_rows].mean(axis=0)
        floor = max(0.1 * float(np.median(scale)), _EPS)
        # A calibration well's own error must not set the scale it is scored with (scores would be too small
        # and the intervals too narrow): each seen well is scored with the scale of the others.
        n_seen = int(seen_rows.sum())
        own = np.broadcast_to(scale, err.shape).copy()
        if n_seen > 1:
            own[seen_rows] = (scale * n_seen - err[seen_rows]) / (n_seen - 1)
        own = np.maximum(own, floor)
        scale = np.maximum(scale, floor)
        per_well = np.sqrt(((err / own) ** 2).mean(axis=1))
        coef = _difficulty_fit(scores.design(), np.log(np.maximum(per_well, _EPS)), novelty_slope)
        difficulty = _difficulty(coef, scores)
        normalised = err / own / difficulty[:, None]
        scores = {SEEN: normalised[seen_rows].ravel()}
        n_wells = {SEEN: int(seen_rows.sum()), UNSEEN: 0}
        if unseen.any() and (~unseen).any():
            scores[UNSEEN] = normalised[unseen].ravel()
            n_wells[UNSEEN] = int(unseen.sum())
        elif out_of_fold is not None and len(out_of_fold[0]) and (~unseen).any():
            oof_pred, oof_real, oof_scores = out_of_fold
            oof_err = np.abs(np.asarray(oof_real, np.float64) - np.asarray(oof_pred, np.float64))
            scores[UNSEEN] = (oof_err / scale / _difficulty(coef, oof_scores)[:, None]).ravel()
            n_wells[OUT_OF_FOLD] = len(oof_err)
        scores = {k: _subsample(np.sort(v)) for k, v in scores.items()}
        reference = float(np.median(np.sqrt((((real - training_mean) / scale) ** 2).mean(axis=1)))) or 1.0
        seen_ood = ood[~unseen] if (~unseen).any() else ood
        return cls(scale.astype(np.float32), coef, scores, reference, sorted(map(str, train_treatments)),
                   n_wells, conformal_quantile(seen_ood, 1 - false_flag_rate))

    # -- per well ------------------------------------------------------------------------------------
    def difficulty(self, scores: WellScores) -> np.ndarray:
        """``(n,)`` d_w of wells with these scores."""
        return _difficulty(self.coef, scores)

    def confidence(self, scores: WellScores) -> np.ndarray:
        """``(n,)`` confidence in (0, 1] (module docstring)."""
        return np.exp(-self.difficulty(scores) / self.reference).astype(np.float32)

    def set_for(self, treatments: np.ndarray | None, n: int) -> np.ndarray:
        """``(n,)`` calibration set of each well: ``"unseen"`` for a treatment without training wells when that
        set exists, else ``"seen"``."""
        if treatments is None or UNSEEN not in self.scores:
            return np.full(n, SEEN, dtype=object)
        known = set(self.train_treatments)
        return np.array([SEEN if str(t) in known else UNSEEN for t in treatments], dtype=object)

    def half_width(self, scores: WellScores, sets: np.ndarray, level: float = DEFAULT_LEVEL) -> np.ndarray:
        """``(n, G)`` half-widths of the level-``level`` intervals of wells with these scores and sets."""
        if not 0 < level < 1:
            raise ValueError(f"interval level must be between 0 and 1, got {level}")
        q = np.array([conformal_quantile(self.scores[s], level) for s in sets])
        return (q * self.difficulty(scores))[:, None] * self.feature_scale[None, :].astype(np.float64)

    # -- checkpoint ------------------------------------------------------------------------------------
    def state(self) -> tuple[dict[str, np.ndarray], dict]:
        tensors = {"calibration.feature_scale": self.feature_scale}
        tensors |= {f"calibration.scores.{k}": v.astype(np.float32) for k, v in self.scores.items()}
        meta = {"coef": list(self.coef), "reference": self.reference, "train_treatments": self.train_treatments,
                "n_wells": self.n_wells, "sets": sorted(self.scores), "ood_threshold": self.ood_threshold}
        return tensors, meta

    @classmethod
    def from_state(cls, tensors: dict[str, np.ndarray], meta: dict, width: int) -> "Calibration":
        scale = np.asarray(tensors["calibration.feature_scale"], dtype=np.float32)
        if scale.shape != (width,):
            raise ValueError(f"tensor calibration.feature_scale has shape {scale.shape}, expected ({width},)")
        scores = {k: np.asarray(tensors[f"calibration.scores.{k}"], dtype=np.float32) for k in meta["sets"]}
        coef = tuple(float(c) for c in meta["coef"])
        if len(coef) != 4:
            raise ValueError(f"calibration coef has {len(coef)} entries, expected 4")
        return cls(scale, coef, scores, float(meta["reference"]),
                   list(meta["train_treatments"]), dict(meta["n_wells"]), float(meta["ood_threshold"]))


def novelty_slope(ood: np.ndarray, errors: np.ndarray) -> float:
    """``b ≥ 0`` of ``log error ≈ a + b log ood`` over wells with finite values: how fast error grows with
    morphological novelty (0 with fewer than 5 such wells)."""
    ood, errors = np.asarray(ood, np.float64), np.asarray(errors, np.float64)
    ok = np.isfinite(ood) & np.isfinite(errors) & (ood > 0) & (errors > 0)
    x, y = np.log(ood[ok]), np.log(errors[ok])
    if ok.sum() < 5 or np.ptp(x) < 1e-9:
        return 0.0
    return max(0.0, float(np.cov(x, y, bias=True)[0, 1] / np.var(x)))


def _difficulty_fit(X: np.ndarray, y: np.ndarray, b: float | None = None) -> tuple[float, float, float, float]:
    """Least squares ``y ≈ a + X @ (b, c, e)`` with ``b, c, e ≥ 0``; ``b`` fixed when given. Slopes fitted
    here are 0 with fewer than 5 wells."""
    from scipy.optimize import nnls

    fixed = b is not None
    if fixed:
        y = y - b * X[:, 0]
    free = X[:, 1:] if fixed else X
    if len(y) < 5:
        return float(np.mean(y)), float(b or 0.0), 0.0, 0.0
    slopes = nnls(free - free.mean(axis=0), y - y.mean())[0]
    a = float(y.mean() - free.mean(axis=0) @ slopes)
    slopes = [float(b), *map(float, slopes)] if fixed else list(map(float, slopes))
    return a, *slopes


def _difficulty(coef: tuple[float, ...], scores: WellScores) -> np.ndarray:
    return np.exp(coef[0] + scores.design() @ np.asarray(coef[1:]))


def _subsample(sorted_scores: np.ndarray) -> np.ndarray:
    if sorted_scores.size <= _MAX_SCORES:
        return sorted_scores
    return sorted_scores[np.linspace(0, sorted_scores.size - 1, _MAX_SCORES).round().astype(int)]
