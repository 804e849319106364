"""Each metric on inputs with known answers: balanced accuracy, bootstrap, energy distance, localisation."""

from __future__ import annotations

import numpy as np
import pytest

from phenoseq.evaluate import bootstrap, fidelity
from phenoseq.evaluate.identification import WellPredictions
from phenoseq.evaluate.profiles import CellTable, paired, pooled, single_profiles


def test_balanced_accuracy_matches_sklearn():
    from sklearn.metrics import balanced_accuracy_score

    rng = np.random.default_rng(0)
    true = np.array([0, 0, 1, 2, 2, 2])
    counts = rng.integers(0, 6, size=(6, 3))
    y_true = np.repeat(true, counts.sum(axis=1))
    y_pred = np.concatenate([np.repeat(np.arange(3), c) for c in counts])
    pred = WellPredictions([f"w{i}" for i in range(6)], true, counts)
    assert pred.balanced_accuracy() == pytest.approx(balanced_accuracy_score(y_true, y_pred))
    assert pred.confusion().sum() == counts.sum()
    # A bootstrap draw is the same as repeating wells.
    weights = np.array([[2, 0, 1, 0, 3, 0]], dtype=float)
    keep = np.repeat(np.arange(6), weights[0].astype(int))
    again = WellPredictions([f"w{i}" for i in keep], true[keep], counts[keep])
    assert pred.balanced_accuracy(weights)[0] == pytest.approx(again.balanced_accuracy())


def test_bootstrap_draws_interval_and_gap():
    draws = bootstrap.well_draws(10, 500, seed=1)
    assert draws.shape == (500, 10) and np.all(draws.sum(axis=1) == 10)
    np.testing.assert_array_equal(draws, bootstrap.well_draws(10, 500, seed=1))
    assert bootstrap.interval(np.arange(101)) == pytest.approx([2.5, 97.5])
    assert bootstrap.interval(np.array([np.nan])) == [None, None]
    assert bootstrap.gap_recovered(0.2, 0.5, 0.8) == pytest.approx(0.5)
    assert bootstrap.gap_recovered(0.2, 0.8, 0.8) == pytest.approx(1.0)
    assert np.isnan(bootstrap.gap_recovered(0.5, 0.6, 0.4))


def test_energy_distance_is_zero_on_itself_and_grows_with_shift():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(150, 5))
    assert fidelity.energy_distance(a, a) == pytest.approx(0.0, abs=1e-9)
    shifts = [fidelity.energy_distance(a, a + s) for s in (0.0, 0.5, 1.0, 2.0)]
    assert shifts[0] == pytest.approx(0.0, abs=1e-9)
    assert all(x < y for x, y in zip(shifts, shifts[1:]))
    b = rng.normal(size=(150, 5))
    assert fidelity.energy_distance(a, b) < 0.1 < fidelity.energy_distance(a, b + 1.0)


def test_energy_ratio_oracle_and_shift():
    rng = np.random.default_rng(1)
    real = CellTable(rng.normal(size=(100, 4)), np.repeat(["t1", "t2"], 50))
    ref = CellTable(rng.normal(size=(100, 4)) + 0.3, np.repeat(["r1", "r2"], 50))
    same = fidelity.energy_ratios(real, real, ref, {"t1": "r1", "t2": "r2"}, max_cells=50, seed=0)
    assert all(v["ratio"] == pytest.approx(0.0, abs=1e-9) for v in same.values())
    far = CellTable(real.X + 3.0, real.wells)
    shifted = fidelity.energy_ratios(far, real, ref, {"t1": "r1", "t2": "r2"}, max_cells=50, seed=0)
    assert all(v["ratio"] > 5 for v in shifted.values())
    # Centred on the real mean, a shifted copy is the real cells themselves; a squeezed one keeps a wrong shape.
    assert all(v["centred_ratio"] == pytest.approx(0.0, abs=1e-5) for v in shifted.values())  # float32 tables
    squeezed = fidelity.energy_ratios(CellTable(0.3 * real.X, real.wells), real, ref, {"t1": "r1", "t2": "r2"},
                                      max_cells=50, seed=0)
    assert all(v["centred_ratio"] > 2 for v in squeezed.values())


def test_localisation_oracle_is_one_and_swap_is_zero():
    rng = np.random.default_rng(2)
    centres = {"A": 0.0, "B": 5.0, "C": -5.0}
    wells = np.repeat(["wA", "wB", "wC"], 30)
    X = rng.normal(size=(90, 3)) + np.repeat([centres["A"], centres["B"], centres["C"]], 30)[:, None]
    real = CellTable(X, wells)
    treatment_of = {"wA": "A", "wB": "B", "wC": "C"}
    assert fidelity.localisation(real, real, treatment_of) == 1.0
    swapped = CellTable(X, np.repeat(["wB", "wC", "wA"], 30))
    assert fidelity.localisation(swapped, real, treatment_of) == 0.0


def test_gene_correlation():
    rng = np.random.default_rng(3)
    real = rng.normal(size=(20, 6))
    np.testing.assert_allclose(fidelity.gene_correlation(2 * real + 1, real), 1.0)
    np.testing.assert_allclose(fidelity.gene_correlation(-real, real), -1.0)
    const = real.copy()
    const[:, 0] = 1.0
    assert np.isnan(fidelity.gene_correlation(const, real)[0])


def test_profiles():
    X = np.arange(40, dtype=float).reshape(20, 2)
    table = CellTable(X, np.repeat(["a", "b"], 10))
    single = single_profiles(table, max_per_well=4, seed=0, purpose="x")
    assert len(single.X) == 8 and set(single.wells) == {"a", "b"}
    # The matched-morphology control: each cell joined with the mean of cells of its own well only.
    rows = np.array([0, 3, 12, 19])
    joined = pooled(table, rows, context=3, seed=0, purpose="x")
    assert joined.X.shape == (4, 4)
    np.testing.assert_array_equal(joined.X[:, :2], X[rows])
    assert np.all(joined.X[:2, 2:] < 20) and np.all(joined.X[2:, 2:] >= 20)
    whole = pooled(table, rows, context=50, seed=0, purpose="x")  # larger than a well: all of its cells
    np.testing.assert_allclose(whole.X[0, 2:], X[:10].mean(axis=0))
    rna = CellTable(np.array([[100.0], [200.0]]), ["a", "b"])
    both = paired(table, rna, seed=0, purpose="x")
    assert both.X.shape == (20, 3)
    np.testing.assert_array_equal(both.X[both.wells == "b", 2], 200.0)
