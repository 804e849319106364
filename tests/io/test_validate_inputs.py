"""Input checks seen through ``phenoseq info``: which file is which, the real problem named, warnings shown."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from phenoseq.cli import run
from phenoseq.io import ScreenKeys
from phenoseq.io.summary import render_summary, summarise_files
from phenoseq.io.validate import key_text


@pytest.fixture
def write(small_screen_data, tmp_path):
    """write(name, modality, fn): a copy of one modality, changed in place or replaced by fn, as name.h5ad."""

    def _write(name: str, modality: str, change=None):
        adata = small_screen_data[0 if modality == "imaging" else 1].copy()
        changed = change(adata) if change is not None else None
        adata = adata if changed is None else changed  # not `or`: an AnnData with 0 cells is falsy
        path = tmp_path / f"{name}.h5ad"
        adata.write_h5ad(path)
        return path

    return _write


@pytest.fixture
def good(write):
    return write("imaging", "imaging"), write("rnaseq", "rnaseq")


def _set_counts(fn):
    def change(adata):
        adata.X = sp.csr_matrix(fn(adata.X.toarray()))
    return change


def _negative(X):
    X[0, 0] = -3
    return X


@pytest.mark.parametrize("name, change, message", [
    ("negative", _set_counts(_negative), "X has 1 negative values (min -3)"),
    ("lognorm", _set_counts(np.log1p), "non-integer values"),
    ("zeros", _set_counts(np.zeros_like), "X holds no non-zero count"),
])
def test_info_takes_the_order_given_and_names_the_real_problem(write, good, name, change, message):
    """Bad counts used to be taken for a second imaging file ("could not tell which is the imaging file")."""
    bad = write(name, "rnaseq", change)
    summary = summarise_files([good[0], bad], ScreenKeys())
    assert summary["imaging"]["file"] == str(good[0]) and summary["rnaseq"]["file"] == str(bad)
    assert any(message in p and str(bad) in p for p in summary["problems"]), summary["problems"]
    assert run("info", str(good[0]), str(bad)) == 1


def test_info_keeps_integer_imaging_first_and_swaps_only_on_clear_evidence(write, good, capsys):
    def integer_features(adata):
        adata.X = np.round(np.abs(adata.X))
        adata.X[:, 0] = 0  # also a constant feature

    imaging = write("integer_imaging", "imaging", integer_features)
    summary = summarise_files([imaging, good[1]], ScreenKeys())
    assert summary["imaging"]["file"] == str(imaging) and not summary["problems"]
    assert len(summary["warnings"]) == 1 and "1 of 60 features are constant" in summary["warnings"][0]
    # RNA first, imaging second: counts clearly mark the first file, so the two are swapped.
    swapped = summarise_files([good[1], good[0]], ScreenKeys())
    assert swapped["files"] == [str(good[0]), str(good[1])] and not swapped["problems"]


def test_duplicated_gene_names_are_a_problem_in_info(write, good):
    def dup(adata):
        adata.var_names = [adata.var_names[0]] * 2 + adata.var_names[2:].tolist()

    bad = write("dup_genes", "rnaseq", dup)
    summary = summarise_files([good[0], bad], ScreenKeys())
    assert any("duplicated gene names (var_names)" in p for p in summary["problems"])
    assert run("info", str(good[0]), str(bad)) == 1


def test_empty_files_are_problems_not_crashes(write, good):
    empty_rna = write("empty_rna", "rnaseq", lambda a: a[:0].copy())
    empty_img = write("empty_img", "imaging", lambda a: a[:0].copy())
    single = summarise_files([empty_img], ScreenKeys())
    assert single["problems"] == [f"{empty_img}: X holds no cells (n_obs = 0); the file is empty. "
                                  "Check that it was written completely."]
    assert run("info", str(empty_img), str(good[1])) == 1
    assert run("info", str(good[0]), str(empty_rna)) == 1


def test_warnings_are_listed_printed_and_keep_exit_0(write, good, capsys):
    from rich.console import Console

    def zero_cells(adata):
        X = adata.X.toarray()
        X[:3] = 0
        adata.X = sp.csr_matrix(X)

    rna = write("zero_cells", "rnaseq", zero_cells)
    single = summarise_files([rna], ScreenKeys())
    assert len(single["warnings"]) == 1 and "3 of" in single["warnings"][0] and "zero total counts" in single["warnings"][0]
    pair = summarise_files([good[0], rna], ScreenKeys())
    assert pair["warnings"] == single["warnings"] and pair["imaging"]["warnings"] == [] and not pair["problems"]
    console = Console(width=400, record=True)
    render_summary(pair, console)
    text = console.export_text()
    assert "warning: " + single["warnings"][0] in text and "no problems found" in text
    assert run("info", str(good[0]), str(rna)) == 0
    assert "warning:" in capsys.readouterr().out


def test_no_warnings_about_a_refused_file(write, good):
    """All-zero counts are one problem, not also a warning about every cell having zero counts."""
    bad = write("zeros", "rnaseq", _set_counts(np.zeros_like))
    summary = summarise_files([good[0], bad], ScreenKeys())
    assert summary["warnings"] == [] and len(summary["problems"]) == 1


def test_key_text_writes_whole_numbers_without_a_decimal_point():
    assert key_text(pd.Series([3.0, 5.0])).tolist() == ["3", "5"]
    assert key_text(pd.Series([3, 5])).tolist() == ["3", "5"]
    assert key_text(pd.Series([3.0, 5.0]).astype("category")).tolist() == ["3", "5"]
    assert key_text(pd.Series([3.5, 5.0])).tolist() == ["3.5", "5.0"]  # not whole: kept as read
    assert key_text(pd.Series(["3", "A"])).tolist() == ["3", "A"]
    assert key_text(pd.Series([True, False])).tolist() == ["True", "False"]


def test_float_replicates_are_split_in_info(write):
    def float_replicates(adata):
        adata.obs["Replicate"] = adata.obs["Replicate"].astype(str).astype(float)

    imaging, rna = write("img_float", "imaging", float_replicates), write("rna_float", "rnaseq", float_replicates)
    single = summarise_files([imaging], ScreenKeys())
    assert single["wells_per_split"] == {"test": 28, "test_he": 56, "train": 28, "val": 28}
    assert run("info", str(imaging), str(rna)) == 0


def test_one_training_well_is_a_problem_in_info(write):
    def dmso_only(adata):
        return adata[(adata.obs["Treatment"] == "DMSO").to_numpy()].copy()

    imaging, rna = write("img_one", "imaging", dmso_only), write("rna_one", "rnaseq", dmso_only)
    summary = summarise_files([imaging, rna], ScreenKeys())
    assert len(summary["problems"]) == 1 and "has 1 paired well(s) ['R3-DMSO']" in summary["problems"][0]
    assert run("info", str(imaging), str(rna)) == 1


def test_each_screen_problem_is_counted(good):
    """A split map with no real training replicate gives two problems, listed (and counted) one by one."""
    keys = ScreenKeys(splits={"train": ["9"], "val": ["5"]})
    summary = summarise_files(list(good), keys)
    assert len(summary["problems"]) == 2
    assert summary["problems"][0].startswith("the training split (replicates ['9'] of 'Replicate') has 0 paired well(s);")
    assert "the data's 'Replicate' values are ['1', '2', '3', '4', '5'] (5 in all)" in summary["problems"][1]
