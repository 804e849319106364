"""The trust figures: AUROC and flag rates with known answers, fold merging, and the workflow end to end."""

import numpy as np
import pytest

from phenoseq.evaluate import trust


def test_auroc_known_values():
    assert trust.auroc(np.array([3.0, 4.0]), np.array([1.0, 2.0])) == 1.0
    assert trust.auroc(np.array([1.0]), np.array([2.0])) == 0.0
    assert trust.auroc(np.array([1.0, 2.0]), np.array([1.0, 2.0])) == 0.5
    assert trust.auroc(np.array([]), np.array([1.0])) is None


def test_ood_summary_counts_flags():
    per_well = {"u1": {"score": 3.0, "flag": True, "positive": True, "visible": True},
                "u2": {"score": 0.5, "flag": False, "positive": True, "visible": False},
                "s1": {"score": 0.2, "flag": False, "positive": False, "visible": None},
                "s2": {"score": 1.0, "flag": True, "positive": False, "visible": None}}
    s = trust.summarise_ood(per_well, "test")
    assert s["recall"] == 0.5 and s["recall_visible"] == 1.0 and s["false_flag_rate"] == 0.5
    assert s["auroc"] == 0.75 and (s["n_positive"], s["n_negative"], s["n_visible"]) == (2, 2, 1)


def _entry(wells, coverage):
    recs = {w: {"coverage": c, "width": 1.0, "error": 1.0 - c, "confidence": c, "ood_score": 0.1, "ood": False,
                "visible": w != "b"} for w, c in zip(wells, coverage)}
    return {"level": 0.9, "calibration_wells": {"seen": 5, "unseen": 0},
            "splits": {"test": trust.summarise_split(recs, "test")}}


def test_merge_keeps_a_test_well_once_per_fold():
    merged = trust.merge([_entry(["a", "b", "c"], [1.0, 0.8, 0.9]), _entry(["a", "d", "e"], [0.6, 0.7, 0.8])])
    t = merged["splits"]["test"]
    assert t["n_wells"] == 6 and {"a@fold0", "a@fold1", "b"} <= set(t["per_well"])
    assert t["coverage"] == pytest.approx(np.mean([1.0, 0.8, 0.9, 0.6, 0.7, 0.8]))
    assert t["spearman"] == pytest.approx(1.0)  # confidence = coverage = 1 - error here
    assert t["by_morphology"]["silent"]["n_wells"] == 1 and t["by_morphology"]["visible"]["n_wells"] == 5
    assert merged["calibration_wells"]["seen"] == 5 and merged["n_models"] == 2  # per model, not summed


def test_workflow_reports_trust_for_a_calibrated_model(small_screen, tmp_path):
    from phenoseq import PhenoSeq
    from phenoseq.evaluate import BenchmarkConfig, evaluate
    from phenoseq.report.html import render_report

    model = PhenoSeq(small_screen, preset="tiny", seed=0)
    model.train(max_epochs=4)
    result = evaluate(small_screen, model.rna_space, {"phenoseq": model}, identification=False,
                      config=BenchmarkConfig(cells_per_well=20))
    entry = result.metrics["trust"]["phenoseq"]
    assert "training_mean" not in result.metrics["trust"]  # baselines have no intervals to judge
    for split in ("test", "test_he"):
        t = entry["splits"][split]
        assert t["n_wells"] == len(small_screen.wells_in(split))
        assert 0.5 < t["coverage"] <= 1 and 0.5 < t["baseline_coverage"] <= 1 and t["width"] > 0
    assert not entry["splits"]["test_he"]["exchangeable"]
    assert entry["ood"]["n_negative"] == len(small_screen.wells_in("test")) and entry["ood"]["auroc"] is None
    html = render_report(result, tmp_path).read_text()
    assert "Trust: intervals, confidence and the OOD flag" in html and "training-mean interval" in html
    # Unseen wells only (their compounds' test wells trained the model): the report says false flags are unmeasured.
    records = {w: {**r, "positive": True} for w, r in entry["ood"]["per_well"].items()}
    entry["ood"] = trust.summarise_ood(records, None)
    html = render_report(result, tmp_path / "again").read_text()
    assert "No held-out wells of training compounds were left to measure false flags on" in html
