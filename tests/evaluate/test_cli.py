"""``phenoseq evaluate`` and ``phenoseq report`` through the real entry point (exit codes included)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from phenoseq.cli import run


@pytest.fixture(scope="module")
def files(tmp_path_factory, screen, space, oracle):
    from phenoseq.io import write_h5ad

    d = tmp_path_factory.mktemp("cli")
    write_h5ad(screen.imaging, d / "imaging.h5ad")
    write_h5ad(screen.rnaseq, d / "rnaseq.h5ad")
    write_h5ad(oracle, d / "oracle.h5ad")
    space.save(d / "space")
    no_latent = oracle.copy()
    del no_latent.obsm["X_phenoseq"]
    write_h5ad(no_latent, d / "no_latent.h5ad")
    narrow = oracle.copy()
    narrow.obsm["X_phenoseq"] = np.ascontiguousarray(oracle.obsm["X_phenoseq"][:, :3])
    write_h5ad(narrow, d / "narrow.h5ad")
    foreign = oracle.copy()
    obs = foreign.obs.copy()
    obs["Sample_ID"] = obs["Sample_ID"].astype(str).str.replace("R4-", "R9-")
    foreign.obs = obs
    write_h5ad(foreign, d / "foreign.h5ad")
    return d


def test_evaluate_writes_metrics_and_report(files, tmp_path, capsys):
    code = run("evaluate", "--imaging", files / "imaging.h5ad", "--rnaseq", files / "rnaseq.h5ad",
               "--synthetic", f"truth={files / 'oracle.h5ad'}", "--baselines", "--rna-space", files / "space",
               "--out", tmp_path / "out", "--report", tmp_path / "rep", "--cells-per-set", 5, "--cells-per-well", 20,
               "--moa-key", "MoA")
    assert code == 0
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["methods"] == ["truth", "training_mean", "control", "ridge", "nearest_well", "shuffled_ridge"]
    assert metrics["config"]["cells_per_set"] == 5 and metrics["config"]["moa_key"] == "MoA"
    ident = metrics["identification"]
    # A file has no generator behind it: scored on single cells; the baselines also on matched-context sets.
    assert ident["matched_methods"] == sorted(metrics["methods"][1:])
    assert ident["gap"]["truth"]["test"]["matched"]["value"] is None
    assert ident["gap"]["ridge"]["test"]["matched"]["value"] is not None
    for method in metrics["methods"]:
        assert set(ident["gap"][method]["test_he"]) == {"matched", "vs_pooled", "vs_imaging"}
        assert {"pearson_genes", "rank", "energy_ratio", "moa"} <= set(metrics["wells"][method]["test"])
    assert (tmp_path / "out" / "arrays.npz").is_file()
    assert (tmp_path / "rep" / "report.html").is_file()
    out = capsys.readouterr().out
    assert "WE (test)" in out and "truth" in out and "ridge" in out and "replicate" in out

    assert run("report", tmp_path / "out", "--out", tmp_path / "rep2", "--quiet") == 0
    assert (tmp_path / "rep2" / "report.html").is_file()


def test_split_map_from_the_command_line(files, tmp_path):
    code = run("evaluate", "--imaging", files / "imaging.h5ad", "--rnaseq", files / "rnaseq.h5ad",
               "--baselines", "--rna-space", files / "space", "--splits", "train=3;val=5;test=1,2,4",
               "--out", tmp_path / "out", "--cells-per-well", 10, "--quiet")
    assert code == 0
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert list(metrics["splits"]) == ["test"] and metrics["splits"]["test"]["n_wells"] == 84


@pytest.mark.parametrize("spec, message", [
    ("train=3;train=4", "given twice"),
    ("val=5;test=4", "no 'train'"),
    ("train=3;test=3", "both"),
    ("train", "cannot read"),
])
def test_bad_split_map_exits_2(files, tmp_path, capsys, spec, message):
    code = run("evaluate", "--imaging", files / "imaging.h5ad", "--rnaseq", files / "rnaseq.h5ad", "--baselines",
               "--rna-space", files / "space", "--splits", spec, "--out", tmp_path / "out", "--quiet")
    assert code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_unseen_folds_from_the_command_line(files, tmp_path):
    code = run("evaluate", "--imaging", files / "imaging.h5ad", "--rnaseq", files / "rnaseq.h5ad", "--baselines",
               "--unseen-folds", 3, "--out", tmp_path / "out", "--report", tmp_path / "out", "--cells-per-well", 10,
               "--quiet")
    assert code == 0
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["protocol"] == "unseen" and len(metrics["unseen"]["folds"]) == 3
    assert metrics["unseen"]["train_on_tests"] is True
    assert metrics["wells"]["ridge"]["unseen"]["pearson_genes"]["n"] == 135
    assert (tmp_path / "out" / "report.html").is_file()


def test_the_unseen_training_choice_needs_unseen_folds(files, tmp_path, capsys):
    code = run("evaluate", "--imaging", files / "imaging.h5ad", "--rnaseq", files / "rnaseq.h5ad", "--baselines",
               "--rna-space", files / "space", "--unseen-train-split-only", "--out", tmp_path / "out", "--quiet")
    assert code == 2 and "--unseen-folds" in capsys.readouterr().err.replace("\n", " ")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("bad, message", [
    ("no_latent.h5ad", "X_phenoseq"),
    ("narrow.h5ad", "dimensions"),
    ("foreign.h5ad", "not in the imaging data"),
    ("missing.h5ad", "no such"),
])
def test_bad_synthetic_exits_2_and_writes_nothing(files, tmp_path, capsys, bad, message):
    code = run("evaluate", "--imaging", files / "imaging.h5ad", "--rnaseq", files / "rnaseq.h5ad",
               "--synthetic", files / bad, "--rna-space", files / "space", "--out", tmp_path / "out", "--quiet")
    assert code == 2
    assert message in capsys.readouterr().err.replace("\n", " ")
    assert not (tmp_path / "out").exists()


def test_needs_exactly_one_rna_space_source(files, tmp_path, capsys):
    code = run("evaluate", "--imaging", files / "imaging.h5ad", "--rnaseq", files / "rnaseq.h5ad",
               "--synthetic", files / "oracle.h5ad", "--out", tmp_path / "out", "--quiet")
    assert code == 2 and "--model" in capsys.readouterr().err.replace("\n", " ")
    assert not (tmp_path / "out").exists()


def test_unseen_folds_retrain_the_model_with_its_saved_settings(files, tmp_path):
    model = tmp_path / "model"
    assert run("train", "-i", files / "imaging.h5ad", "-r", files / "rnaseq.h5ad", "-o", model, "--preset", "tiny",
               "--max-epochs", 1, "--set", "max_epochs=1", "-q") == 0
    code = run("evaluate", "--imaging", files / "imaging.h5ad", "--rnaseq", files / "rnaseq.h5ad", "--model", model,
               "--unseen-folds", 2, "--unseen-train-split-only", "--out", tmp_path / "out", "--cells-per-well", 5,
               "--quiet")
    assert code == 0
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["methods"] == ["phenoseq", "training_mean"]
    assert metrics["wells"]["phenoseq"]["unseen"]["rank"]["n"] == 135
    # Trained on the training split alone, the test wells of training compounds stay out: the OOD flag's negatives.
    ood = metrics["trust"]["phenoseq"]["ood"]
    assert metrics["unseen"]["train_on_tests"] is False and ood["negatives"] == "test" and ood["n_negative"] > 0
