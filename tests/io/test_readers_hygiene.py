"""pycytominer conventions: blocklist, variance threshold, mad_robustize; and the format dispatcher."""

from __future__ import annotations

import numpy as np
import pytest

from phenoseq.errors import PhenoseqError
from phenoseq.io.readers import Hygiene, detect_kind, mad_robustize, pycytominer_blocklist, read_table
from phenoseq.io.readers.hygiene import low_variance


def test_blocklist_matches_pycytominer():
    names = pycytominer_blocklist()
    assert len(names) == 55 and len(set(names)) == 55
    assert names[0] == "Nuclei_Correlation_Manders_AGP_DNA"
    assert names[20] == "Nuclei_Correlation_RWC_AGP_DNA"
    assert names[-1] == "Nuclei_Granularity_16_RNA"
    assert "Nuclei_Correlation_Manders_Mito_RNA" in names and "Cells_Correlation_Manders_AGP_DNA" not in names


def test_low_variance_rules():
    n = 100
    X = np.column_stack([
        np.ones(n),                                  # constant
        np.r_[np.zeros(99), 1.0],                    # second value 1/99 as frequent < 0.05
        np.arange(n, dtype=float),                   # fine
        np.r_[np.zeros(50), np.ones(50)],            # 2 levels, balanced: fine (2/100 ≥ 0.01)
        np.full(n, np.nan),                          # no values
    ])
    assert low_variance(X, 0.05, 0.01).tolist() == [True, True, False, False, True]


def test_mad_robustize_per_plate_against_controls():
    X = np.array([[1.0], [3.0], [5.0], [100.0], [10.0], [20.0], [30.0], [0.0]])
    plates = np.array(["p1"] * 4 + ["p2"] * 4)
    ref = np.array([True, True, True, False, True, True, True, False])
    out, zero = mad_robustize(X, plates, ref)
    # p1 controls: median 3, MAD 2 → scale 2·1.4826
    np.testing.assert_allclose(out[:4, 0], (X[:4, 0] - 3) / (2 * 1.4826), rtol=1e-6)
    np.testing.assert_allclose(out[4:, 0], (X[4:, 0] - 20) / (10 * 1.4826), rtol=1e-6)
    assert not zero.any()
    _, zero = mad_robustize(np.ones((4, 1)), np.array(["p"] * 4), np.ones(4, bool))
    assert zero.all()


def test_hygiene_settings_validated():
    with pytest.raises(PhenoseqError, match="normalize must be"):
        Hygiene(normalize="zscore")
    with pytest.raises(PhenoseqError, match="normalize_against"):
        Hygiene(normalize_against="negcon")


def test_detect_kind(tmp_path, small_screen_data):
    from phenoseq.io.files import write_h5ad

    (tmp_path / "a.gct").write_text("#1.2\n1\t1\nName\tDescription\ts\ng\t-\t1\n")
    (tmp_path / "m.csv").write_text("Metadata_Well,Cells_AreaShape_Area\nA01,1\n")
    (tmp_path / "e.tsv").write_text("Sample_ID\tGAPDH\nw\t1\n")
    (tmp_path / "x.xlsx").write_text("?")
    write_h5ad(small_screen_data[0], tmp_path / "i.h5ad")
    assert [detect_kind(tmp_path / n) for n in ("a.gct", "m.csv", "e.tsv", "i.h5ad")] == ["gct", "single_cell", "expression", "h5ad"]
    assert detect_kind(tmp_path) == "cellprofiler"
    with pytest.raises(PhenoseqError, match=r"cannot tell the format.*--kind"):
        detect_kind(tmp_path / "x.xlsx")
    with pytest.raises(PhenoseqError, match=r"no such file"):
        read_table(tmp_path / "missing.csv")
    with pytest.raises(PhenoseqError, match=r"option\(s\) \['embedding'\] do not apply to gct input"):
        read_table(tmp_path / "a.gct", embedding="x")
    # .h5ad read as it is (what `phenoseq info` relies on)
    adata = read_table(tmp_path / "i.h5ad")
    assert adata.shape == small_screen_data[0].shape and "phenoseq_input" not in adata.uns


def test_info_reads_new_formats(real_data):
    from phenoseq.io.keys import ScreenKeys
    from phenoseq.io.summary import summarise_files

    summary = summarise_files([real_data / "cmappy" / "test_l1000.gct"], ScreenKeys())
    assert summary["cells"] == 377 and summary["variables"] == 978 and summary["treatments"] == 60
    summary = summarise_files([real_data / "pycytominer" / "cell_health_SQ00014613" / "test_SQ00014613.sqlite"], ScreenKeys())
    assert summary["cells"] == 2 and any("missing column" in p for p in summary["problems"])


def test_cli_main_exit_status_and_message(tmp_path):
    import subprocess
    import sys

    (tmp_path / "bad.gct").write_text("#1.3\n5\t1\t0\t0\nid\ts1\ng1\t1\n")
    out = tmp_path / "bad.h5ad"
    proc = subprocess.run(
        [sys.executable, "-c", "from phenoseq.cli import main; main()", "convert", str(tmp_path / "bad.gct"), "-o", str(out)],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 2
    assert "error:" in proc.stderr and "5 data rows" in " ".join(proc.stderr.split())
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["bad.gct"]
