"""The benchmark end to end on the small screen: known answers, structure, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from phenoseq.evaluate import BenchmarkConfig, evaluate_synthetic
from phenoseq.evaluate.benchmark import PROFILES, REFERENCE_MODALITIES, SYNTHETIC_MODALITIES, confusion_key


@pytest.fixture(scope="module")
def known(screen, space, oracle, wrong, fast_config):
    return evaluate_synthetic(screen, {"oracle": oracle, "wrong": wrong}, space, fast_config)


def test_oracle_recovers_the_gap_and_wrong_treatment_does_not(known):
    gap = known.metrics["gap_recovered"]
    for split in ("test", "test_he"):
        single = gap["oracle"][split]["single"]
        assert single["value"] == pytest.approx(1.0, abs=0.25)
        lo, hi = single["ci"]
        assert lo <= single["value"] <= hi
        assert gap["wrong"][split]["single"]["value"] < 0.2
        assert gap["wrong"][split]["multi"]["value"] < 0.2


def test_oracle_synthetic_rna_matches_real_rna(known):
    acc = known.metrics["accuracy"]
    for split in ("test", "test_he"):
        real = acc["reference"]["real_rna"][split]["single"]["balanced_accuracy"]
        # The oracle's synthetic cells are the real cells: same classifier, same test cells up to subsampling.
        assert acc["oracle"]["real_to_synthetic"][split]["single"]["balanced_accuracy"] == pytest.approx(real, abs=0.05)
        assert acc["wrong"]["real_to_synthetic"][split]["single"]["balanced_accuracy"] < 0.5 * real


def test_fidelity_known_answers(known):
    fid = known.metrics["fidelity"]
    for split in ("test", "test_he"):
        assert fid["oracle"][split]["localisation"] == 1.0
        # Not exactly 0: the two sides are different random subsets of the same cells.
        assert fid["oracle"][split]["energy_ratio_median"] < 0.2
        assert fid["wrong"][split]["localisation"] < 0.2
        assert fid["wrong"][split]["energy_ratio_median"] > 1.0
        assert fid["oracle"][split]["gene_pearson_median"] > 0.8 > fid["wrong"][split]["gene_pearson_median"]


def test_metrics_structure_is_complete(known):
    m = known.metrics
    assert m["methods"] == ["oracle", "wrong"]
    assert set(m["splits"]) == {"test", "test_he"} and m["splits"]["test"]["label"] == "WE"
    for method, modalities in [("reference", REFERENCE_MODALITIES)] + [(x, SYNTHETIC_MODALITIES) for x in m["methods"]]:
        for modality in modalities:
            for split in m["splits"]:
                for profile in PROFILES:
                    entry = m["accuracy"][method][modality][split][profile]
                    assert 0 <= entry["ci"][0] <= entry["balanced_accuracy"] <= entry["ci"][1] <= 1
                    assert entry["n_wells"] == m["splits"][split]["n_wells"]
                    assert known.arrays[confusion_key(method, modality, split, profile)].shape == (28, 28)
    assert known.arrays["embedding_xy"].shape[1] == 2
    import json

    json.dumps(m, allow_nan=False)


def test_deterministic(screen, space, oracle):
    config = BenchmarkConfig(n_boot=50, max_cells_per_well=10, sets_per_well=3, cells_per_set=5, fidelity_cells=10,
                             embedding_cells=5, test_splits=("test",), seed=3)
    a = evaluate_synthetic(screen, {"oracle": oracle}, space, config)
    b = evaluate_synthetic(screen, {"oracle": oracle}, space, config)
    assert a.metrics == b.metrics
    assert a.arrays.keys() == b.arrays.keys() and all(np.array_equal(a.arrays[k], b.arrays[k]) for k in a.arrays)


def test_embedding_space_models_are_scored_without_gene_figures(small_screen_data):
    """A model trained in a provided embedding (X empty) gets identification and energy figures; the
    per-gene correlation, which needs genes, is reported as absent rather than failing."""
    from phenoseq import PhenoSeq
    from phenoseq.evaluate.benchmark import BenchmarkConfig, evaluate_generators
    from phenoseq.io import PairedScreen
    from phenoseq.rna import log_normalise

    imaging, rnaseq = small_screen_data
    rnaseq = rnaseq.copy()
    rng = np.random.default_rng(0)
    rnaseq.obsm["X_embedding"] = (log_normalise(rnaseq.X) @ rng.normal(size=(rnaseq.n_vars, 8))).astype(np.float32)
    screen = PairedScreen(imaging.copy(), rnaseq)
    model = PhenoSeq(screen, preset="tiny", rna_embedding="X_embedding", seed=0)
    model.train(max_epochs=1)
    result = evaluate_generators(screen, {"emb": model}, cells_per_well=5,
                                 config=BenchmarkConfig(n_boot=20, sets_per_well=2, max_cells_per_well=10))
    fid = result.metrics["fidelity"]["emb"]["test"]
    assert fid["gene_pearson_median"] is None and fid["n_genes"] == 0
    assert fid["energy_ratio_median"] is not None
    assert result.metrics["accuracy"]["emb"]["imaging+synthetic"]["test"]["single"]["balanced_accuracy"] >= 0
