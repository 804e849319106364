"""The well-mean anchor: reduced-rank ridge chosen by grouped cross-validation, and the kernel memory."""

import numpy as np
import pytest

from phenoseq.model.anchor import WellAnchor, _blend, _one_standard_error


def _wells(n: int, F: int, d: int, rank: int, noise: float, seed: int = 0):
    """Wells whose mean latent is a rank-``rank`` linear map of mean morphology plus independent noise."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, F))
    B = rng.normal(size=(F, rank)) @ rng.normal(size=(rank, d)) / np.sqrt(F)
    return X, B, rng


def _ridge_error(X, Y, Xt, Yt, alpha):
    x0, y0 = X.mean(0), Y.mean(0)
    coef = np.linalg.solve((X - x0).T @ (X - x0) + alpha * np.eye(X.shape[1]), (X - x0).T @ (Y - y0))
    return (((Xt - x0) @ coef + y0 - Yt) ** 2).mean()


def test_low_rank_targets_get_a_low_rank_and_beat_full_rank_ridge():
    X, B, rng = _wells(60, 20, 40, rank=1, noise=1.0)
    Y = X @ B + rng.normal(size=(60, 40))
    Xt = rng.normal(size=(400, 20))
    Yt = Xt @ B  # noise-free truth
    anchor = WellAnchor.fit(X, Y, np.arange(60))
    assert anchor.rank <= 3
    err = ((anchor.predict(Xt) - Yt) ** 2).mean()
    assert err < 0.8 * _ridge_error(X, Y, Xt, Yt, anchor.alpha)


def test_full_rank_signal_keeps_the_full_rank():
    X, B, rng = _wells(80, 10, 8, rank=8, noise=0.05)
    Y = X @ B + 0.05 * rng.normal(size=(80, 8))
    assert WellAnchor.fit(X, Y, np.arange(80)).rank == 8


def test_folds_never_split_a_treatment():
    # Two wells per treatment with a treatment-specific offset no morphology explains: a fold that left one
    # twin in training would reward memorising it; grouped folds keep the penalty honest (strong shrinkage).
    rng = np.random.default_rng(0)
    X = np.repeat(rng.normal(size=(30, 5)), 2, axis=0) + 0.01 * rng.normal(size=(60, 5))
    Y = np.repeat(rng.normal(size=(30, 4)), 2, axis=0)  # unrelated to X
    anchor = WellAnchor.fit(X, Y, np.repeat(np.arange(30), 2))
    Xt = rng.normal(size=(200, 5))
    assert np.abs(anchor.predict(Xt) - Y.mean(0)).mean() < 0.25  # close to the mean, not a wild fit


def test_memory_recalls_replicates_and_leaves_novel_wells_to_the_regression():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(30, 6))
    own = rng.normal(size=(30, 3))  # each well's RNA has a part its morphology does not explain linearly
    Y = X[:, :3] + own
    X_val = X + 0.05 * rng.normal(size=X.shape)  # replicate wells of the same treatments
    Y_val = Y + 0.05 * rng.normal(size=Y.shape)
    plain = WellAnchor.fit(X, Y, np.arange(30))
    anchor = WellAnchor.fit(X, Y, np.arange(30), X_val, Y_val)
    assert plain.bandwidth == 0 and anchor.bandwidth > 0
    X_rep = X + 0.05 * rng.normal(size=X.shape)  # fresh replicates
    assert ((anchor.predict(X_rep) - Y) ** 2).mean() < 0.5 * ((plain.predict(X_rep) - Y) ** 2).mean()
    novel = 4.0 * rng.normal(size=(50, 6))  # far from every training well
    np.testing.assert_allclose(anchor.predict(novel), anchor.base(novel), atol=1e-3)


def test_memory_stays_off_when_it_does_not_help():
    X, B, rng = _wells(40, 6, 3, rank=3, noise=0.0)
    Y = X @ B  # exactly linear: no residual worth recalling
    X_val = rng.normal(size=(20, 6))
    anchor = WellAnchor.fit(X, Y + 0.3 * rng.normal(size=Y.shape), np.arange(40), X_val, X_val @ B)
    assert anchor.bandwidth == 0 and anchor.cells is None


def test_state_round_trip_and_shape_check():
    rng = np.random.default_rng(2)
    X, Y = rng.normal(size=(20, 5)), rng.normal(size=(20, 3))
    anchor = WellAnchor.fit(X, Y, np.arange(20), X + 0.01, Y)
    tensors, meta = anchor.state()
    back = WellAnchor.from_state(tensors, meta, 5, 3)
    np.testing.assert_array_equal(back.predict(X), anchor.predict(X))
    with pytest.raises(ValueError, match="anchor tensors"):
        WellAnchor.from_state(tensors, meta, 6, 3)


def test_recall_draws_twin_cells_in_proportion_to_the_memory_weight():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(20, 6))
    Y = X[:, :3] + rng.normal(size=(20, 3))
    cell_well = np.repeat(np.arange(20), 50)
    shapes = np.where(np.arange(20)[:, None] % 2 == 0, 3.0, 0.3)  # wide wells and narrow wells
    cells = Y[cell_well] + shapes[cell_well] * rng.normal(size=(1000, 3))
    anchor = WellAnchor.fit(X, Y, np.arange(20), X + 0.02 * rng.normal(size=X.shape), Y, cells, cell_well)
    assert anchor.bandwidth > 0 and len(anchor.cells) == 1000
    weight = anchor.memory_weights(X[:1])[0]
    chosen, recalled = anchor.recall(X[0], 2000, np.random.default_rng(0))
    assert abs(chosen.mean() - weight.sum()) < 0.05 and len(recalled) == chosen.sum()
    assert 2.0 < recalled.std() < 4.0  # the shape of well 0 (wide), not of its narrow neighbours
    chosen, _ = anchor.recall(10.0 * rng.normal(size=6), 500, np.random.default_rng(0))
    assert not chosen.any()  # a novel well recalls nothing
    tensors, meta = anchor.state()
    back = WellAnchor.from_state(tensors, meta, 6, 3)
    np.testing.assert_array_equal(back.recall(X[0], 50, np.random.default_rng(1))[1],
                                  anchor.recall(X[0], 50, np.random.default_rng(1))[1])
    tensors["anchor.cell_well"] = tensors["anchor.cell_well"][::-1].copy()
    with pytest.raises(ValueError, match="cell tensors"):
        WellAnchor.from_state(tensors, meta, 6, 3)


def test_out_of_fold_predictions_are_an_unseen_treatments_errors():
    # 80 wells, 20 features: in sample the regression fits part of the noise; refitted without each fold it
    # errs on a held-out treatment's wells as it does on a new compound's.
    rng = np.random.default_rng(3)
    X = rng.normal(size=(80, 20))
    B = rng.normal(size=(20, 5)) / np.sqrt(20) * 2
    groups = np.repeat(np.arange(40), 2)
    Y = X @ B + np.repeat(rng.normal(size=(40, 5)), 2, axis=0)  # a treatment offset shared by its two wells
    anchor = WellAnchor.fit(X, Y, groups)
    oof = anchor.out_of_fold(groups)
    assert oof.shape == Y.shape
    Xt = rng.normal(size=(4000, 20))  # wells of new compounds
    new = ((anchor.predict(Xt) - (Xt @ B + rng.normal(size=(4000, 5)))) ** 2).mean()
    out_of_fold, in_sample = ((oof - Y) ** 2).mean() / new, ((anchor.base(X) - Y) ** 2).mean() / new
    assert in_sample < 0.7 and 0.8 < out_of_fold < 1.3


def test_out_of_fold_predicts_other_wells_of_a_treatment_from_the_fit_without_it():
    rng = np.random.default_rng(3)
    groups = np.repeat([f"t{i}" for i in range(12)], 3)
    X = rng.normal(size=(36, 8))
    Y = X @ rng.normal(size=(8, 5)) + 0.3 * rng.normal(size=(36, 5))
    anchor = WellAnchor.fit(X, Y, groups)
    oof = anchor.out_of_fold(groups)
    # A copy of a training well, given as a new well of its treatment, gets that well's out-of-fold prediction.
    rows = np.array([0, 7, 20, 35])
    both = anchor.out_of_fold(groups, X[rows], groups[rows])
    assert both.shape == (40, 5) and np.allclose(both[:36], oof) and np.allclose(both[36:], oof[rows])
    with pytest.raises(ValueError, match="training treatment"):
        anchor.out_of_fold(groups, X[:1], np.array(["never-trained"]))


def test_blend_lowers_the_error_only_where_it_keeps_the_direction_of_the_change():
    rng = np.random.default_rng(3)
    Y = rng.normal(size=(60, 20))
    origin = np.zeros_like(Y)
    pred = 0.2 * (Y + rng.normal(size=Y.shape))  # shrunk, and as noisy as a weak regression
    # A neighbour of the right sign but four times as much noise as signal: a little of it lowers the squared
    # error of the shrunk prediction, yet turns its direction away from the real change.
    noisy = 0.5 * Y + 2 * rng.normal(size=Y.shape)
    assert ((0.9 * pred + 0.1 * noisy - Y) ** 2).sum() < ((pred - Y) ** 2).sum()
    assert _blend(pred, noisy, Y, origin) == 0.0
    twin = Y + 0.1 * rng.normal(size=Y.shape)  # a neighbour that shares the well's RNA
    assert _blend(pred, twin, Y, origin) == 0.5


def test_one_standard_error_keeps_the_smaller_rank_unless_the_larger_is_clearly_better():
    rng = np.random.default_rng(4)
    small = 1.0 + rng.normal(scale=0.3, size=40)  # per-treatment errors of rank 1 (one penalty)
    noise = rng.normal(scale=0.3, size=40)
    slightly = np.stack([small, small - 0.01 + noise])[None]  # (1 penalty, 2 ranks, 40 treatments)
    assert slightly[0, 1].sum() < slightly[0, 0].sum() and _one_standard_error(slightly) == (0, 0)
    clearly = np.stack([small, small - 0.5 + 0.1 * noise])[None]
    assert _one_standard_error(clearly) == (0, 1)
    # Within the kept rank, the penalty with the smaller error.
    two_penalties = np.stack([np.stack([small + 0.2, small + 1.0]), np.stack([small, small + 1.0])])
    assert _one_standard_error(two_penalties) == (1, 0)
