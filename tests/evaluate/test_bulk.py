"""Bulk (well-level) mode end to end: profile table → convert → train → evaluate --expression.

Well-level data come from the small simulated screen: expression = well means of log-normalised counts,
written as a CSV profile table and converted with ``phenoseq convert``; imaging = either one mean profile
per well or the single cells themselves.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from phenoseq.cli import run
from phenoseq.errors import PhenoseqError
from phenoseq.evaluate import BenchmarkConfig, evaluate

KEYS = ["Sample_ID", "Treatment", "Replicate", "batch", "Group"]
FIGURES = {"pearson_genes", "pearson_latent", "pearson_genes_control", "pearson_latent_control", "rank"}


@pytest.fixture(scope="module")
def bulk_files(tmp_path_factory, small_screen_data):
    """Folder with imaging_wells.h5ad (one profile per well), imaging_cells.h5ad (single cells),
    expression.csv (samples × genes with key columns) and nothing else yet."""
    import pandas as pd

    from phenoseq.io import write_h5ad
    from phenoseq.io.readers import aggregate_wells
    from phenoseq.rna import log_normalise

    imaging, rnaseq = small_screen_data
    d = tmp_path_factory.mktemp("bulk")
    wells = aggregate_wells(imaging)
    wells.uns = {}
    write_h5ad(wells, d / "imaging_wells.h5ad")
    write_h5ad(imaging, d / "imaging_cells.h5ad")
    rna = rnaseq.copy()
    rna.X = log_normalise(rnaseq.X)
    expr = aggregate_wells(rna)
    table = pd.DataFrame(expr.X, index=expr.obs_names, columns=expr.var_names)
    table = pd.concat([expr.obs[KEYS], table], axis=1)
    table.to_csv(d / "expression.csv", index=False)
    return d


@pytest.fixture(scope="module")
def converted(bulk_files):
    """``phenoseq convert`` of the CSV profile table (the profile-table path) → expression.h5ad."""
    assert run("convert", bulk_files / "expression.csv", "--out", bulk_files / "expression.h5ad", "-q") == 0
    return bulk_files / "expression.h5ad"


@pytest.fixture(scope="module")
def screen(bulk_files, converted):
    from phenoseq.io import PairedScreen

    return PairedScreen.read(bulk_files / "imaging_wells.h5ad", converted, rna_kind="expression")


@pytest.fixture(scope="module")
def space(screen):
    from phenoseq.rna.space import RNASpace

    return RNASpace.fit(screen.subset("rnaseq", screen.wells_in("train")), n_latent=8, kind="expression")


def profile_generator(screen, space, source_of: dict[str, str], cells: int = 2):
    """Synthetic cells whose decoded expression is exactly the real profile of ``source_of[sample]``."""
    from phenoseq.evaluate.wells import real_profiles
    from phenoseq.generate.output import synthetic_adata, well_metadata

    samples = [s for s in source_of for _ in range(cells)]
    X = real_profiles(screen, space, [source_of[s] for s in samples]).genes
    return synthetic_adata(space.project(X.astype(np.float32)), samples, well_metadata(screen.imaging, screen.keys),
                           screen.keys, seeds=np.zeros(len(samples)), settings={"model": "profiles"},
                           decode=lambda _: X, genes=space.genes)


def held_out(screen) -> list[str]:
    return screen.wells_in("test") + screen.wells_in("test_he")


def check_structure(metrics: dict, methods: list[str]) -> None:
    assert metrics["format"] == "phenoseq-metrics" and metrics["mode"] == "bulk" and metrics["methods"] == methods
    assert set(metrics["splits"]) == {"test", "test_he"}
    assert "identification" not in metrics and "fidelity" not in metrics
    for split, info in metrics["splits"].items():
        n = info["n_wells"]
        for method in methods:
            entry = metrics["wells"][method][split]
            assert set(entry) == FIGURES
            assert entry["rank"]["chance_mean"] == (n // 2 + 1) / 2 if split == "test_he" else (n + 1) / 2
            assert len(entry["pearson_genes"]["per_well"]) == n
            assert all(1 <= r <= n for r in entry["rank"]["per_well"].values())
            lo, hi = entry["pearson_genes"]["iqr"]
            assert -1 <= lo <= entry["pearson_genes"]["median"] <= hi <= 1
        assert metrics["wells"]["replicate"][split]["pearson_genes"]["median"] > 0.5
    json.dumps(metrics, allow_nan=False)


@pytest.mark.parametrize("imaging_file", ["imaging_wells.h5ad", "imaging_cells.h5ad"])
def test_cli_end_to_end(bulk_files, converted, tmp_path, capsys, imaging_file):
    """convert → train --expression → evaluate --model (bulk mode auto-detected from the model without the flag)."""
    imaging = bulk_files / imaging_file
    model = tmp_path / "model"
    assert run("train", "--imaging", imaging, "--rnaseq", converted, "--expression", "--out", model,
               "--preset", "tiny", "--max-epochs", 2, "--set", "n_latent=8", "-q") == 0
    flag = ["--expression"] if imaging_file == "imaging_wells.h5ad" else []
    capsys.readouterr()
    code = run("evaluate", *flag, "--imaging", imaging, "--rnaseq", converted, "--model", model, "--baselines",
               "--out", tmp_path / "eval", "--report", tmp_path / "eval", "--cells-per-well", 2)
    assert code == 0
    printed = capsys.readouterr()
    assert "ridge" in printed.out and "replicate" in printed.out
    if not flag:
        assert "bulk mode" in printed.err
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    check_structure(metrics, ["phenoseq", "training_mean", "control", "ridge", "nearest_well", "shuffled_phenoseq"])
    assert metrics["settings"]["ridge"]["model"] == "ridge"
    assert (tmp_path / "eval" / "report.html").is_file()
    # The ridge baseline carries real signal on this screen: far better than chance at identification.
    ridge = metrics["wells"]["ridge"]["test"]["rank"]
    assert ridge["mean"] < ridge["chance_mean"] - 3


def test_perfect_and_wrong_generators(screen, space):
    wells = held_out(screen)
    perfect = profile_generator(screen, space, {w: w for w in wells})
    # The wrong generator gives each sample the profile of another treatment's sample of the same split.
    wrong_of = {}
    for split in ("test", "test_he"):
        s = sorted(screen.wells_in(split))
        wrong_of.update({w: s[(i + 7) % len(s)] for i, w in enumerate(s)})
    wrong = profile_generator(screen, space, wrong_of)
    metrics = evaluate(screen, space, synthetic={"perfect": perfect, "wrong": wrong}).metrics
    check_structure(metrics, ["perfect", "wrong", "training_mean"])
    for split in ("test", "test_he"):
        p, w = metrics["wells"]["perfect"][split], metrics["wells"]["wrong"][split]
        assert p["pearson_genes"]["median"] == pytest.approx(1.0, abs=1e-5)
        assert p["rank"]["mean"] == 1.0 and p["rank"]["top1"] == 1.0
        assert w["rank"]["mean"] > 3 and w["rank"]["top1"] < 0.2
        assert w["pearson_genes"]["median"] < 0.5
        assert metrics["scaled"]["perfect"][split]["pearson_genes"]["scaled"] > 1.0 > \
            metrics["scaled"]["wrong"][split]["pearson_genes"]["scaled"]


def test_training_mean_scores_zero_and_ties_at_chance(screen, space):
    from phenoseq.generate.baselines import TrainingMeanBaseline

    metrics = evaluate(screen, space, {"mean": TrainingMeanBaseline(screen, space)},
                       config=BenchmarkConfig(cells_per_well=2)).metrics
    for split in ("test", "test_he"):
        w = metrics["wells"]["mean"][split]
        assert w["pearson_genes"]["median"] == 0.0 and w["pearson_latent"]["median"] == 0.0
        assert w["rank"]["mean"] == pytest.approx(w["rank"]["chance_mean"])


def test_missing_held_out_samples_fail_cleanly(screen, space, bulk_files, converted, tmp_path, capsys):
    from phenoseq.io import write_h5ad

    wells = held_out(screen)
    partial = profile_generator(screen, space, {w: w for w in wells[3:]})
    with pytest.raises(PhenoseqError, match="held-out samples"):
        evaluate(screen, space, synthetic={"partial": partial})
    write_h5ad(partial, tmp_path / "partial.h5ad")
    space.save(tmp_path / "space")
    capsys.readouterr()
    code = run("evaluate", "--expression", "--imaging", bulk_files / "imaging_wells.h5ad", "--rnaseq",
               converted, "--synthetic", f"partial={tmp_path / 'partial.h5ad'}", "--rna-space", tmp_path / "space",
               "--out", tmp_path / "eval")
    assert code == 2
    assert "held-out samples" in capsys.readouterr().err
    assert not (tmp_path / "eval" / "metrics.json").exists()


def test_test_splits_restrict_evaluation(screen, space):
    """Only the configured splits are scored; a split with no samples in the screen is skipped."""
    perfect = profile_generator(screen, space, {w: w for w in screen.wells_in("test")})
    metrics = evaluate(screen, space, synthetic={"perfect": perfect},
                       config=BenchmarkConfig(test_splits=("test", "nonexistent"))).metrics
    assert list(metrics["splits"]) == ["test"]
