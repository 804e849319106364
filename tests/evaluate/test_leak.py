"""No RNA of a test well may reach a generator or a classifier's training data."""

from __future__ import annotations

import numpy as np

from phenoseq.evaluate import evaluate


class _Recorder:
    """Wraps a generator and records the data it was given."""

    def __init__(self, inner):
        self.inner, self.rna_space, self.calls, self.name = inner, inner.rna_space, [], inner.name

    def generate(self, imaging_adata, cells_per_well, seed, progress=None):
        self.calls.append(imaging_adata.copy())
        return self.inner.generate(imaging_adata, cells_per_well, seed, progress)


def test_no_test_rna_reaches_generator_or_training(small_screen_data, space, fast_config):
    """Corrupt the RNA of every test well: nothing the generators or the training features depend on moves."""
    from phenoseq.generate.baselines import NearestWellBaseline, RidgeBaseline
    from phenoseq.io import PairedScreen

    imaging, rnaseq = small_screen_data

    def run(rna):
        screen = PairedScreen(imaging.copy(), rna)
        gens = {"ridge": _Recorder(RidgeBaseline(screen, space)), "nearest": _Recorder(NearestWellBaseline(screen, space))}
        return evaluate(screen, space, gens, config=fast_config), gens

    clean, gens = run(rnaseq.copy())
    corrupted = rnaseq.copy()
    test_rows = corrupted.obs["Replicate"].astype(str).isin(["4", "1", "2"]).to_numpy()
    X = corrupted.X.tolil()
    rng = np.random.default_rng(0)
    X[np.flatnonzero(test_rows)] = rng.poisson(3.0, size=(test_rows.sum(), corrupted.n_vars)).astype(np.float32)
    corrupted.X = X.tocsr()
    dirty, _ = run(corrupted)

    for g in gens.values():  # generators saw imaging cells only: the wells', then the context sets'
        wells, sets = g.calls
        for seen in (wells, sets):
            assert seen.var_names.equals(imaging.var_names) and not set(seen.obs.columns) - set(imaging.obs.columns)
        assert wells.n_obs <= imaging.n_obs
    for name in ("ridge", "nearest"):
        a, b = clean.synthetic[name], dirty.synthetic[name]
        np.testing.assert_array_equal(a.obsm["X_phenoseq"], b.obsm["X_phenoseq"])
        np.testing.assert_array_equal(a.X, b.X)
    acc_a, acc_b = clean.metrics["identification"]["accuracy"], dirty.metrics["identification"]["accuracy"]
    for method in ("ridge", "nearest"):
        for modality in ("synthetic_rna", "imaging+synthetic", "imaging+pooled+synthetic"):
            assert acc_a[method][modality] == acc_b[method][modality]
    for modality in ("imaging", "imaging+pooled"):
        assert acc_a["reference"][modality] == acc_b["reference"][modality]
    # The corruption did take effect where test RNA is legitimately used: scoring real test cells.
    assert acc_a["reference"]["real_rna"] != acc_b["reference"]["real_rna"]
