"""What the evaluation keeps for the report's cell-level figures (sampled mean changes, treatments and their
morphology, training history), and reports from results that lack it."""

from __future__ import annotations

import copy
import re

import numpy as np
import pytest

NEW_KEYS = ("mean_change", "treatment_info", "history")


def _images(page: str) -> list[str]:
    return re.findall(r'<img alt="([^"]+)"', page)


def test_mean_changes_are_bounded_and_match_the_metrics(seen):
    from phenoseq.evaluate.wells import CHANGE_FEATURES, CHANGE_WELLS

    info, arrays = seen.metrics["mean_change"], seen.arrays
    assert info["split"] == "test" and info["space"] == "genes" and info["methods"] == seen.metrics["methods"]
    shape = (len(info["wells"]), len(info["features"]))
    assert shape[0] <= CHANGE_WELLS and shape[1] <= CHANGE_FEATURES
    assert set(info["wells"]) <= set(seen.metrics["wells"]["ridge"]["test"]["rank"]["per_well"])
    for m in info["methods"]:
        assert arrays[f"mean_change__{m}"].shape == shape and arrays[f"mean_change__{m}"].dtype == np.float32
    assert arrays["mean_change_real"].shape == shape
    # the average well predicts (nearly) no change: its cells are training cells around the training mean
    assert np.abs(arrays["mean_change__training_mean"]).mean() < 0.2 * np.abs(arrays["mean_change_real"]).mean()


def test_same_seed_same_arrays(seen, screen, config):
    """The evaluation of the ``seen`` fixture, run again: every array identical."""
    from dataclasses import replace

    from phenoseq.evaluate import evaluate
    from phenoseq.generate.baselines import RidgeBaseline, ShuffledImaging
    from phenoseq.rna.space import RNASpace

    space = RNASpace.fit(screen.subset("rnaseq", screen.wells_in("train")), n_latent=16)  # as conftest's
    ridge = RidgeBaseline(screen, space)
    methods = {"ridge": ridge, "shuffled_ridge": ShuffledImaging(ridge, sample_key=screen.keys.sample)}
    again = evaluate(screen, space, methods, config=replace(config, test_splits=("test",)), moa_key="MoA")
    assert again.arrays.keys() == seen.arrays.keys()
    for key, value in seen.arrays.items():
        np.testing.assert_array_equal(again.arrays[key], value, err_msg=key)
    assert again.metrics["treatment_info"] == seen.metrics["treatment_info"]
    assert again.metrics["mean_change"] == seen.metrics["mean_change"]


def test_treatment_info_reads_morphology_flags_and_effects(screen_data):
    """The simulator's ground truth, put in obs: flags come through, silent compounds barely move morphology."""
    from phenoseq.evaluate.wells import VISIBLE_KEY, treatment_info
    from phenoseq.io import PairedScreen
    from phenoseq.simulate import SimulationConfig
    from phenoseq.simulate.screen import treatment_table

    groups = [["HDAC inhibitor", 3, True], ["MEK inhibitor", 3, True], ["BET inhibitor", 2, False]]
    truth = treatment_table(SimulationConfig(moa_groups=groups))["morphology_visible"]
    imaging, rnaseq = (a.copy() for a in screen_data)
    imaging.obs[VISIBLE_KEY] = imaging.obs["Treatment"].astype(str).map(truth).astype(str).to_numpy()
    info = treatment_info(PairedScreen(imaging, rnaseq))
    assert info["controls"] == ["DMSO"]
    assert info["morphology_visible"] == {t: bool(v) for t, v in truth.items()}
    effect = info["morphology_effect"]
    silent = [effect[t] for t, v in truth.items() if not v]
    visible = [effect[t] for t, v in truth.items() if v and t != "DMSO"]
    assert max(silent) < np.median(visible)


def test_history_of_a_trained_generator_is_kept_and_drawn(screen, config, tmp_path):
    from dataclasses import replace

    from phenoseq.evaluate import evaluate, read_results, write_results
    from phenoseq.generate.baselines import RidgeBaseline
    from phenoseq.report import render_report
    from phenoseq.rna.space import RNASpace

    space = RNASpace.fit(screen.subset("rnaseq", screen.wells_in("train")), n_latent=16)
    trained = RidgeBaseline(screen, space)
    trained.history = [{"epoch": 1, "train_loss": np.float32(1.0), "val_loss": 0.5},
                       {"epoch": 2, "train_loss": 0.9, "val_loss": float("nan")}]
    result = evaluate(screen, space, {"trained": trained}, config=replace(config, test_splits=("test",)),
                      identification=False)
    assert result.metrics["history"] == {"trained": [{"epoch": 1, "train_loss": 1.0, "val_loss": 0.5},
                                                     {"epoch": 2, "train_loss": 0.9, "val_loss": None}]}
    write_results(result, tmp_path / "m")  # JSON without NaN
    page = render_report(read_results(tmp_path / "m"), tmp_path / "r").read_text()
    assert "training history" in _images(page) and "lowest validation loss" in page


def test_report_from_older_metrics_renders_with_notes(seen, tmp_path):
    """Results saved before these figures existed: no new metrics keys, no new arrays."""
    from phenoseq.evaluate.workflow import BenchmarkResult
    from phenoseq.report import render_report

    metrics = {k: v for k, v in copy.deepcopy(seen.metrics).items() if k not in NEW_KEYS}
    arrays = {k: v for k, v in seen.arrays.items() if not k.startswith("mean_change")}
    page = render_report(BenchmarkResult(metrics=metrics, arrays=arrays), tmp_path).read_text()
    assert "mean change scatter" not in _images(page) and "treatment fidelity" not in _images(page)
    assert "embedding by source" in _images(page)  # drawn from the arrays older results already kept
    assert "The gene-level scatter not drawn" in page and "The per-treatment figure not drawn" in page
    assert "No training history" in page
    assert re.findall(r"<h2 id='([a-z]+)'>", page)[-4:] == ["changes", "embedding", "fidelity", "training"]


@pytest.mark.parametrize("kind", ["unseen", "bulk"])
def test_other_kinds_keep_treatments(kind, request):
    result = request.getfixturevalue(kind)
    info = result.metrics["treatment_info"]
    scored = next(iter(result.metrics["wells"]["ridge"].values()))["rank"]["per_well"]
    assert set(scored) <= set(info["well_treatment"])  # every scored well, every fold


def test_treatment_info_reads_a_simulated_screens_moa_flags(screen_data):
    """Without an obs column, the simulator's uns["simulation"]["moa_visible"] (MoA → flag) says it."""
    from phenoseq.evaluate.wells import treatment_info
    from phenoseq.io import PairedScreen

    imaging, rnaseq = screen_data
    flags = rnaseq.uns["simulation"]["moa_visible"]
    moa = rnaseq.obs.groupby("Treatment", observed=True)["MoA"].first().astype(str)
    info = treatment_info(PairedScreen(imaging.copy(), rnaseq.copy()))
    expected = {t: bool(flags[m]) for t, m in moa.items() if m in flags}
    assert expected and info["morphology_visible"] == expected
    assert set(expected.values()) == {True, False}
