"""PairedScreen: pairing by well, splits, and a clear error for every kind of bad input."""

import numpy as np
import pytest
import scipy.sparse as sp

from phenoseq.errors import PhenoseqError
from phenoseq.io import PairedScreen, ScreenKeys


def copies(small_screen_data):
    imaging, rnaseq = small_screen_data
    return imaging.copy(), rnaseq.copy()


def test_pairs_wells_and_splits(small_screen):
    w = small_screen.wells
    assert len(w) == 28 * 5
    assert set(w["split"]) == {"train", "val", "test", "test_he"}
    assert len(small_screen.wells_in("train")) == 28
    assert len(small_screen.wells_in("test_he")) == 56
    assert (w["n_imaging"] > 0).all() and (w["n_rna"] > 0).all()
    assert small_screen.imaging.X.dtype == np.float32
    summary = small_screen.summary()
    assert summary["treatments"] == 28 and summary["wells"] == 140


def test_custom_split_map(small_screen_data):
    imaging, rnaseq = copies(small_screen_data)
    keys = ScreenKeys(splits={"train": ["1", "3"], "test": ["4"]})
    screen = PairedScreen(imaging, rnaseq, keys=keys)
    assert len(screen.wells_in("train")) == 56
    assert (screen.wells["split"] == "none").sum() == 56  # replicates 2 and 5 belong to no split


def test_input_is_not_modified(small_screen_data):
    imaging, rnaseq = copies(small_screen_data)
    before = imaging.obs["Replicate"].dtype
    PairedScreen(imaging, rnaseq)
    assert imaging.obs["Replicate"].dtype == before


def test_missing_key_column(small_screen_data):
    imaging, rnaseq = copies(small_screen_data)
    del imaging.obs["Treatment"]
    with pytest.raises(PhenoseqError, match=r"imaging: obs is missing column\(s\) \['Treatment'\]"):
        PairedScreen(imaging, rnaseq)


def test_configurable_key_names(small_screen_data):
    imaging, rnaseq = copies(small_screen_data)
    for a in (imaging, rnaseq):
        a.obs = a.obs.rename(columns={"Sample_ID": "well"})
    screen = PairedScreen(imaging, rnaseq, keys=ScreenKeys(sample="well"))
    assert screen.wells.index.name == "well"


def test_nan_features(small_screen_data):
    imaging, rnaseq = copies(small_screen_data)
    imaging.X[3, 2] = np.nan
    imaging.X[5, 7] = np.inf
    with pytest.raises(PhenoseqError, match=r"X has 2 NaN/inf values in 2 cells") as err:
        PairedScreen(imaging, rnaseq)
    assert imaging.obs_names[3] in str(err.value) and imaging.var_names[7] in str(err.value)


def test_non_integer_counts(small_screen_data):
    imaging, rnaseq = copies(small_screen_data)
    rnaseq.X = sp.csr_matrix(np.log1p(rnaseq.X.toarray()))
    with pytest.raises(PhenoseqError, match=r"rnaseq: X has \d+ non-integer values .* expected raw counts"):
        PairedScreen(imaging, rnaseq)


def test_negative_counts(small_screen_data):
    imaging, rnaseq = copies(small_screen_data)
    X = rnaseq.X.toarray()
    X[0, 0] = -3
    rnaseq.X = sp.csr_matrix(X)
    with pytest.raises(PhenoseqError, match=r"rnaseq: X has 1 negative values \(min -3\)"):
        PairedScreen(imaging, rnaseq)


def test_duplicated_cell_ids(small_screen_data):
    imaging, rnaseq = copies(small_screen_data)
    names = rnaseq.obs_names.tolist()
    names[1] = names[0]
    rnaseq.obs_names = names
    with pytest.raises(PhenoseqError, match=r"rnaseq: duplicated cell ids \['rna-R1-DMSO-0000'\]"):
        PairedScreen(imaging, rnaseq)


def test_unpaired_wells_error_then_drop(small_screen_data):
    imaging, rnaseq = copies(small_screen_data)
    rnaseq = rnaseq[rnaseq.obs["Sample_ID"] != "R4-DMSO"].copy()
    with pytest.raises(PhenoseqError, match=r"1 imaging-only \['R4-DMSO'\].*unpaired='drop'"):
        PairedScreen(imaging, rnaseq)
    screen = PairedScreen(imaging, rnaseq, unpaired="drop")
    assert screen.dropped_wells == {"imaging_only": ["R4-DMSO"], "rna_only": []}
    assert "R4-DMSO" not in screen.wells.index
    assert "R4-DMSO" not in set(screen.imaging.obs["Sample_ID"])


def test_too_few_cells(small_screen_data):
    imaging, rnaseq = copies(small_screen_data)
    with pytest.raises(PhenoseqError, match=r"rnaseq: wells \[.*\] \(140 in all\) have fewer than 1000 cells"):
        PairedScreen(imaging, rnaseq, min_cells=(1, 1000))


def test_treatment_missing_from_training_split(small_screen_data):
    imaging, rnaseq = copies(small_screen_data)
    keep = lambda a: a[~((a.obs["Treatment"] == "DMSO") & (a.obs["Replicate"] == "3")).to_numpy()].copy()
    with pytest.raises(PhenoseqError, match=r"treatments \['DMSO'\] \(1 in all\) have no paired well in the training split"):
        PairedScreen(keep(imaging), keep(rnaseq))


def test_inconsistent_well_annotation(small_screen_data):
    imaging, rnaseq = copies(small_screen_data)
    t = rnaseq.obs["Treatment"].astype(str).to_numpy()
    t[(rnaseq.obs["Sample_ID"] == "R3-DMSO").to_numpy()] = "HDACI-1"
    rnaseq.obs["Treatment"] = t
    with pytest.raises(PhenoseqError, match=r"disagree on 'Treatment' for wells \['R3-DMSO'\]"):
        PairedScreen(imaging, rnaseq)


def test_expression_mode_accepts_normalised_values(small_screen_data):
    imaging, rnaseq = copies(small_screen_data)
    rnaseq.X = np.log1p(rnaseq.X.toarray())
    screen = PairedScreen(imaging, rnaseq, rna_kind="expression")
    assert len(screen.wells) == 140


def test_duplicated_feature_and_gene_names(small_screen_data):
    imaging, rnaseq = copies(small_screen_data)
    imaging.var_names = [imaging.var_names[0]] + imaging.var_names[:-1].tolist()
    with pytest.raises(PhenoseqError, match=r"imaging: duplicated feature names \(var_names\) \[.*var_names_make_unique"):
        PairedScreen(imaging, rnaseq)
    imaging, rnaseq = copies(small_screen_data)
    rnaseq.var_names = [rnaseq.var_names[1]] + rnaseq.var_names[1:].tolist()
    with pytest.raises(PhenoseqError, match=rf"rnaseq: duplicated gene names \(var_names\) \['{rnaseq.var_names[1]}'\]"):
        PairedScreen(imaging, rnaseq)


def test_all_zero_and_empty_inputs(small_screen_data):
    imaging, rnaseq = copies(small_screen_data)
    rnaseq.X = sp.csr_matrix(rnaseq.shape, dtype=np.float32)
    with pytest.raises(PhenoseqError, match=r"rnaseq: X holds no non-zero count \(all \d+ × 300 values are 0\)"):
        PairedScreen(imaging, rnaseq)
    imaging, rnaseq = copies(small_screen_data)
    with pytest.raises(PhenoseqError, match=r"rnaseq: X holds no counts \(shape 0 cells × 300 genes\)"):
        PairedScreen(imaging, rnaseq[:0].copy())
    with pytest.raises(PhenoseqError, match=r"rnaseq: X holds no counts \(shape \d+ cells × 0 genes\)"):
        PairedScreen(imaging, rnaseq[:, :0].copy())
    with pytest.raises(PhenoseqError, match=r"imaging: X holds no cells \(n_obs = 0\)"):
        PairedScreen(imaging[:0].copy(), rnaseq)


def test_warnings_for_zero_count_cells_and_constant_features(small_screen_data):
    imaging, rnaseq = copies(small_screen_data)
    assert PairedScreen(imaging, rnaseq).warnings == []
    X = rnaseq.X.toarray()
    X[:2] = 0
    rnaseq.X = sp.csr_matrix(X)
    imaging.X[:, 4] = 1.5
    screen = PairedScreen(imaging, rnaseq)  # warnings never refuse a screen
    assert len(screen.warnings) == 2
    constant, empty = screen.warnings
    assert constant.startswith("imaging: 1 of 60 features are constant") and imaging.var_names[4] in constant
    assert "carry no information. Drop them." in constant
    assert empty.startswith(f"rnaseq: 2 of {rnaseq.n_obs} cells have zero total counts") and rnaseq.obs_names[0] in empty


def test_float_replicates_name_the_same_splits(small_screen_data):
    imaging, rnaseq = copies(small_screen_data)
    for a in (imaging, rnaseq):
        a.obs["Replicate"] = a.obs["Replicate"].astype(str).astype(float)  # 3.0, not "3"
    screen = PairedScreen(imaging, rnaseq)
    assert set(screen.wells["Replicate"]) == {"1", "2", "3", "4", "5"}
    assert len(screen.wells_in("train")) == 28


def test_missing_training_treatments_show_the_replicates_read(small_screen_data):
    imaging, rnaseq = copies(small_screen_data)
    for a in (imaging, rnaseq):
        a.obs["Replicate"] = a.obs["Replicate"].astype(str).map(lambda r: f"{r}.5")  # no replicate is "3"
    with pytest.raises(PhenoseqError) as err:
        PairedScreen(imaging, rnaseq)
    message = str(err.value)
    assert "'Replicate' values are ['1.5', '2.5', '3.5', '4.5', '5.5']" in message
    assert "--splits 'train=" in message and "ScreenKeys(splits=...)" in message and "--allow-unseen" in message


def test_training_split_needs_two_wells(small_screen_data):
    imaging, rnaseq = copies(small_screen_data)
    one = lambda a: a[(a.obs["Treatment"] == "DMSO").to_numpy()].copy()  # noqa: E731  one well per replicate
    with pytest.raises(PhenoseqError, match=r"the training split .* has 1 paired well\(s\) \['R3-DMSO'\].*at least 2"):
        PairedScreen(one(imaging), one(rnaseq))
    with pytest.raises(PhenoseqError, match=r"has 1 paired well\(s\)"):  # not waived for unseen treatments
        PairedScreen(one(imaging), one(rnaseq), allow_unseen=True)
    screen = PairedScreen(one(imaging), one(rnaseq), keys=ScreenKeys(splits={"train": ["3", "5"]}))
    assert len(screen.wells_in("train")) == 2


def test_hold_out_keeps_two_training_wells(small_screen):
    treatments = small_screen.treatments_in("train")
    with pytest.raises(PhenoseqError, match=r"leaves 1 training well\(s\); at least 2 are needed"):
        small_screen.hold_out(treatments[1:])
    assert len(small_screen.hold_out(treatments[2:]).wells_in("train")) == 2


def _counts_in_layer(rnaseq):
    """X log-normalised, raw counts in layers['counts']: how many processed files arrive."""
    rnaseq.layers["counts"] = rnaseq.X.copy()
    rnaseq.X = sp.csr_matrix(np.log1p(rnaseq.X.toarray()))
    return rnaseq


def test_rna_counts_from_a_layer(small_screen_data):
    imaging, rnaseq = copies(small_screen_data)
    raw = rnaseq.X.copy()
    _counts_in_layer(rnaseq)
    with pytest.raises(PhenoseqError, match=r"rnaseq: X has \d+ non-integer values.*--layer counts \(API: rna_layer='counts'\)"
                       r".*This file has layers \['counts'\]"):
        PairedScreen(imaging, rnaseq)
    logged = rnaseq.X.copy()
    screen = PairedScreen(imaging, rnaseq, rna_layer="counts")
    assert len(screen.wells) == 140
    assert (screen.rnaseq.X != raw).nnz == 0  # the layer stands in for X everywhere downstream
    assert (rnaseq.X != logged).nnz == 0 and "counts" in rnaseq.layers  # the input is left as it was


def test_missing_or_bad_rna_layer(small_screen_data):
    imaging, rnaseq = copies(small_screen_data)
    rnaseq.layers["spliced"] = rnaseq.X.copy()
    with pytest.raises(PhenoseqError, match=r"rnaseq: has no layers\['counts'\] .*its layers are \['spliced'\]"):
        PairedScreen(imaging, rnaseq, rna_layer="counts")
    rnaseq.layers["counts"] = sp.csr_matrix(np.log1p(rnaseq.X.toarray()))
    with pytest.raises(PhenoseqError, match=r"rnaseq: layers\['counts'\] has \d+ non-integer values"):
        PairedScreen(imaging, rnaseq, rna_layer="counts")


def test_read_and_summarise_with_a_layer(tmp_path, small_screen_data):
    from phenoseq.io.summary import summarise_files

    imaging, rnaseq = copies(small_screen_data)
    _counts_in_layer(rnaseq)
    img_path, rna_path = tmp_path / "imaging.h5ad", tmp_path / "rnaseq.h5ad"
    imaging.write_h5ad(img_path)
    rnaseq.write_h5ad(rna_path)
    screen = PairedScreen.read(img_path, rna_path, rna_layer="counts")
    assert screen.summary()["genes"] == 300
    keys = ScreenKeys()
    for files in ([img_path, rna_path], [rna_path, img_path]):  # the file with the layer is the RNA file
        summary = summarise_files(files, keys, rna_layer="counts")
        assert summary["problems"] == [] and summary["paired"]["wells"] == 140
        assert summary["rnaseq"]["file"] == str(rna_path)
    assert summarise_files([rna_path], keys, rna_layer="counts")["problems"] == []
    assert any("--layer counts" in p for p in summarise_files([img_path, rna_path], keys)["problems"])
    with pytest.raises(PhenoseqError, match=r"no file has layers\['raw'\].*rnaseq.h5ad has \['counts'\]"):
        summarise_files([img_path, rna_path], keys, rna_layer="raw")
