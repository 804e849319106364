"""Two profile tables (morphology, expression) keyed by one id column: read_paired_tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from phenoseq.errors import PhenoseqError
from phenoseq.io import PairedScreen, ScreenKeys
from phenoseq.io.readers import read_paired_tables

KEYS = ScreenKeys(splits={"train": ["1"]})


def _morphology(ids=("c1", "c2", "c3", "c4")) -> pd.DataFrame:
    n = len(ids)
    return pd.DataFrame({"compound": list(ids), "Cells_Area": np.arange(n, dtype=float),
                         "Nuclei_Intensity": np.arange(n, dtype=float) * 10, "Metadata_moa": ["a", "b"] * (n // 2)})


def _expression(ids=("c3", "c1", "c4", "c2")) -> pd.DataFrame:
    # Another row order than the morphology table, and genes whose value encodes the id.
    num = [int(i[1:]) for i in ids]
    num = np.array(num, dtype=float)
    return pd.DataFrame({"compound": list(ids), "GAPDH": num, "ACTB": -num, "cell_line": ["U2OS"] * len(ids)})


def _write(tmp_path, morphology: pd.DataFrame, expression: pd.DataFrame, suffix: str = ".csv"):
    paths = tmp_path / f"morphology{suffix}", tmp_path / f"expression{suffix}"
    for frame, path in zip((morphology, expression), paths):
        if suffix == ".parquet":
            frame.to_parquet(path)
        else:
            frame.to_csv(path, index=False)
    return paths


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz", ".parquet"])
def test_good_tables(tmp_path, suffix):
    m, e = _write(tmp_path, _morphology(), _expression(), suffix)
    imaging, expression = read_paired_tables(m, e, metadata_columns=["Metadata_moa", "cell_line"], keys=KEYS)
    assert imaging.obs_names.tolist() == expression.obs_names.tolist() == ["c1", "c2", "c3", "c4"]
    assert imaging.var_names.tolist() == ["Cells_Area", "Nuclei_Intensity"]
    assert expression.var_names.tolist() == ["GAPDH", "ACTB"]
    assert imaging.X.dtype == np.float32
    np.testing.assert_array_equal(imaging.X[:, 0], [0, 1, 2, 3])
    np.testing.assert_array_equal(expression.X[:, 0], [1, 2, 3, 4])  # reordered to the morphology table's rows
    for adata in (imaging, expression):
        obs = adata.obs
        assert obs["Sample_ID"].tolist() == obs["Treatment"].tolist() == ["c1", "c2", "c3", "c4"]
        assert set(obs["Replicate"]) == {"1"} and set(obs["Group"]) == {"treated"} and set(obs["batch"]) == {"1"}
    assert imaging.obs["Metadata_moa"].tolist() == ["a", "b", "a", "b"] and "cell_line" not in imaging.obs
    assert expression.obs["cell_line"].tolist() == ["U2OS"] * 4 and "Metadata_moa" not in expression.obs
    assert expression.uns["phenoseq_input"]["rna_kind"] == "expression"
    screen = PairedScreen(imaging, expression, keys=KEYS, rna_kind="expression")
    assert screen.wells_in("train") == ["c1", "c2", "c3", "c4"]


def test_metadata_default_controls_and_keys(tmp_path):
    m, e = _write(tmp_path, _morphology(), _expression().drop(columns="cell_line"))
    keys = ScreenKeys(sample="well", treatment="drug", replicate="rep", batch="plate", group="kind",
                      splits={"train": ["r2"]})
    imaging, expression = read_paired_tables(m, e, keys=keys, replicate="r2", batch="p7", controls=["c2"])
    assert "Metadata_moa" in imaging.obs  # Metadata_* columns are metadata by default
    assert imaging.obs["kind"].tolist() == ["treated", "control", "treated", "treated"]
    assert set(expression.obs["rep"]) == {"r2"} and set(expression.obs["plate"]) == {"p7"}
    assert PairedScreen(imaging, expression, keys=keys, rna_kind="expression").control_wells() == ["c2"]


def _error(tmp_path, morphology, expression, **kwargs) -> str:
    m, e = _write(tmp_path, morphology, expression)
    with pytest.raises(PhenoseqError) as info:
        read_paired_tables(m, e, **({"metadata_columns": ["Metadata_moa", "cell_line"]} | kwargs))
    return str(info.value)


def test_missing_id_column(tmp_path):
    msg = _error(tmp_path, _morphology().rename(columns={"compound": "cpd"}), _expression())
    assert "morphology.csv" in msg and "'compound'" in msg and "'cpd'" in msg and "id_column=" in msg


def test_repeated_ids(tmp_path):
    msg = _error(tmp_path, _morphology(), _expression(("c3", "c1", "c3", "c2")))
    assert "expression.csv" in msg and "c3 ×2" in msg and "once" in msg


def test_missing_ids(tmp_path):
    frame = _morphology()
    frame.loc[2, "compound"] = None
    msg = _error(tmp_path, frame, _expression())
    assert "morphology.csv" in msg and "missing ids" in msg and "3" in msg


def test_different_ids(tmp_path):
    msg = _error(tmp_path, _morphology(("c1", "c2", "c3", "c9")), _expression(("c3", "c1", "c4", "c2")))
    assert "only in" in msg and "'c9'" in msg and "'c4'" in msg and "3 shared" in msg


def test_nan_and_inf_named(tmp_path):
    frame = _morphology()
    frame.loc[1, "Nuclei_Intensity"] = np.nan
    msg = _error(tmp_path, frame, _expression())
    assert "morphology.csv" in msg and "1 NaN" in msg and "'Nuclei_Intensity'" in msg and "'c2'" in msg
    frame = _expression()
    frame.loc[0, "ACTB"] = np.inf
    msg = _error(tmp_path, _morphology(), frame)
    assert "expression.csv" in msg and "1 infinite" in msg and "'ACTB'" in msg and "'c3'" in msg


def test_text_feature_column(tmp_path):
    # Without naming it as metadata, a text column is an error that says how to keep it.
    msg = _error(tmp_path, _morphology(), _expression(), metadata_columns=["Metadata_moa"])
    assert "expression.csv" in msg and "'cell_line'" in msg and "'U2OS'" in msg and "metadata_columns=" in msg


def test_bad_metadata_columns(tmp_path):
    msg = _error(tmp_path, _morphology(), _expression(), metadata_columns=["Metadata_moa", "dose"])
    assert "['dose']" in msg and "neither" in msg
    msg = _error(tmp_path, _morphology().assign(Treatment="x"), _expression(),
                 metadata_columns=["Treatment", "cell_line", "Metadata_moa"])
    assert "Treatment" in msg and "key columns" in msg


def test_no_feature_columns(tmp_path):
    msg = _error(tmp_path, _morphology()[["compound", "Metadata_moa"]], _expression())
    assert "morphology.csv" in msg and "no feature columns" in msg


def test_unknown_control(tmp_path):
    msg = _error(tmp_path, _morphology(), _expression(), controls=["DMSO"])
    assert "'DMSO'" in msg and "controls" in msg


def test_cmea_real_tables(real_data):
    data = real_data / "cmea_dev"
    if not data.is_dir():
        pytest.skip(f"{data} is absent")
    imaging, expression = read_paired_tables(data / "morphology.csv.gz", data / "l1000.csv.gz", id_column="compound")
    assert imaging.shape == (81, 812) and expression.shape == (81, 978)
    assert imaging.obs_names.tolist() == expression.obs_names.tolist()
    assert all(name.startswith("BRD-") for name in imaging.obs_names)
    assert np.isfinite(imaging.X).all() and np.isfinite(expression.X).all()
    screen = PairedScreen(imaging, expression, keys=KEYS, rna_kind="expression")
    assert len(screen.wells_in("train")) == 81
