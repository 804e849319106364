"""Samples × genes expression tables, and well-level aggregation of a simulated single-cell screen."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from phenoseq.errors import PhenoseqError
from phenoseq.io import PairedScreen
from phenoseq.io.readers import aggregate_wells, read_table


def _table(n: int = 4) -> pd.DataFrame:
    return pd.DataFrame({
        "Sample_ID": [f"w{i}" for i in range(n)],
        "Treatment": ["DMSO", "drugA"] * (n // 2),
        "Replicate": ["3"] * n,
        "batch": ["b1"] * n,
        "Metadata_dose": [0.0, 1.0] * (n // 2),
        "GAPDH": np.arange(n, dtype=float),
        "ACTB": np.arange(n, dtype=float) * 2,
    })


def test_expression_csv_and_parquet(tmp_path):
    _table().to_csv(tmp_path / "bulk.csv", index=False)
    _table().to_parquet(tmp_path / "bulk.parquet")
    for name in ("bulk.csv", "bulk.parquet"):
        adata = read_table(tmp_path / name)
        assert adata.shape == (4, 2) and list(adata.var_names) == ["GAPDH", "ACTB"]
        assert list(adata.obs_names) == ["w0", "w1", "w2", "w3"]
        assert adata.obs["Group"].tolist() == ["control", "treated"] * 2
        assert adata.obs["Metadata_dose"].tolist() == [0.0, 1.0, 0.0, 1.0]
        np.testing.assert_array_equal(adata.X[:, 1], [0, 2, 4, 6])


def test_expression_table_errors(tmp_path):
    bad = _table().assign(GAPDH=["1", "2", "oops", "4"])
    bad.to_csv(tmp_path / "nonnum.csv", index=False)
    with pytest.raises(PhenoseqError, match=r"gene column\(s\) hold non-numeric values: \['GAPDH'\].*'oops'"):
        read_table(tmp_path / "nonnum.csv")
    (tmp_path / "dup.tsv").write_text("Sample_ID\tTreatment\tGAPDH\tGAPDH\nw0\tDMSO\t1\t2\n")
    with pytest.raises(PhenoseqError, match=r"duplicated column names \['GAPDH'\]"):
        read_table(tmp_path / "dup.tsv")
    (tmp_path / "noname.csv").write_text("Sample_ID,Treatment,GAPDH,\nw0,DMSO,1,2\n")
    with pytest.raises(PhenoseqError, match=r"1 gene columns have no name"):
        read_table(tmp_path / "noname.csv")
    (tmp_path / "empty.csv").write_text("Sample_ID,Treatment,GAPDH\n")
    with pytest.raises(PhenoseqError, match=r"has a header \(3 columns\) but no rows"):
        read_table(tmp_path / "empty.csv")
    (tmp_path / "void.csv").write_text("")
    with pytest.raises(PhenoseqError, match=r"the file is empty"):
        read_table(tmp_path / "void.csv", kind="expression")
    _table().drop(columns="Sample_ID").to_csv(tmp_path / "nosample.csv", index=False)
    with pytest.raises(PhenoseqError, match=r"no sample id column.*--sample-column"):
        read_table(tmp_path / "nosample.csv")


def test_duplicated_gene_names_detected(tmp_path):
    # pandas de-duplicates repeated headers as "GAPDH.1"; the reader must not accept that silently
    (tmp_path / "dup.csv").write_text("Sample_ID,GAPDH,GAPDH\nw0,1,2\n")
    with pytest.raises(PhenoseqError, match=r"duplicated column names \['GAPDH'\]"):
        read_table(tmp_path / "dup.csv")


def test_aggregate_simulated_screen_gives_bulk_pairing(small_screen_data):
    imaging, rnaseq = small_screen_data
    bulk = aggregate_wells(rnaseq)
    wells = rnaseq.obs["Sample_ID"].astype(str)
    assert bulk.n_obs == wells.nunique() and bulk.n_vars == rnaseq.n_vars
    first = bulk.obs_names[0]
    dense = rnaseq.X.toarray() if hasattr(rnaseq.X, "toarray") else np.asarray(rnaseq.X)
    np.testing.assert_allclose(bulk[first].X.ravel(), dense[(wells == first).to_numpy()].mean(axis=0), rtol=1e-5)
    assert bulk.obs.loc[first, "n_cells"] == (wells == first).sum()
    assert {"Treatment", "Replicate", "batch", "Group", "MoA"} <= set(bulk.obs.columns)
    screen = PairedScreen(imaging.copy(), bulk, rna_kind="expression")
    assert screen.summary()["wells"] == bulk.n_obs


def test_cli_convert_expression_table(tmp_path):
    from phenoseq.cli.app import app

    _table().to_csv(tmp_path / "bulk.csv", index=False)
    out = tmp_path / "bulk.h5ad"
    result = CliRunner().invoke(app, ["convert", str(tmp_path / "bulk.csv"), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "samples × 2 genes" in " ".join(result.output.split())
    result = CliRunner().invoke(app, ["convert", str(tmp_path / "bulk.csv"), "-o", str(tmp_path / "bulk.csv"), "-q"])
    assert result.exit_code != 0 and "is one of the inputs" in str(result.exception)
    assert (tmp_path / "bulk.csv").read_text().startswith("Sample_ID,")
