"""Well-level scoring: correlations of changes, ranks within groups, MoA retrieval, merging folds."""

import numpy as np
import pytest

from phenoseq.evaluate.wells import Origins, WellProfiles, merge, ranks, row_correlation, score_wells


def _profiles(latent, wells):
    return WellProfiles(list(wells), np.asarray(latent, dtype=float), None)


def test_row_correlation_and_ties():
    a = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    b = np.array([[2.0, 4.0, 6.0], [3.0, 2.0, 1.0]])
    c = row_correlation(a, b)
    assert c[0, 0] == pytest.approx(1.0) and c[0, 1] == pytest.approx(-1.0)
    assert np.all(c[1] == 0.0)  # a constant row has no direction
    assert ranks(np.array([[0.5, 0.5, 0.1], [0.2, 0.9, 0.1], [0.3, 0.3, 0.3]])).tolist() == [1.5, 1.0, 2.0]


def test_score_wells_known_answers():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(6, 10))
    origin = Origins(latent=np.zeros(10), genes=None)
    wells = [f"w{i}" for i in range(6)]
    groups = {w: ("a" if i < 3 else "b") for i, w in enumerate(wells)}
    perfect = score_wells(_profiles(real * 2, wells), _profiles(real, wells), origin, groups)
    assert perfect["pearson_latent"]["median"] == pytest.approx(1.0)
    assert perfect["rank"]["mean"] == 1.0 and perfect["rank"]["chance_mean"] == 2.0
    assert "pearson_genes" not in perfect and "pearson_latent_control" not in perfect
    mean = score_wells(_profiles(np.zeros((6, 10)), wells), _profiles(real, wells), origin, groups)
    assert mean["pearson_latent"]["median"] == 0.0 and mean["rank"]["mean"] == 2.0  # all tie: average rank


def test_merge_recomputes_summaries_over_folds():
    rng = np.random.default_rng(1)
    origin = Origins(latent=np.zeros(5), genes=None)
    parts = []
    for fold in range(2):
        wells = [f"f{fold}w{i}" for i in range(3)]
        real = rng.normal(size=(3, 5))
        parts.append(score_wells(_profiles(real, wells), _profiles(real, wells), origin, {w: "g" for w in wells}))
    merged = merge(parts)
    assert merged["pearson_latent"]["n"] == 6 and merged["rank"]["n"] == 6
    assert merged["rank"]["chance_mean"] == 2.0 and merged["rank"]["top1"] == 1.0
