"""CellProfiler / cytominer-database / merged single-cell tables → imaging AnnData (real JUMP and Cell Health data)."""

from __future__ import annotations

import sqlite3

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from phenoseq.errors import PhenoseqError
from phenoseq.io.readers import Annotation, Hygiene, read_cellprofiler, read_table
from phenoseq.io.readers.profiles import profiles_to_anndata

RAW = Hygiene(feature_select=False, normalize=None)
KEYS = ["Sample_ID", "Treatment", "Replicate", "batch", "Group"]


def _jump(real_data):
    return real_data / "pycytominer" / "jump_target2_BR00121431"


def _jump_annotation(real_data) -> Annotation:
    jt = real_data / "jump_target"
    return Annotation(platemap=jt / "JUMP-Target-2_compound_platemap.tsv", compounds=jt / "JUMP-Target-2_compound_metadata.tsv")


def test_jump_csv_folders_merge_and_annotate(real_data):
    adata = read_cellprofiler(_jump(real_data), annotation=_jump_annotation(real_data), hygiene=RAW)
    assert adata.n_obs == 89 + 36
    # compartment features prefixed as pycytominer does; object ids moved to metadata
    assert {"Cells_AreaShape_Area", "Cytoplasm_AreaShape_Area", "Nuclei_AreaShape_Area"} <= set(adata.var_names)
    assert not any(v.endswith(("Number_Object_Number", "ObjectNumber")) or "_Parent_" in v for v in adata.var_names)
    assert adata.X.dtype == np.float32
    obs = adata.obs
    wells = obs.groupby("Sample_ID", observed=True)["Treatment"].first().to_dict()
    assert wells == {"BR00121431_A01": "1-octanol", "BR00121431_A02": "quinine"}
    assert obs["Sample_ID"].value_counts().to_dict() == {"BR00121431_A01": 89, "BR00121431_A02": 36}
    assert set(obs["Group"]) == {"treated"}
    assert set(obs["Replicate"]) == set(obs["batch"]) == {"BR00121431"}  # defaults: the plate
    assert (obs["Metadata_broad_sample"].astype(str).str.startswith("BRD-")).all()
    assert obs.index.is_unique and obs["Metadata_Site"].astype(int).eq(1).all()
    a01 = read_cellprofiler(_jump(real_data) / "BR00121431-A01-1", hygiene=RAW)
    area = pd.read_csv(_jump(real_data) / "BR00121431-A01-1" / "Cells.csv")["AreaShape_Area"].to_numpy()
    np.testing.assert_allclose(a01[:, "Cells_AreaShape_Area"].X.ravel(), area)


def test_jump_hygiene_and_normalisation(real_data):
    with pytest.raises(PhenoseqError, match=r"no control cells.*--normalize-against all"):
        read_cellprofiler(_jump(real_data), annotation=_jump_annotation(real_data))
    adata = read_cellprofiler(_jump(real_data), annotation=_jump_annotation(real_data), hygiene=Hygiene(normalize_against="all"))
    report = adata.uns["phenoseq_hygiene"]
    assert report["n_features_in"] == len(report["dropped_low_variance"]) + len(report["dropped_blocklist"]) + len(
        report["dropped_nan_heavy"]) + len(report["dropped_zero_mad"]) + adata.n_vars
    assert "Nuclei_Correlation_RWC_AGP_DNA" in report["dropped_blocklist"]
    assert np.isfinite(adata.X).all()
    median = np.median(adata.X, axis=0)
    np.testing.assert_allclose(median, 0, atol=1e-4)  # robustized against all cells: median 0 per feature


def test_sqlite_and_merged_table_agree(real_data):
    ch = real_data / "pycytominer" / "cell_health_SQ00014613"
    sql = read_table(ch / "test_SQ00014613.sqlite", preprocess=False)
    merged = read_table(ch / "test_SQ00014613.csv.gz", preprocess=False)
    assert sql.shape == merged.shape == (2, 1777)
    assert set(sql.var_names) == set(merged.var_names)
    np.testing.assert_allclose(sql.X, merged[:, sql.var_names].X, rtol=1e-6)
    assert list(sql.obs["Sample_ID"]) == ["SQ00014613_A01"] * 2 == list(merged.obs["Sample_ID"])


def test_cytotable_sqlite_with_mixed_types(real_data):
    path = real_data / "cytotable" / "cell_health_SQ00014613" / "test-SQ00014613.sqlite"
    raw = read_table(path, preprocess=False)
    assert raw.shape == (12, 1777)
    # the one text 'nan' in Nuclei_Correlation_Costes_AGP_DNA is read as a missing value, not an error
    assert np.isnan(raw[:, "Nuclei_Correlation_Costes_AGP_DNA"].X).sum() == 1
    ann = Annotation(treatment_column="Metadata_Well", controls=("A01",))
    adata = read_table(path, annotation=ann)
    assert "Nuclei_Correlation_Costes_AGP_DNA" in adata.uns["phenoseq_hygiene"]["dropped_nan_heavy"]
    assert adata.obs.groupby("Sample_ID", observed=True)["Group"].first().to_dict() == {
        "SQ00014613_A01": "control", "SQ00014613_O18": "treated"}
    ctrl = adata.X[(adata.obs["Group"] == "control").to_numpy()]
    np.testing.assert_allclose(np.median(ctrl, axis=0), 0, atol=1e-4)


def _frame(n: int = 12) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({
        "Metadata_Plate": ["P1"] * n,
        "Metadata_Well": ["A01"] * (n // 2) + ["B02"] * (n - n // 2),
        "Cells_AreaShape_Area": rng.normal(100, 10, n),
        "Cytoplasm_Intensity_MeanIntensity_DNA": rng.normal(1, 0.1, n),
        "Nuclei_AreaShape_Area": rng.normal(50, 5, n),
    })
    return frame


PLATEMAP = pd.DataFrame({"well_position": ["A01", "B02"], "broad_sample": [None, "BRD-X"], "solvent": ["DMSO", "DMSO"]})


def test_synthetic_table_controls_from_solvent():
    ann = Annotation(platemap=PLATEMAP)
    adata = profiles_to_anndata(_frame(), "t.csv", annotation=ann, hygiene=Hygiene())
    assert adata.obs.groupby("Sample_ID", observed=True)["Treatment"].first().to_dict() == {"P1_A01": "DMSO", "P1_B02": "BRD-X"}
    assert adata.obs.groupby("Treatment", observed=True)["Group"].first().to_dict() == {"DMSO": "control", "BRD-X": "treated"}


def test_unknown_wells_in_platemap():
    frame = _frame()
    frame.loc[0, "Metadata_Well"] = "H12"
    with pytest.raises(PhenoseqError, match=r"wells \['H12'\].*not in the plate map"):
        profiles_to_anndata(frame, "t.csv", annotation=Annotation(platemap=PLATEMAP), hygiene=RAW)


def test_platemap_missing_column_and_missing_well_column():
    with pytest.raises(PhenoseqError, match=r"plate map is missing column\(s\) \['broad_sample'\]"):
        profiles_to_anndata(_frame(), "t.csv", annotation=Annotation(platemap=PLATEMAP.drop(columns="broad_sample")), hygiene=RAW)
    with pytest.raises(PhenoseqError, match=r"no well column 'Metadata_Well'"):
        profiles_to_anndata(_frame().drop(columns="Metadata_Well"), "t.csv", annotation=Annotation(platemap=PLATEMAP), hygiene=RAW)
    with pytest.raises(PhenoseqError, match=r"treatment_column names column 'Metadata_pert'"):
        profiles_to_anndata(_frame(), "t.csv", annotation=Annotation(treatment_column="Metadata_pert"), hygiene=RAW)


def test_non_numeric_feature():
    frame = _frame()
    frame["Cells_AreaShape_Area"] = frame["Cells_AreaShape_Area"].astype(object)
    frame.loc[3, "Cells_AreaShape_Area"] = "big"
    with pytest.raises(PhenoseqError, match=r"non-numeric values: \['Cells_AreaShape_Area'\].*'big'"):
        profiles_to_anndata(frame, "t.csv", hygiene=RAW)


def test_nan_only_features_dropped_or_fatal():
    frame = _frame()
    frame["Nuclei_Texture_Empty"] = np.nan
    adata = profiles_to_anndata(frame, "t.csv", annotation=Annotation(platemap=PLATEMAP), hygiene=Hygiene())
    assert "Nuclei_Texture_Empty" in adata.uns["phenoseq_hygiene"]["dropped_nan_heavy"]
    assert "Nuclei_Texture_Empty" not in adata.var_names
    only_nan = frame[["Metadata_Plate", "Metadata_Well", "Nuclei_Texture_Empty"]]
    with pytest.raises(PhenoseqError, match=r"all 1 features were removed.*1 with more than 5% NaN"):
        profiles_to_anndata(only_nan, "t.csv", annotation=Annotation(platemap=PLATEMAP), hygiene=Hygiene())


def test_missing_compartment_and_table(tmp_path):
    folder = tmp_path / "site"
    folder.mkdir()
    pd.DataFrame({"ImageNumber": [1], "Metadata_Plate": ["P"], "Metadata_Well": ["A01"]}).to_csv(folder / "Image.csv", index=False)
    pd.DataFrame({"ImageNumber": [1], "ObjectNumber": [1], "AreaShape_Area": [3.0]}).to_csv(folder / "Cells.csv", index=False)
    with pytest.raises(PhenoseqError, match=r"missing \['Cytoplasm.csv', 'Nuclei.csv'\]"):
        read_cellprofiler(folder)
    adata = read_cellprofiler(folder, compartments=("Cells",), hygiene=RAW)
    assert adata.var_names.tolist() == ["Cells_AreaShape_Area"]
    (folder / "Cells.csv").write_text("ImageNumber,ObjectNumber,AreaShape_Area\n")
    with pytest.raises(PhenoseqError, match=r"Cells.csv: the table has a header \(3 columns\) but no rows"):
        read_cellprofiler(folder, compartments=("Cells",), hygiene=RAW)
    db = tmp_path / "x.sqlite"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE Image (TableNumber TEXT, ImageNumber INT)")
    con.commit()
    con.close()
    with pytest.raises(PhenoseqError, match=r"tables \['Cells', 'Cytoplasm', 'Nuclei'\] are missing"):
        read_table(db)


def test_cli_convert_writes_or_refuses(real_data, tmp_path):
    from phenoseq.cli.app import app

    jt = real_data / "jump_target"
    out = tmp_path / "jump.h5ad"
    args = ["convert", str(_jump(real_data)), "--out", str(out), "--platemap", str(jt / "JUMP-Target-2_compound_platemap.tsv"),
            "--compounds", str(jt / "JUMP-Target-2_compound_metadata.tsv"), "--quiet"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code != 0 and "no control cells" in str(result.exception)
    assert list(tmp_path.iterdir()) == []
    result = CliRunner().invoke(app, args + ["--normalize-against", "all"])
    assert result.exit_code == 0, result.output
    from phenoseq.io.files import read_h5ad

    adata = read_h5ad(out)
    assert adata.n_obs == 125 and set(KEYS) <= set(adata.obs.columns)
    # no plate map: the key columns Treatment/Group are missing → refused, nothing written
    out2 = tmp_path / "raw.h5ad"
    result = CliRunner().invoke(app, ["convert", str(_jump(real_data)), "--out", str(out2), "--normalize", "none", "-q"])
    assert result.exit_code != 0 and "missing column(s) ['Treatment', 'Group']" in str(result.exception)
    assert "--platemap" in str(result.exception) and not out2.exists()


def _treatments(adata) -> dict:
    return adata.obs.groupby("Sample_ID", observed=True)["Treatment"].first().to_dict()


def test_treatment_column_wins_over_the_platemap():
    platemap = PLATEMAP.assign(moa=["none", "HDAC inhibitor"])
    frame = _frame().assign(Metadata_dose=["0"] * 6 + ["10uM"] * 6)

    def read(column):
        return profiles_to_anndata(frame, "t.csv", annotation=Annotation(platemap=platemap, treatment_column=column),
                                   hygiene=RAW)

    by_moa = {"P1_A01": "none", "P1_B02": "HDAC inhibitor"}
    assert _treatments(read("moa")) == by_moa  # a plate-map column, joined as Metadata_moa
    assert _treatments(read("Metadata_moa")) == by_moa
    assert _treatments(read("Metadata_dose")) == {"P1_A01": "0", "P1_B02": "10uM"}  # a column of the data
    assert _treatments(read(["moa", "Metadata_dose"])) == {"P1_A01": "none@0", "P1_B02": "HDAC inhibitor@10uM"}
    with pytest.raises(PhenoseqError, match=r"t.csv: treatment_column \(--treatment-column\) names column 'pert', which "
                                            r"is neither in the data nor in the plate map \(looked for 'pert' and "
                                            r"'Metadata_pert'\).*plate-map columns \[.*'Metadata_moa'"):
        read("pert")


def test_cli_convert_treatment_column_with_platemap(tmp_path):
    from phenoseq.cli import run
    from phenoseq.io.files import read_h5ad

    _frame().to_csv(tmp_path / "cells.csv", index=False)
    PLATEMAP.assign(moa=["none", "HDAC inhibitor"]).to_csv(tmp_path / "map.tsv", sep="\t", index=False)
    args = ["convert", str(tmp_path / "cells.csv"), "--platemap", str(tmp_path / "map.tsv"), "--normalize", "none", "-q"]
    assert run(*args, "--treatment-column", "moa", "--out", str(tmp_path / "moa.h5ad")) == 0
    assert _treatments(read_h5ad(tmp_path / "moa.h5ad")) == {"P1_A01": "none", "P1_B02": "HDAC inhibitor"}
    assert run(*args, "--treatment-column", "pert", "--out", str(tmp_path / "pert.h5ad")) == 2
    assert not (tmp_path / "pert.h5ad").exists()
