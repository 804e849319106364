"""Checks on each modality and on their pairing. Each returns messages; callers decide whether to raise.

Messages name the file (``source``), the column or key, and a few offending values, and say how to fix it.
"""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from phenoseq.io.keys import ScreenKeys


def preview(values, n: int = 5) -> str:
    values = list(values)
    shown = ", ".join(repr(v) for v in values[:n])
    return f"[{shown}{', …' if len(values) > n else ''}] ({len(values)} in all)"


def _data_of(X) -> np.ndarray:
    if sp.issparse(X):
        return X.data
    return np.asarray(X)


def key_text(values: pd.Series) -> pd.Series:
    """A key column as text, with whole numbers written without a decimal point.

    A replicate stored as float (``3.0``, e.g. from a pandas float column) must still name replicate ``"3"``
    of the split map; ``astype(str)`` alone would give ``"3.0"``.
    """
    if isinstance(values.dtype, pd.CategoricalDtype) and pd.api.types.is_numeric_dtype(values.cat.categories.dtype):
        values = values.astype(values.cat.categories.dtype)
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        numbers = values.to_numpy(dtype=np.float64, na_value=np.nan)
        if np.isfinite(numbers).all() and (numbers == np.round(numbers)).all():
            return pd.Series(numbers.astype(np.int64), index=values.index, name=values.name).astype(str)
    return values.astype(str)


def check_var_names(adata: ad.AnnData, source: str, what: str = "feature") -> list[str]:
    """Feature (or gene) names must be unique: columns are selected by name, so a duplicate is ambiguous."""
    if not adata.var_names.has_duplicates:
        return []
    dups = adata.var_names[adata.var_names.duplicated()].unique()
    return [
        f"{source}: duplicated {what} names (var_names) {preview(dups)}; each {what} must be named once. "
        "Drop the duplicated columns, or rename them with adata.var_names_make_unique()."
    ]


def check_obs_columns(adata: ad.AnnData, keys: ScreenKeys, source: str) -> list[str]:
    """Missing key columns and missing values in them."""
    problems = []
    missing = [c for c in keys.columns if c not in adata.obs.columns]
    if missing:
        problems.append(
            f"{source}: obs is missing column(s) {missing}; found {preview(adata.obs.columns, 12)}. "
            "Add them, or name the columns to use (e.g. --sample-key / ScreenKeys(sample=...))."
        )
    for col in keys.columns:
        if col in adata.obs.columns and adata.obs[col].isna().any():
            bad = adata.obs_names[adata.obs[col].isna().to_numpy()]
            problems.append(f"{source}: obs column {col!r} has missing values in cells {preview(bad)}.")
    if adata.obs_names.has_duplicates:
        dups = adata.obs_names[adata.obs_names.duplicated()].unique()
        problems.append(
            f"{source}: duplicated cell ids {preview(dups)}; cell ids (obs_names) must be unique "
            "(adata.obs_names_make_unique() fixes this)."
        )
    return problems


def check_features(adata: ad.AnnData, source: str) -> list[str]:
    """Imaging features must be finite numbers."""
    X = adata.X
    if X is None or adata.n_vars == 0:
        return [f"{source}: X holds no morphology features (n_vars = 0)."]
    if adata.n_obs == 0:
        return [f"{source}: X holds no cells (n_obs = 0); the file is empty. Check that it was written completely."]
    data = _data_of(X)
    if not np.issubdtype(data.dtype, np.number):
        return [f"{source}: X has non-numeric dtype {data.dtype}; morphology features must be numbers."]
    bad = ~np.isfinite(data)
    if not bad.any():
        return []
    dense = X.toarray() if sp.issparse(X) else np.asarray(X)
    rows, cols = np.nonzero(~np.isfinite(dense))
    return [
        f"{source}: X has {int(bad.sum())} NaN/inf values in {len(np.unique(rows))} cells "
        f"(cells {preview(adata.obs_names[np.unique(rows)])}, features {preview(adata.var_names[np.unique(cols)])}). "
        "Drop those cells or features, or impute them, before loading."
    ]


def check_counts(adata: ad.AnnData, source: str, matrix: str = "X") -> list[str]:
    """RNA X must hold raw counts: finite, non-negative integers, not all zero.

    ``matrix`` names where ``adata.X`` was read from (``"layers['counts']"`` when a layer stands in for X).
    """
    if adata.X is None or adata.n_obs == 0 or adata.n_vars == 0:
        return [
            f"{source}: {matrix} holds no counts (shape {adata.n_obs} cells × {adata.n_vars} genes); "
            "the file is empty. Check that it was written completely."
        ]
    data = _data_of(adata.X)
    if not np.issubdtype(data.dtype, np.number):
        return [f"{source}: {matrix} has non-numeric dtype {data.dtype}; expected raw counts."]
    problems = []
    if not np.isfinite(data).all():
        problems.append(f"{source}: {matrix} has NaN/inf values; expected raw counts.")
        return problems
    hint = _counts_hint(adata, matrix)
    if not data.any():
        # An all-zero matrix passes every value check but trains a model on nothing.
        return [
            f"{source}: {matrix} holds no non-zero count (all {adata.n_obs} × {adata.n_vars} values are 0); expected "
            f"raw counts. Check that the counts were written there.{hint}"
        ]
    if (data < 0).any():
        problems.append(
            f"{source}: {matrix} has {int((data < 0).sum())} negative values (min {data.min():g}); expected raw "
            f"counts.{hint}"
        )
    frac = data != np.round(data)
    if frac.any():
        problems.append(
            f"{source}: {matrix} has {int(frac.sum())} non-integer values (e.g. {data[frac][0]:g}); expected raw "
            f"counts, not log-normalised expression.{hint}"
        )
    return problems


def _counts_hint(adata: ad.AnnData, matrix: str) -> str:
    """How to point phenoseq at raw counts kept in a layer, naming the file's layers when it has any."""
    layers = list(adata.layers.keys())
    name = next((n for n in layers if n.lower() in ("counts", "raw_counts", "raw")), layers[0] if layers else "counts")
    found = f" This file has layers {layers}." if layers else ""
    if matrix != "X":
        return f" Name the layer that holds raw counts.{found}"
    return (f" If the raw counts are in a layer, read them from there with --layer {name} "
            f"(API: rna_layer={name!r}).{found}")


def _column_range(X) -> tuple[np.ndarray, np.ndarray]:
    if sp.issparse(X):
        return X.min(axis=0).toarray().ravel(), X.max(axis=0).toarray().ravel()
    X = np.asarray(X)
    return X.min(axis=0), X.max(axis=0)


def _usable(adata: ad.AnnData) -> bool:
    """X can be scanned for warnings (numbers, at least one cell and one variable)."""
    X = adata.X
    return X is not None and adata.n_obs > 0 and adata.n_vars > 0 and np.issubdtype(X.dtype, np.number)


def warn_zero_count_cells(adata: ad.AnnData, source: str) -> list[str]:
    """RNA cells whose counts sum to 0: valid, but they carry no expression."""
    if not _usable(adata):
        return []
    totals = np.asarray(adata.X.sum(axis=1)).ravel()
    empty = adata.obs_names[totals == 0]
    if not len(empty):
        return []
    return [
        f"{source}: {len(empty)} of {adata.n_obs} cells have zero total counts {preview(empty)}; phenoseq "
        "keeps them as all-zero profiles, but they carry no expression. Drop them "
        "(e.g. scanpy.pp.filter_cells(adata, min_counts=1))."
    ]


def warn_constant_features(adata: ad.AnnData, source: str) -> list[str]:
    """Imaging features with one value over all cells: valid, but they carry no information."""
    if not _usable(adata):
        return []
    low, high = _column_range(adata.X)
    constant = adata.var_names[low == high]  # exact, unlike a variance (NaN never compares equal: not flagged)
    if not len(constant):
        return []
    return [
        f"{source}: {len(constant)} of {adata.n_vars} features are constant over all cells {preview(constant)}; "
        "phenoseq standardises them to 0, so they carry no information. Drop them."
    ]


def well_table(adata: ad.AnnData, keys: ScreenKeys) -> pd.DataFrame:
    """One row per well: its treatment, replicate, batch, group and cell count (index = sample id).

    Assumes the key columns exist (see :func:`check_obs_columns`).
    """
    obs = pd.DataFrame({c: key_text(adata.obs[c]) for c in keys.columns}, index=adata.obs.index)
    grouped = obs.groupby(keys.sample, sort=True, observed=True)
    table = grouped.first()
    table["n_cells"] = grouped.size()
    table.index.name = keys.sample
    return table


def check_well_consistency(adata: ad.AnnData, keys: ScreenKeys, source: str) -> list[str]:
    """Each well must have a single treatment, replicate and batch."""
    obs = adata.obs[keys.columns].astype(str)
    problems = []
    for col in (keys.treatment, keys.replicate, keys.batch):
        n = obs.groupby(keys.sample, observed=True)[col].nunique()
        bad = n.index[n > 1]
        if len(bad):
            problems.append(f"{source}: wells {preview(bad)} have more than one {col!r} value; a well must have one.")
    return problems


def check_pairing(
    imaging_wells: pd.DataFrame,
    rna_wells: pd.DataFrame,
    keys: ScreenKeys,
    sources: tuple[str, str],
    min_cells: tuple[int, int] = (1, 1),
) -> tuple[list[str], list[str], list[str]]:
    """Compare the two well tables.

    Returns ``(problems, imaging_only, rna_only)``: wells in one modality only are returned separately
    so the caller can report them and drop them on request.
    """
    problems = []
    imaging_only = sorted(set(imaging_wells.index) - set(rna_wells.index))
    rna_only = sorted(set(rna_wells.index) - set(imaging_wells.index))
    common = imaging_wells.index.intersection(rna_wells.index)
    for col in (keys.treatment, keys.replicate):
        diff = common[(imaging_wells.loc[common, col] != rna_wells.loc[common, col]).to_numpy()]
        if len(diff):
            problems.append(
                f"{sources[0]} and {sources[1]} disagree on {col!r} for wells {preview(diff)}; "
                "the same well must carry the same annotation in both files."
            )
    for table, source, minimum in ((imaging_wells, sources[0], min_cells[0]), (rna_wells, sources[1], min_cells[1])):
        small = table.index[table["n_cells"] < minimum]
        if len(small):
            counts = table.loc[small, "n_cells"].tolist()
            problems.append(
                f"{source}: wells {preview(small)} have fewer than {minimum} cells ({preview(counts)}); "
                "drop them or lower the minimum."
            )
    return problems, imaging_only, rna_only


SPLITS_FIX = "--splits 'train=…;val=…;test=…' (CLI) / ScreenKeys(splits=...) (API)"


def check_training_treatments(wells: pd.DataFrame, keys: ScreenKeys) -> list[str]:
    """Every treatment must have at least one paired well in the training split."""
    train = wells[wells["split"] == "train"]
    missing = sorted(set(wells[keys.treatment]) - set(train[keys.treatment]))
    if not missing:
        return []
    # Showing the replicates read next to the split map makes a mismatch ('3.0' vs '3', 'C' vs '3') obvious.
    found = sorted(set(wells[keys.replicate].astype(str)))
    return [
        f"treatments {preview(missing)} have no paired well in the training split; the model cannot learn them. "
        f"The split map puts replicates {keys.splits.get('train', [])} in 'train' ({keys.splits}); "
        f"the data's {keys.replicate!r} values are {preview(found, 8)}. Fix the split map with {SPLITS_FIX}, "
        "or pass --allow-unseen (allow_unseen=True) if those treatments are meant to be unseen."
    ]


MIN_TRAINING_WELLS = 2
WHY_TWO_WELLS = ("the model learns how morphology maps to expression across training wells, and calibrates its "
                 "out-of-distribution flag by leaving one training well out")


def check_training_wells(wells: pd.DataFrame, keys: ScreenKeys) -> list[str]:
    """The training split needs at least two paired wells (one well leaves the OOD threshold undefined)."""
    train = wells.index[wells["split"] == "train"]
    if len(train) >= MIN_TRAINING_WELLS:
        return []
    shown = f" {preview(train)}" if len(train) else ""
    return [
        f"the training split (replicates {keys.splits.get('train', [])} of {keys.replicate!r}) has {len(train)} "
        f"paired well(s){shown}; at least {MIN_TRAINING_WELLS} are needed: "
        f"{WHY_TWO_WELLS}. Put more replicates in 'train' with {SPLITS_FIX}."
    ]
