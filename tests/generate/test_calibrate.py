"""Calibration with known answers: coverage on exchangeable wells, difficulty that tracks error, the OOD rate."""

import numpy as np
import pytest
from scipy.stats import spearmanr

from phenoseq.generate.calibrate import Calibration, WellScores, conformal_quantile
from phenoseq.generate.well_ridge import WellRidge


def _wells(rng, n, genes=60, unseen=False):
    """Wells whose error on gene g is scale_g · d_w · noise, d_w growing with disagreement and novelty, and
    doubled for treated wells whose morphology looks like a control's (a third of them)."""
    dis = rng.lognormal(0.0, 0.5, n)
    ood = rng.lognormal(1.0 if unseen else 0.0, 0.3, n)
    quiet = rng.random(n) < 1 / 3
    like = np.where(quiet, rng.uniform(0.8, 1.0, n), rng.uniform(0.0, 0.2, n))
    d = dis**0.8 * ood**0.5 * np.where(quiet, 2.0, 1.0)
    scale = np.linspace(0.2, 2.0, genes)
    predicted = rng.normal(size=(n, genes))
    real = predicted + rng.standard_t(5, size=(n, genes)) * scale * d[:, None]
    return predicted, real, WellScores(ood, dis, like), d


def _coverage(cal, predicted, real, scores, sets, level=0.9):
    half = cal.half_width(scores, np.array(sets, dtype=object), level)
    return float((np.abs(real - predicted) <= half).mean()), half


def test_conformal_quantile_rank():
    scores = np.arange(1, 20, dtype=float)  # n = 19: rank ceil(20 * 0.9) = 18
    assert conformal_quantile(scores, 0.9) == 18.0
    assert conformal_quantile(scores[:5], 0.9) == 5.0  # rank beyond n: the largest
    with pytest.raises(ValueError):
        conformal_quantile(np.array([]), 0.9)


def test_coverage_on_exchangeable_wells_is_nominal():
    rng = np.random.default_rng(0)
    p, r, sc, _ = _wells(rng, 40)
    cal = Calibration.fit(p, r, sc, np.zeros(40, bool), np.zeros(p.shape[1]), ["a"])
    covs = []
    for _ in range(20):  # fresh exchangeable wells
        p2, r2, sc2, _ = _wells(rng, 40)
        covs.append(_coverage(cal, p2, r2, sc2, ["seen"] * 40)[0])
    # 20 × 40 wells × 60 genes: the mean coverage is known to about ±0.01 (wells share their difficulty).
    assert abs(np.mean(covs) - 0.9) < 0.025
    for level in (0.5, 0.8):
        p2, r2, sc2, _ = _wells(rng, 400)
        assert abs(_coverage(cal, p2, r2, sc2, ["seen"] * 400, level)[0] - level) < 0.04


def test_difficulty_tracks_error_and_narrows_easy_wells():
    rng = np.random.default_rng(1)
    p, r, sc, _ = _wells(rng, 60)
    cal = Calibration.fit(p, r, sc, np.zeros(60, bool), np.zeros(p.shape[1]), ["a"])
    assert cal.coef[2] > 0.3 and cal.coef[3] > 0.3  # disagreement and control-likeness carry their signal
    p2, r2, sc2, d2 = _wells(rng, 200)
    err = np.sqrt(((r2 - p2) ** 2).mean(axis=1))
    conf = cal.confidence(sc2)
    assert ((conf > 0) & (conf <= 1)).all()
    assert spearmanr(conf, -err)[0] > 0.5
    _, half = _coverage(cal, p2, r2, sc2, ["seen"] * 200)
    easy, hard = d2 < np.quantile(d2, 0.25), d2 > np.quantile(d2, 0.75)
    assert half[easy].mean() < 0.5 * half[hard].mean()


def test_unseen_wells_use_their_own_calibration_set():
    rng = np.random.default_rng(2)
    p, r, sc, _ = _wells(rng, 30)
    pu, ru, scu, _ = _wells(rng, 30, unseen=True)
    ru = pu + 2.0 * (ru - pu)  # unseen compounds are harder than their scores say
    both = WellScores(*(np.r_[getattr(sc, f), getattr(scu, f)] for f in ("ood", "disagreement", "control_likeness")))
    cal = Calibration.fit(np.r_[p, pu], np.r_[r, ru], both, np.r_[np.zeros(30, bool), np.ones(30, bool)],
                          np.zeros(p.shape[1]), ["seen-drug"])
    assert cal.n_wells == {"seen": 30, "unseen": 30}
    assert list(cal.set_for(np.array(["seen-drug", "new-drug"]), 2)) == ["seen", "unseen"]
    pu2, ru2, scu2, _ = _wells(rng, 100, unseen=True)
    ru2 = pu2 + 2.0 * (ru2 - pu2)
    assert _coverage(cal, pu2, ru2, scu2, ["unseen"] * 100)[0] > 0.86
    assert _coverage(cal, pu2, ru2, scu2, ["seen"] * 100)[0] < 0.85  # what one set for all would give


def test_ood_threshold_keeps_the_false_flag_rate():
    rng = np.random.default_rng(3)
    p, r, sc, _ = _wells(rng, 200)
    cal = Calibration.fit(p, r, sc, np.zeros(200, bool), np.zeros(p.shape[1]), ["a"])
    fresh = rng.lognormal(0.0, 0.3, 20000)
    assert abs((fresh > cal.ood_threshold).mean() - 0.05) < 0.03


def test_state_round_trip():
    rng = np.random.default_rng(4)
    p, r, sc, _ = _wells(rng, 30)
    cal = Calibration.fit(p, r, sc, np.zeros(30, bool), np.zeros(p.shape[1]), ["a", "b"])
    tensors, meta = cal.state()
    back = Calibration.from_state(tensors, meta, p.shape[1])
    sets = np.array(["seen"] * 30, dtype=object)
    assert np.allclose(back.half_width(sc, sets), cal.half_width(sc, sets), rtol=1e-5)
    with pytest.raises(ValueError, match="shape"):
        Calibration.from_state(tensors, meta, p.shape[1] + 1)


def test_well_ridge_recovers_a_linear_map_and_round_trips():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(80, 12))
    B = rng.normal(size=(12, 4))
    Y = X @ B + 0.05 * rng.normal(size=(80, 4)) + 3.0
    ridge = WellRidge.fit(X, Y)
    X2 = rng.normal(size=(20, 12))
    assert np.abs(ridge.predict(X2) - (X2 @ B + 3.0)).max() < 0.2
    tensors, meta = ridge.state()
    assert np.allclose(WellRidge.from_state(tensors, meta, 12, 4).predict(X2), ridge.predict(X2))
    noise = WellRidge.fit(X, rng.normal(size=(80, 4)))
    assert noise.alpha > ridge.alpha  # pure noise: cross-validation shrinks harder


def test_well_ridge_leaves_out_whole_treatments_to_choose_its_penalty():
    """Replicate wells of a treatment are near-copies: leaving one well out keeps its copies in the fit and picks
    a penalty that memorises treatments; leaving the treatment out picks one that suits treatments never seen."""
    rng = np.random.default_rng(3)

    def screen(n_treatments: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        Xt = rng.normal(size=(n_treatments, 40))
        Yt = Xt[:, :2] @ np.ones((2, 3)) + 2.0 * rng.normal(size=(n_treatments, 3))  # mostly not in the morphology
        groups = np.repeat(np.arange(n_treatments), 4)
        return Xt[groups] + 0.01 * rng.normal(size=(len(groups), 40)), Yt[groups], groups

    X, Y, groups = screen(25)
    per_well, per_treatment = WellRidge.fit(X, Y), WellRidge.fit(X, Y, groups=groups)
    assert per_treatment.alpha > per_well.alpha
    Xn, Yn, _ = screen(200)
    assert ((per_treatment.predict(Xn) - Yn) ** 2).mean() < ((per_well.predict(Xn) - Yn) ** 2).mean()
    # One well per treatment: both ways are leave-one-well-out.
    single = X[::4], Y[::4]
    assert WellRidge.fit(*single, groups=groups[::4]).alpha == WellRidge.fit(*single).alpha


def test_out_of_fold_wells_calibrate_unseen_wells_without_unseen_validation_wells():
    rng = np.random.default_rng(5)
    p, r, sc, _ = _wells(rng, 30)
    po, ro, sco, _ = _wells(rng, 60, unseen=True)
    ro = po + 2.0 * (ro - po)  # out-of-fold wells are as hard as unseen compounds' wells
    seen_only = Calibration.fit(p, r, sc, np.zeros(30, bool), np.zeros(p.shape[1]), ["seen-drug"])
    cal = Calibration.fit(p, r, sc, np.zeros(30, bool), np.zeros(p.shape[1]), ["seen-drug"], out_of_fold=(po, ro, sco))
    assert cal.n_wells == {"seen": 30, "unseen": 0, "unseen_out_of_fold": 60}
    assert cal.coef == seen_only.coef  # the difficulty model is the validation wells' alone
    assert list(cal.set_for(np.array(["seen-drug", "new-drug"]), 2)) == ["seen", "unseen"]
    pu, ru, scu, _ = _wells(rng, 100, unseen=True)
    ru = pu + 2.0 * (ru - pu)
    assert _coverage(seen_only, pu, ru, scu, ["seen"] * 100)[0] < 0.85  # the seen set under-covers them
    assert abs(_coverage(cal, pu, ru, scu, ["unseen"] * 100)[0] - 0.9) < 0.03
