"""The evaluation end to end on the small screen: known answers, structure, determinism."""

from __future__ import annotations

import json

import numpy as np
import pytest

from phenoseq.evaluate import BenchmarkConfig, evaluate
from phenoseq.evaluate.benchmark import MODALITIES, confusion_key

from .conftest import RealCells


def _replicate_source(screen):
    from phenoseq.evaluate.wells import replicate_wells

    return replicate_wells(screen, screen.wells.index.tolist())


@pytest.fixture(scope="module")
def known(screen, space, fast_config):
    """Oracle (the well's own real cells), a real replicate, the baselines, and shuffled nearest-well lookup."""
    from phenoseq.generate.baselines import ShuffledImaging, standard_baselines

    oracle = RealCells(screen, space, "oracle")
    rep = _replicate_source(screen)
    generators = {"oracle": oracle, "replicate_cells": RealCells(screen, space, "replicate_cells", rep.get)}
    generators.update(standard_baselines(screen, space))
    generators["shuffled_nearest"] = ShuffledImaging(generators["nearest_well"], "shuffled_nearest", screen.keys.sample)
    return evaluate(screen, space, generators, config=fast_config, moa_key="MoA")


def test_oracle_recovers_the_gap_against_both_floors(known):
    gap = known.metrics["identification"]["gap"]
    for split in ("test", "test_he"):
        for kind in ("matched", "vs_pooled", "vs_imaging"):
            entry = gap["oracle"][split][kind]
            assert entry["value"] == pytest.approx(1.0, abs=0.35), (split, kind)
            assert entry["ci"][0] <= entry["value"] <= entry["ci"][1]
        # The matched-context headline carries a real gain to recover on this screen.
        assert gap["oracle"][split]["matched"]["ceiling_added"] > 0.1


def test_scaled_scores_known_answers(known):
    scaled = known.metrics["scaled"]
    for split in ("test", "test_he"):
        # A real replicate's cells pushed through the generator pipeline score s ≈ 1 by construction ...
        for metric in ("pearson_genes", "pearson_latent", "rank"):
            assert scaled["replicate_cells"][split][metric]["scaled"] == pytest.approx(1.0, abs=0.1), metric
        # ... the well's own cells at least as well as a replicate ...
        for metric in ("pearson_genes", "rank", "energy_ratio"):
            assert scaled["oracle"][split][metric]["scaled"] > 0.9, metric
        # ... a generator fed other wells' imaging is no better than the mean, while ridge learns.
        for metric in ("pearson_genes", "rank"):
            assert scaled["shuffled_nearest"][split][metric]["scaled"] < 0.25, metric
            assert scaled["shuffled_ridge"][split][metric]["scaled"] < 0.25, metric
            assert scaled["ridge"][split][metric]["scaled"] > 0.5, metric
        assert scaled["training_mean"][split]["pearson_genes"]["scaled"] == 0.0


def test_training_mean_baseline_carries_no_well_information(known):
    wells = known.metrics["wells"]["training_mean"]
    for split in ("test", "test_he"):
        # Every well gets the training mean: no change to correlate in the latent space. Decoding to genes
        # (clipped at 0) leaves one offset shared by every well, uncorrelated with the wells' real changes.
        assert wells[split]["pearson_latent"]["median"] == 0.0
        assert wells[split]["pearson_genes"]["median"] == pytest.approx(0.0, abs=0.1)
        assert wells[split]["rank"]["mean"] == pytest.approx(wells[split]["rank"]["chance_mean"], rel=0.25)


def test_fidelity_known_answers(known):
    m = known.metrics
    for split in ("test", "test_he"):
        assert m["fidelity"]["oracle"][split]["localisation"] == 1.0
        assert m["wells"]["oracle"][split]["energy_ratio"]["median"] < 0.5
        assert m["wells"]["shuffled_nearest"][split]["energy_ratio"]["median"] > 1.5
        assert m["fidelity"]["oracle"][split]["gene_pearson_median"] > 0.8
        assert m["wells"]["replicate"][split]["energy_ratio"]["median"] == 1.0
        # Moved onto the real mean, the oracle's cells (the well's own) beat a replicate; another
        # treatment's cells do not.
        centred = {k: v[split]["energy_ratio_centred"]["median"] for k, v in m["wells"].items()}
        assert centred["oracle"] < 1.0 < centred["shuffled_nearest"]
        assert m["wells"]["replicate"][split]["energy_ratio_centred"]["median"] == 1.0
        assert m["wells"]["oracle"][split]["moa"]["top1"] > 0.7 > m["wells"]["shuffled_nearest"][split]["moa"]["top1"]


def test_metrics_structure_is_complete(known):
    m = known.metrics
    assert m["format"] == "phenoseq-metrics" and m["mode"] == "single-cell" and m["protocol"] == "seen"
    assert m["methods"][:2] == ["oracle", "replicate_cells"]
    assert set(m["splits"]) == {"test", "test_he"} and m["splits"]["test"]["label"] == "WE"
    acc = m["identification"]["accuracy"]
    for profile, mods in MODALITIES.items():
        for method, modalities in [("reference", mods["reference"])] + [(x, mods["method"]) for x in m["methods"]]:
            for modality in modalities:
                for split in m["splits"]:
                    entry = acc[method][modality][split][profile]
                    assert 0 <= entry["ci"][0] <= entry["balanced_accuracy"] <= entry["ci"][1] <= 1
                    assert entry["n_wells"] == m["splits"][split]["n_wells"]
                    assert known.arrays[confusion_key(method, modality, split, profile)].shape == (28, 28)
    for method in [*m["methods"], "replicate"]:
        for split in m["splits"]:
            assert {"pearson_genes", "pearson_latent", "rank", "energy_ratio", "moa"} <= set(m["wells"][method][split])
    assert known.arrays["embedding_xy"].shape[1] == 2
    json.dumps(m, allow_nan=False)


def test_deterministic(screen, space):
    config = BenchmarkConfig(n_boot=50, max_cells_per_well=10, sets_per_well=3, cells_per_set=5, fidelity_cells=10,
                             embedding_cells=5, test_splits=("test",), seed=3, cells_per_well=10, pooled_context=8)
    from phenoseq.generate.baselines import RidgeBaseline

    a = evaluate(screen, space, {"ridge": RidgeBaseline(screen, space)}, config=config)
    b = evaluate(screen, space, {"ridge": RidgeBaseline(screen, space)}, config=config)
    assert a.metrics == b.metrics
    assert a.arrays.keys() == b.arrays.keys() and all(np.array_equal(a.arrays[k], b.arrays[k]) for k in a.arrays)


def test_rna_without_information_beyond_morphology_gains_nothing_at_matched_morphology():
    """When morphology sees the whole cell state, the oracle's real RNA adds next to nothing against the
    matched-morphology control, while pooled morphology alone beats the paper-style ceiling (a single imaging
    cell ⊕ real RNA): the confound the matched control removes."""
    from phenoseq.io import PairedScreen
    from phenoseq.rna.space import RNASpace
    from phenoseq.simulate import SimulationConfig, simulate_screen

    groups = [[name, n, True] for name, n, _ in SimulationConfig().moa_groups]
    config = SimulationConfig(imaging_cells_per_well=60, rna_cells_per_well=40, n_genes=300, n_features=60, seed=2,
                              visible_dims=24, moa_groups=groups)
    screen = PairedScreen(*simulate_screen(config))
    space = RNASpace.fit(screen.subset("rnaseq", screen.wells_in("train")), n_latent=20)
    result = evaluate(screen, space, {"oracle": RealCells(screen, space, "oracle")},
                      config=BenchmarkConfig(n_boot=50, max_cells_per_well=40, sets_per_well=10, cells_per_set=5,
                                             fidelity_cells=20, embedding_cells=5, cells_per_well=20,
                                             pooled_context=40, test_splits=("test",)))
    gap = result.metrics["identification"]["gap"]["oracle"]["test"]
    assert abs(gap["vs_pooled"]["added"]) < 0.05
    acc = result.metrics["identification"]["accuracy"]["reference"]
    pooled, paper_ceiling = (acc[m]["test"]["single"]["balanced_accuracy"] for m in ("imaging+pooled", "imaging+real"))
    assert pooled > paper_ceiling + 0.2


def test_embedding_space_models_are_scored_without_gene_figures(small_screen_data):
    """A model trained in a provided embedding (X empty) is scored in latent space; gene figures are absent."""
    from phenoseq import PhenoSeq
    from phenoseq.io import PairedScreen
    from phenoseq.rna import log_normalise

    imaging, rnaseq = small_screen_data
    rnaseq = rnaseq.copy()
    rng = np.random.default_rng(0)
    rnaseq.obsm["X_embedding"] = (log_normalise(rnaseq.X) @ rng.normal(size=(rnaseq.n_vars, 8))).astype(np.float32)
    screen = PairedScreen(imaging.copy(), rnaseq)
    model = PhenoSeq(screen, preset="tiny", rna_embedding="X_embedding", seed=0)
    model.train(max_epochs=1)
    result = evaluate(screen, model.rna_space, {"emb": model},
                      config=BenchmarkConfig(n_boot=20, sets_per_well=2, max_cells_per_well=10, cells_per_well=5))
    m = result.metrics
    assert m["fidelity"]["emb"]["test"]["gene_pearson_median"] is None and m["fidelity"]["emb"]["test"]["n_genes"] == 0
    assert "pearson_genes" not in m["wells"]["emb"]["test"] and m["wells"]["emb"]["test"]["pearson_latent"]["n"] == 28
    assert m["identification"]["accuracy"]["emb"]["imaging+synthetic"]["test"]["multi"]["balanced_accuracy"] >= 0
