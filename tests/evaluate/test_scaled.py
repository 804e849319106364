"""Scaled scores: 0 at the training mean, 1 at a real replicate, either direction of 'better'."""

import pytest

from phenoseq.evaluate.scaled import scaled, scaled_scores


def test_scaled_known_values():
    assert scaled(0.6, 0.0, 0.8) == pytest.approx(0.75)
    assert scaled(0.0, 0.0, 0.8) == 0.0 and scaled(0.8, 0.0, 0.8) == 1.0
    assert scaled(-0.2, 0.0, 0.8) == pytest.approx(-0.25)
    # Smaller is better (rank, energy ratio): the same formula.
    assert scaled(3.0, 5.0, 1.0, larger_is_better=False) == pytest.approx(0.5)
    assert scaled(6.0, 5.0, 1.0, larger_is_better=False) == pytest.approx(-0.25)


def test_scaled_is_undefined_without_a_ceiling_that_beats_the_baseline():
    assert scaled(0.5, None, 0.8) is None and scaled(0.5, 0.1, None) is None and scaled(None, 0.1, 0.8) is None
    assert scaled(0.5, 0.8, 0.8) is None and scaled(0.5, 0.8, 0.2) is None
    assert scaled(2.0, 1.0, 3.0, larger_is_better=False) is None


def test_scaled_scores_layout():
    wells = {
        "m": {"test": {"pearson_genes": {"median": 0.5}, "rank": {"mean": 3.0}, "energy_ratio": {"median": 2.0}}},
        "training_mean": {"test": {"pearson_genes": {"median": 0.0}, "rank": {"mean": 5.0},
                                   "energy_ratio": {"median": 3.0}}},
        "replicate": {"test": {"pearson_genes": {"median": 1.0}, "rank": {"mean": 1.0}}},
    }
    out = scaled_scores(wells, ["m"])
    assert out["m"]["test"]["pearson_genes"] == {"value": 0.5, "baseline": 0.0, "ceiling": 1.0, "scaled": 0.5}
    assert out["m"]["test"]["rank"]["scaled"] == pytest.approx(0.5)
    assert out["m"]["test"]["energy_ratio"]["ceiling"] == 1.0 and out["m"]["test"]["energy_ratio"]["scaled"] == 0.5
