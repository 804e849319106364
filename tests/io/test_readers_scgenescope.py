"""scGeneScope-style .h5ad files (image embeddings, counts and scGPT embeddings) → standard layout."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from typer.testing import CliRunner

from phenoseq.errors import PhenoseqError
from phenoseq.io import PairedScreen
from phenoseq.io.readers import EMBEDDING_KEY, read_scgenescope, read_table, training_matrix


def _obs(n: int, prefix: str) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    treatments = np.array(["DMSO", "drugA"])[rng.integers(0, 2, n)]
    treatments[:2] = ["DMSO", "drugA"]
    return pd.DataFrame({
        "cell_id": [f"{prefix}{i}" for i in range(n)],
        "Treatment": treatments,
        "Replicate": ["3"] * n,
        "batch": ["round1"] * n,
        "Group": np.where(treatments == "DMSO", "Control", "Treatment"),
    }, index=[str(i) for i in range(n)])


def _files(tmp_path, with_counts: bool = True):
    rng = np.random.default_rng(0)
    img = ad.AnnData(X=np.zeros((30, 0), dtype=np.float32), obs=_obs(30, "img"))
    img.obsm["image_embedding"] = rng.normal(size=(30, 64)).astype(np.float32)
    counts = sp.csr_matrix(rng.poisson(2, size=(20, 50)).astype(np.float32)) if with_counts else np.zeros((20, 0), np.float32)
    rna = ad.AnnData(X=counts, obs=_obs(20, "rna"))
    rna.obsm["scGPT"] = rng.normal(size=(20, 16)).astype(np.float32)
    img.write_h5ad(tmp_path / "img.h5ad")
    rna.write_h5ad(tmp_path / "rna.h5ad")
    return tmp_path / "img.h5ad", tmp_path / "rna.h5ad"


def test_standard_layout_with_counts_and_embedding(tmp_path):
    imaging, rnaseq = read_scgenescope(*_files(tmp_path), imaging_embedding="image_embedding", rna_embedding="scGPT")
    assert imaging.shape == (30, 64) and imaging.X.dtype == np.float32 and imaging.var_names[0] == "image_embedding_0"
    assert imaging.obs_names[0] == "img0"
    # Sample_ID built from (Treatment, Replicate, batch); Group kept as the file says
    assert set(imaging.obs["Sample_ID"]) == {"DMSO|3|round1", "drugA|3|round1"}
    assert set(imaging.obs["Group"]) == {"Control", "Treatment"}
    assert rnaseq.shape == (20, 50) and sp.issparse(rnaseq.X)
    assert rnaseq.obsm[EMBEDDING_KEY].shape == (20, 16) and "scGPT" not in rnaseq.obsm
    assert rnaseq.uns["phenoseq_input"]["embedding"] == {"key": EMBEDDING_KEY, "source_key": "scGPT", "dims": 16}
    assert rnaseq.uns["phenoseq_input"]["rna_kind"] == "counts"
    assert training_matrix(rnaseq).shape == (20, 16) and training_matrix(rnaseq, "X").shape == (20, 50)
    screen = PairedScreen(imaging, rnaseq)
    assert screen.summary()["wells"] == 2


def test_embedding_only_rna(tmp_path):
    img, rna = _files(tmp_path, with_counts=False)
    _, rnaseq = read_scgenescope(rnaseq_path=rna)  # the only obsm entry is used when X is empty
    assert rnaseq.shape == (20, 16) and rnaseq.uns["phenoseq_input"]["rna_kind"] == "expression"
    np.testing.assert_array_equal(rnaseq.X, rnaseq.obsm[EMBEDDING_KEY])
    imaging, _ = read_scgenescope(imaging_path=img)
    assert imaging.shape == (30, 64)


def test_scgenescope_errors(tmp_path):
    img, rna = _files(tmp_path)
    with pytest.raises(PhenoseqError, match=r"no obsm\['X_pca'\].*obsm holds \['image_embedding'\]"):
        read_scgenescope(imaging_path=img, imaging_embedding="X_pca")
    adata = ad.read_h5ad(rna)
    adata.obs["cell_id"] = "same"
    adata.write_h5ad(tmp_path / "dup.h5ad")
    with pytest.raises(PhenoseqError, match=r"duplicated cell ids \(obs 'cell_id'\) \['same'\]"):
        read_scgenescope(rnaseq_path=tmp_path / "dup.h5ad")
    with pytest.raises(PhenoseqError, match=r"no such file"):
        read_scgenescope(imaging_path=tmp_path / "absent.h5ad")


def test_cli_convert_scgenescope(tmp_path):
    from phenoseq.cli.app import app

    img, rna = _files(tmp_path)
    out = tmp_path / "out" / "rna_std.h5ad"
    result = CliRunner().invoke(app, ["convert", str(rna), "-o", str(out), "--embedding", "scGPT", "-q"])
    assert result.exit_code == 0, result.output
    assert read_table(out).obsm[EMBEDDING_KEY].shape == (20, 16)
    # missing key columns: refused, nothing written
    adata = ad.read_h5ad(img)
    del adata.obs["Treatment"]
    adata.write_h5ad(tmp_path / "noTreat.h5ad")
    out2 = tmp_path / "out" / "img_std.h5ad"
    result = CliRunner().invoke(app, ["convert", str(tmp_path / "noTreat.h5ad"), "-o", str(out2), "--modality", "imaging", "-q"])
    assert result.exit_code != 0 and "missing column(s) ['Sample_ID', 'Treatment']" in str(result.exception)
    assert not out2.exists()
