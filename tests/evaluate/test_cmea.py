"""The unseen-compound protocol on real paired profiles (CMEA dev: 81 compounds, Cell Painting + L1000), baselines."""

from __future__ import annotations

import math

import pytest


@pytest.fixture(scope="module")
def cmea_screen(real_data):
    from phenoseq.io import PairedScreen, ScreenKeys
    from phenoseq.io.readers import read_paired_tables

    data = real_data / "cmea_dev"
    if not data.is_dir():
        pytest.skip(f"{data} is absent")
    imaging, expression = read_paired_tables(data / "morphology.csv.gz", data / "l1000.csv.gz", id_column="compound")
    return PairedScreen(imaging, expression, keys=ScreenKeys(splits={"train": ["1"]}), rna_kind="expression")


def _finite(x) -> bool:
    if isinstance(x, dict):
        return all(_finite(v) for v in x.values())
    if isinstance(x, list):
        return all(_finite(v) for v in x)
    return x is None or not isinstance(x, float) or math.isfinite(x)


def test_cmea_unseen_baselines(cmea_screen):
    from phenoseq.evaluate import BenchmarkConfig, evaluate_unseen
    from phenoseq.evaluate.metrics import well_rows
    from phenoseq.generate.baselines import standard_baselines
    from phenoseq.rna.space import RNASpace

    def fit(held):
        space = RNASpace.fit(held.subset("rnaseq", held.wells_in("train")), n_latent=16, kind="expression")
        return standard_baselines(held, space)

    result = evaluate_unseen(cmea_screen, fit, n_folds=3, config=BenchmarkConfig(seed=0, cells_per_well=1))
    m = result.metrics
    assert m["mode"] == "bulk" and m["protocol"] == "unseen"
    assert m["methods"] == ["training_mean", "ridge", "nearest_well", "shuffled_ridge"]  # no control rows
    folds = m["unseen"]["folds"]
    assert m["unseen"]["n_folds"] == 3 and sorted(len(f) for f in folds) == [27, 27, 27]
    assert sorted(c for f in folds for c in f) == sorted(cmea_screen.wells.index)
    assert list(m["splits"]) == ["unseen"] and m["splits"]["unseen"]["n_wells"] == 81
    assert "replicate" not in m["wells"]  # one profile per compound: no real replicate, so no scaled ceiling
    for method in m["methods"]:
        w = m["wells"][method]["unseen"]
        assert {"pearson_genes", "pearson_latent", "rank"} <= set(w)
        assert w["pearson_genes"]["n"] == w["rank"]["n"] == 81
        assert w["rank"]["chance_mean"] == pytest.approx(14.0)  # 27 held-out compounds per fold
        assert m["scaled"][method]["unseen"]["rank"]["scaled"] is None
    mean = m["wells"]["training_mean"]["unseen"]
    assert abs(mean["pearson_genes"]["median"]) < 1e-6
    assert mean["rank"]["mean"] == pytest.approx(mean["rank"]["chance_mean"], abs=1e-6)
    assert _finite(m["wells"]) and _finite(m["scaled"])
    rows = well_rows(m, "unseen")
    assert [r["method"] for r in rows] == m["methods"]
    for r in rows:
        assert all(math.isfinite(r[k]) for k in ("pearson_genes", "pearson_latent", "rank", "top1", "chance"))
