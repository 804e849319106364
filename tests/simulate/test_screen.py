"""The simulator: layout, determinism, counts, and the morphologically silent compounds."""

import numpy as np

from phenoseq.io import PairedScreen
from phenoseq.simulate import SimulationConfig, simulate_screen, treatment_table


def test_layout(small_screen_data, small_config):
    imaging, rnaseq = small_screen_data
    assert imaging.n_vars == small_config.n_features and rnaseq.n_vars == small_config.n_genes
    assert imaging.obs["Treatment"].nunique() == 28
    assert set(imaging.obs["Replicate"]) == {"1", "2", "3", "4", "5"}
    assert set(imaging.obs.loc[imaging.obs["Replicate"].isin(["1", "2"]), "batch"]) == {"round2"}
    assert set(imaging.obs.loc[imaging.obs["Treatment"] == "DMSO", "Group"]) == {"control"}
    counts = rnaseq.X.data
    assert (counts >= 0).all() and (counts == np.round(counts)).all()
    assert imaging.X.dtype == np.float32 and np.isfinite(imaging.X).all()
    PairedScreen(imaging.copy(), rnaseq.copy())  # valid as a screen


def test_deterministic(small_config):
    a = simulate_screen(small_config)
    b = simulate_screen(small_config)
    assert np.array_equal(a[0].X, b[0].X)
    assert (a[1].X != b[1].X).nnz == 0
    c = simulate_screen(SimulationConfig(**{**small_config.to_dict(), "seed": 2}))
    assert not np.array_equal(a[0].X, c[0].X)


def test_some_compounds_are_morphologically_silent():
    table = treatment_table(SimulationConfig())
    assert len(table) == 28
    assert 0 < (~table["morphology_visible"]).sum() < 27


def test_library_size_varies(small_screen_data):
    _, rnaseq = small_screen_data
    totals = np.asarray(rnaseq.X.sum(axis=1)).ravel()
    assert totals.std() / totals.mean() > 0.2
