"""Two profile tables keyed by one id column: a morphology table and an expression table of the same samples.

The simplest paired input: one row per sample (a compound's consensus profile, a well's mean profile) in each
table, joined by an id column such as ``compound``. Every other column is a feature (morphology) or a gene
(expression), unless named as metadata. Each sample is its own well: ``Sample_ID`` = ``Treatment`` = the id,
with one replicate and batch for all rows unless the caller says otherwise. The RNA side is bulk expression
(``PairedScreen(..., rna_kind="expression")``).

>>> imaging, expression = read_paired_tables("morphology.csv.gz", "l1000.csv.gz", id_column="compound")
>>> screen = PairedScreen(imaging, expression, keys=ScreenKeys(splits={"train": ["1"]}), rna_kind="expression")
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import anndata as ad
import numpy as np
import pandas as pd

from phenoseq.errors import PhenoseqError
from phenoseq.io.keys import ScreenKeys
from phenoseq.io.readers.tables import MISSING_TOKENS, check_names, clean_obs, read_frame
from phenoseq.io.validate import preview

TREATED, CONTROL = "treated", "control"


def read_paired_tables(
    morphology_path: str | os.PathLike,
    expression_path: str | os.PathLike,
    id_column: str = "compound",
    keys: ScreenKeys | None = None,
    replicate: str = "1",
    batch: str = "1",
    metadata_columns: Sequence[str] | None = None,
    controls: Sequence[str] = (),
) -> tuple[ad.AnnData, ad.AnnData]:
    """Read a morphology and an expression profile table (CSV, TSV, optionally gzipped, or parquet) as a pair.

    Parameters
    ----------
    morphology_path, expression_path
        One row per sample; ``id_column`` names the sample in both; the other columns are numbers.
    id_column
        The column holding each row's id (e.g. a compound id). Ids must be unique within each table and the
        two tables must hold the same ids (in any order).
    keys
        The obs column names to fill (default :class:`ScreenKeys`); the split map is not used here.
    replicate, batch
        The replicate and batch of every row (put ``replicate`` in the training split of the keys you build
        the screen with, e.g. ``ScreenKeys(splits={"train": ["1"]})``).
    metadata_columns
        Columns, in either table, that are annotations (kept in that table's ``obs``) rather than features or
        genes. Default: the columns whose name starts with ``Metadata_``. Every other column must be numeric.
    controls
        Ids of negative-control samples (e.g. ``"DMSO"``): their group is ``"control"``, the others' ``"treated"``.

    Returns
    -------
    ``(imaging, expression)``: AnnData, samples × features and samples × genes, ``X`` float32, rows in the same
    order (the morphology table's), obs index = the ids, ``obs`` = the key columns (sample = treatment = id,
    replicate, batch, group) and the metadata columns of that table.

    Raises
    ------
    PhenoseqError
        When a file cannot be read, the id column is missing, ids are missing or repeated, the tables hold
        different ids, a metadata column is absent or clashes with a key column, or a feature/gene column holds
        text, NaN or infinite values. Each message names the file, the columns and a few offending values.
    """
    keys = keys or ScreenKeys()
    sources = (str(morphology_path), str(expression_path))
    frames = (read_frame(morphology_path), read_frame(expression_path))
    for frame, source in zip(frames, sources):
        if id_column not in frame.columns:
            raise PhenoseqError(
                f"{source}: no id column {id_column!r}; found {preview(list(map(str, frame.columns)), 8)}. "
                "Name the column that identifies each row with id_column= (the same name in both tables)."
            )
    metadata = _metadata_columns(frames, sources, id_column, keys, metadata_columns)
    ids = [_ids(frame, id_column, source) for frame, source in zip(frames, sources)]
    _check_same_ids(ids, sources, id_column)
    unknown = sorted(set(map(str, controls)) - set(ids[0]))
    if unknown:
        raise PhenoseqError(
            f"controls {preview(unknown)} are not ids of column {id_column!r} in {sources[0]}; name control rows "
            "by their id."
        )
    order = pd.Index(ids[0])
    out = []
    for frame, source, own_ids, modality, what in zip(frames, sources, ids, ("imaging", "rnaseq"), ("feature", "gene")):
        frame = frame.set_axis(pd.Index(own_ids)).loc[order]
        meta = [c for c in frame.columns if c in metadata]
        values = [c for c in frame.columns if c != id_column and c not in metadata]
        if not values:
            raise PhenoseqError(
                f"{source}: no {what} columns left besides the id column {id_column!r} and metadata {meta}; "
                f"the table must hold one numeric column per {what}."
            )
        names = check_names([str(c) for c in values], source, f"{what} columns",
                            f"Every {what} column needs a unique name.")
        X = _finite_matrix(frame, values, source, what)
        obs = clean_obs(frame[meta]) if meta else pd.DataFrame(index=order)
        key_obs = pd.DataFrame({
            keys.sample: order.to_numpy(),
            keys.treatment: order.to_numpy(),
            keys.replicate: str(replicate),
            keys.batch: str(batch),
            keys.group: [CONTROL if i in set(map(str, controls)) else TREATED for i in order],
        }, index=order)
        obs = pd.concat([key_obs, obs.set_axis(order)], axis=1)
        for col in keys.columns:
            obs[col] = obs[col].astype(str).astype("category")
        adata = ad.AnnData(X=X, obs=obs, var=pd.DataFrame(index=names))
        adata.uns["phenoseq_input"] = {"source": source, "format": "paired-table", "modality": modality,
                                       "id_column": id_column, "controls": [str(c) for c in controls]}
        if modality == "rnaseq":
            adata.uns["phenoseq_input"]["rna_kind"] = "expression"
        out.append(adata)
    return out[0], out[1]


def _metadata_columns(frames, sources, id_column: str, keys: ScreenKeys, named: Sequence[str] | None) -> set[str]:
    if named is None:
        return {str(c) for f in frames for c in f.columns if str(c).startswith("Metadata_")}
    named = list(named)
    missing = [c for c in named if all(c not in f.columns for f in frames)]
    if missing:
        raise PhenoseqError(
            f"metadata columns {missing} are in neither {sources[0]} nor {sources[1]}; "
            f"columns found: {preview(list(map(str, frames[0].columns)), 6)} and "
            f"{preview(list(map(str, frames[1].columns)), 6)}. Fix the names passed as metadata_columns."
        )
    clash = [c for c in named if c in keys.columns and c != id_column]
    if clash:
        raise PhenoseqError(
            f"metadata columns {clash} have the names of key columns {keys.columns}, which are set from the id "
            "column, replicate, batch and controls; rename those columns in the tables (or use other ScreenKeys)."
        )
    return set(named) - {id_column}


def _ids(frame: pd.DataFrame, id_column: str, source: str) -> list[str]:
    values = frame[id_column]
    text = values.astype(str).str.strip()
    empty = np.flatnonzero((values.isna() | text.str.lower().isin(MISSING_TOKENS)).to_numpy())
    if len(empty):
        raise PhenoseqError(
            f"{source}: column {id_column!r} has {len(empty)} missing ids (data rows {preview((empty + 1).tolist())}); "
            "every row needs an id: fill them in or drop those rows."
        )
    ids = text.tolist()
    counts = pd.Series(ids).value_counts()
    repeated = counts[counts > 1]
    if len(repeated):
        shown = [f"{i} ×{n}" for i, n in repeated.items()]
        raise PhenoseqError(
            f"{source}: column {id_column!r} repeats ids {preview(shown)}; each id must appear once (one profile per "
            "sample). Aggregate the replicate rows (e.g. their mean or median) or give them distinct ids."
        )
    return ids


def _check_same_ids(ids: list[list[str]], sources: tuple[str, str], id_column: str) -> None:
    a, b = set(ids[0]), set(ids[1])
    if a == b:
        return
    only_a, only_b = sorted(a - b), sorted(b - a)
    raise PhenoseqError(
        f"the two tables hold different {id_column!r} ids: {len(only_a)} only in {sources[0]} {preview(only_a)}, "
        f"{len(only_b)} only in {sources[1]} {preview(only_b)} ({len(a & b)} shared). Both tables must hold the "
        "same samples: drop the unmatched rows, or check that both use the same identifiers."
    )


def _finite_matrix(frame: pd.DataFrame, columns: list, source: str, what: str) -> np.ndarray:
    """``frame[columns]`` as float32; text, NaN and infinite values are errors naming the columns and rows."""
    block = frame[columns]
    text_columns = [c for c, t in zip(block.columns, block.dtypes) if not pd.api.types.is_numeric_dtype(t)
                    or pd.api.types.is_bool_dtype(t)]
    if text_columns:
        examples = []
        for c in text_columns[:3]:
            coerced = pd.to_numeric(block[c], errors="coerce")
            bad = block[c][coerced.isna() & block[c].notna()]
            examples += [f"{c}={v!r}" for v in bad.unique()[:2]]
        raise PhenoseqError(
            f"{source}: {len(text_columns)} {what} column(s) are not numeric: {preview(list(map(str, text_columns)))}"
            f"{', e.g. ' + ', '.join(examples) if examples else ''}. Fix those values, or, if a column is an "
            "annotation, name it in metadata_columns= so it is kept in obs."
        )
    with np.errstate(over="ignore"):
        X = block.to_numpy(dtype=np.float64).astype(np.float32)
    bad = ~np.isfinite(X)
    if bad.any():
        rows, cols = np.flatnonzero(bad.any(axis=1)), np.flatnonzero(bad.any(axis=0))
        n_nan = int(np.isnan(X).sum())
        raise PhenoseqError(
            f"{source}: {n_nan} NaN (missing) and {int(bad.sum()) - n_nan} infinite (or beyond float32) values in "
            f"{len(cols)} {what} column(s) {preview([str(columns[j]) for j in cols])}, rows "
            f"{preview(frame.index[rows].astype(str).tolist())}. Drop those {what}s or rows, or impute the values, "
            "before reading; every row must be a complete profile."
        )
    return X
