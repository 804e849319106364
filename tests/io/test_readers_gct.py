"""GCT 1.2/1.3 text and GCTX (HDF5) → expression AnnData, samples × genes (real cmapPy L1000 files + malformed ones)."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from phenoseq.errors import PhenoseqError
from phenoseq.io.readers import read_bulk, read_gct, read_gctx


@pytest.fixture(scope="module")
def l1000(real_data):
    gct = read_bulk(real_data / "cmappy" / "test_l1000.gct", "gct")
    gctx = read_bulk(real_data / "cmappy" / "test_l1000_highprecision.gctx", "gctx")
    return gct, gctx


def test_shapes_ids_and_metadata_agree(l1000):
    gct, gctx = l1000
    assert gct.shape == gctx.shape == (377, 978)  # samples × genes
    assert list(gct.obs_names) == list(gctx.obs_names)
    assert list(gct.var_names) == list(gctx.var_names)
    assert gct.obs_names[0] == "LJP005_A375_24H_X1_B19:A03" and gct.var_names[0] == "200814_at"
    for field in ("pert_iname", "pert_id", "pert_type", "det_well", "det_plate", "cell_id", "pert_idose"):
        assert (gct.obs[field].astype(str) == gctx.obs[field].astype(str)).all(), field
    for field in ("pr_gene_symbol", "pr_gene_id", "pr_is_lmark"):
        assert (gct.var[field].astype(str) == gctx.var[field].astype(str)).all(), field
    assert gct.var.loc["200814_at", "pr_gene_symbol"] == "PSME1"
    assert gct.X.dtype == gctx.X.dtype == np.float32


def test_known_values_and_counts(l1000):
    gct, gctx = l1000
    for adata in (gct, gctx):
        assert adata.obs["pert_type"].value_counts().to_dict() == {"trt_cp": 328, "ctl_vehicle": 26, "trt_poscon": 23}
        assert adata.obs["pert_iname"].value_counts()["DMSO"] == 26
        assert adata.obs["pert_iname"].nunique() == 60  # 59 compounds + DMSO
        assert int(adata.obs["pert_time"].iloc[0]) == 24
        # key columns: one sample = one well, treatment from pert_iname, DMSO wells are controls
        assert adata.obs["Sample_ID"].is_unique
        assert (adata.obs["Group"] == "control").sum() == 26
        assert set(adata.obs["batch"]) == {"LJP005_A375_24H_X1_B19"} == set(adata.obs["Replicate"])
    # Level 3 (GCT, log2 expression) and Level 4 (GCTX, z-scores) differ in values, not in layout
    np.testing.assert_allclose(gct.X[0, :3], [11.3819, 10.445, 6.3682], rtol=1e-6)
    np.testing.assert_allclose(gctx.X[0, :3], [0.3473286, 1.3524287, 0.83922863], rtol=1e-6)
    assert 3.2 < gct.X.min() < gct.X.max() <= 15.0 and -61 < gctx.X.min() < gctx.X.max() < 28


def _gct13(path, rows=("g1", "g2", "g3"), cols=("s1", "s2"), values=None, dims=None, extra_line=None):
    values = values if values is not None else [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]
    dims = dims or (len(rows), len(cols), 1, 1)
    lines = ["#1.3", "\t".join(map(str, dims)), "\t".join(["id", "symbol", *cols]),
             "\t".join(["pert_iname", "-666", "DMSO", "drugA"])]
    lines += ["\t".join([r, f"SYM{i}", *map(str, v)]) for i, (r, v) in enumerate(zip(rows, values))]
    if extra_line:
        lines.append(extra_line)
    path.write_text("\n".join(lines) + "\n")
    return path


def test_gct13_and_gct12_synthetic(tmp_path):
    adata = read_gct(_gct13(tmp_path / "a.gct"))
    assert adata.shape == (2, 3)
    np.testing.assert_array_equal(adata.X, [[1, 3, 5], [2, 4, 6]])
    assert list(adata.obs["pert_iname"]) == ["DMSO", "drugA"] and list(adata.var["symbol"]) == ["SYM0", "SYM1", "SYM2"]
    assert list(read_gct(tmp_path / "a.gct", var_names="symbol").var_names) == ["SYM0", "SYM1", "SYM2"]
    (tmp_path / "b.gct").write_text("#1.2\n2\t2\nName\tDescription\ts1\ts2\ng1\tna\t1\t2\ng2\tna\t3\tNaN\n")
    b = read_gct(tmp_path / "b.gct")
    assert b.shape == (2, 2) and np.isnan(b.X[1, 1]) and "Description" in b.var.columns


def test_gct_mismatched_counts(tmp_path):
    with pytest.raises(PhenoseqError, match=r"announces 1 column-metadata lines and 4 data rows.*has 4"):
        read_gct(_gct13(tmp_path / "a.gct", dims=(4, 2, 1, 1)))
    with pytest.raises(PhenoseqError, match=r"header \(line 3\) should have 6 fields; it has 4"):
        read_gct(_gct13(tmp_path / "b.gct", dims=(3, 4, 1, 1)))
    with pytest.raises(PhenoseqError, match=r"line 6 has 3"):
        read_gct(_gct13(tmp_path / "c.gct", values=[[1.0, 2.0], [3.0], [5.0, 6.0]]))
    with pytest.raises(PhenoseqError, match=r"has 5"):
        read_gct(_gct13(tmp_path / "d.gct", extra_line="g4\tSYM\t1\t2"))
    (tmp_path / "e.gct").write_text("#1.3\nthree\t2\nid\ts1\n")
    with pytest.raises(PhenoseqError, match=r"line 2 must hold 4 tab-separated counts"):
        read_gct(tmp_path / "e.gct")
    (tmp_path / "f.gct").write_text("")
    with pytest.raises(PhenoseqError, match=r"not a GCT file"):
        read_gct(tmp_path / "f.gct")


def test_gct_bad_names_and_values(tmp_path):
    with pytest.raises(PhenoseqError, match=r"duplicated gene \(row\) ids \['g1'\]"):
        read_gct(_gct13(tmp_path / "a.gct", rows=("g1", "g1", "g3")))
    with pytest.raises(PhenoseqError, match=r"1 gene \(row\) ids have no name"):
        read_gct(_gct13(tmp_path / "b.gct", rows=("g1", "", "g3")))
    with pytest.raises(PhenoseqError, match=r"not numbers .*g2/s1='high'"):
        read_gct(_gct13(tmp_path / "c.gct", values=[[1.0, 2.0], ["high", 4.0], [5.0, 6.0]]))
    # duplicated gene symbols when they are asked for as gene names
    _gct13(tmp_path / "d.gct")
    text = (tmp_path / "d.gct").read_text().replace("SYM1", "SYM0")
    (tmp_path / "d.gct").write_text(text)
    with pytest.raises(PhenoseqError, match=r"duplicated gene names in 'symbol' \['SYM0'\]"):
        read_gct(tmp_path / "d.gct", var_names="symbol")


def _gctx(path, matrix, n_rows, n_cols):
    with h5py.File(path, "w") as f:
        f["0/DATA/0/matrix"] = matrix
        f["0/META/ROW/id"] = np.array([f"g{i}".encode() for i in range(n_rows)])
        f["0/META/COL/id"] = np.array([f"s{i}".encode() for i in range(n_cols)])
        f["0/META/COL/pert_iname"] = np.array([b"DMSO"] * n_cols)
    return path


def test_gctx_orientation_checked(tmp_path):
    m = np.arange(6, dtype=np.float32).reshape(2, 3)  # 2 samples × 3 genes, the CMap layout
    a = read_gctx(_gctx(tmp_path / "a.gctx", m, n_rows=3, n_cols=2))
    np.testing.assert_array_equal(a.X, m)
    b = read_gctx(_gctx(tmp_path / "b.gctx", m.T, n_rows=3, n_cols=2))  # genes × samples also understood
    np.testing.assert_array_equal(b.X, m)
    with pytest.raises(PhenoseqError, match=r"matrix is 2 × 3 but the metadata name 4 samples and 3 genes"):
        read_gctx(_gctx(tmp_path / "c.gctx", m, n_rows=3, n_cols=4))
    (tmp_path / "d.gctx").write_text("#1.3\n")
    from phenoseq.io.readers import detect_kind

    assert detect_kind(tmp_path / "d.gctx") == "gct"
    with pytest.raises(PhenoseqError, match=r"starts like a GCT text file"):
        read_gctx(tmp_path / "d.gctx")


def test_cli_convert_gct(real_data, tmp_path):
    from phenoseq.cli.app import app
    from phenoseq.io.files import read_h5ad

    out = tmp_path / "l1000.h5ad"
    result = CliRunner().invoke(app, ["convert", str(real_data / "cmappy" / "test_l1000.gct"), "-o", str(out), "-q"])
    assert result.exit_code == 0, result.output
    adata = read_h5ad(out)
    assert adata.shape == (377, 978) and adata.uns["phenoseq_input"]["rna_kind"] == "expression"
    bad = _gct13(tmp_path / "bad.gct", dims=(4, 2, 1, 1))
    out2 = tmp_path / "bad.h5ad"
    result = CliRunner().invoke(app, ["convert", str(bad), "-o", str(out2), "-q"])
    assert result.exit_code != 0 and isinstance(result.exception, PhenoseqError) and not out2.exists()
