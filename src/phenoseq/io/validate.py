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


def check_counts(adata: ad.AnnData, source: str) -> list[str]:
    """RNA X must hold raw counts: finite, non-negative integers."""
    data = _data_of(adata.X)
    if not np.issubdtype(data.dtype, np.number):
        return [f"{source}: X has non-numeric dtype {data.dtype}; expected raw counts."]
    problems = []
    if not np.isfinite(data).all():
        problems.append(f"{source}: X has NaN/inf values; expected raw counts.")
        return problems
    if (data < 0).any():
        problems.append(
            f"{source}: X has {int((data < 0).sum())} negative values (min {data.min():g}); expected raw counts. "
            "If X is already normalised, put raw counts in X (or layers['counts'])."
        )
    frac = data != np.round(data)
    if frac.any():
        problems.append(
            f"{source}: X has {int(frac.sum())} non-integer values (e.g. {data[frac][0]:g}); expected raw counts, "
            "not log-normalised expression. Put raw counts in X (or layers['counts'])."
        )
    return problems


def well_table(adata: ad.AnnData, keys: ScreenKeys) -> pd.DataFrame:
    """One row per well: its treatment, replicate, batch, group and cell count (index = sample id).

    Assumes the key columns exist (see :func:`check_obs_columns`).
    """
    obs = adata.obs[keys.columns].astype(str)
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


def check_training_treatments(wells: pd.DataFrame, keys: ScreenKeys) -> list[str]:
    """Every treatment must have at least one paired well in the training split."""
    train = wells[wells["split"] == "train"]
    missing = sorted(set(wells[keys.treatment]) - set(train[keys.treatment]))
    if not missing:
        return []
    return [
        f"treatments {preview(missing)} have no paired well in the training split "
        f"(replicates {keys.splits.get('train')}); the model cannot learn them. "
        "Change the split map or drop those treatments."
    ]
