"""Bulk / well-level expression as the RNA side: one profile per sample (GCT, GCTX, CSV/parquet tables).

Also :func:`aggregate_wells`, which turns single-cell data into such profiles (pseudo-bulk), so bulk mode can
be exercised on a simulated screen.
"""

from __future__ import annotations

import os

import anndata as ad
import numpy as np
import pandas as pd

from phenoseq.errors import PhenoseqError
from phenoseq.groups import group_means
from phenoseq.io.keys import ScreenKeys
from phenoseq.io.readers.annotate import Annotation, assign_keys
from phenoseq.io.readers.gct import read_gct, read_gctx
from phenoseq.io.readers.tables import (
    check_names,
    clean_obs,
    numeric_matrix,
    read_frame,
)
from phenoseq.io.validate import preview

# L1000 (CMap) column-metadata names, used when present and nothing else is said.
L1000_DEFAULTS = {"treatment": "pert_iname", "plate": "det_plate", "well": "det_well"}


def annotate_samples(adata: ad.AnnData, keys: ScreenKeys | None = None, annotation: Annotation | None = None) -> ad.AnnData:
    """Fill the key obs columns of a samples × genes AnnData (in place; returned for chaining).

    Each sample is its own well: ``Sample_ID`` defaults to the sample id (obs_names). Treatment defaults to
    ``pert_iname``, batch and replicate to the plate (``det_plate``), Group to ``"control"`` for the
    ``annotation.controls`` treatments (L1000 vehicle wells are ``pert_iname == "DMSO"``).
    """
    keys = keys or ScreenKeys()
    annotation = annotation or Annotation()
    obs = adata.obs.copy()
    if keys.sample not in obs.columns:
        obs[keys.sample] = obs.index.astype(str)
    source = adata.uns.get("phenoseq_input", {}).get("source", "expression table")
    obs = assign_keys(
        obs, keys, annotation, source,
        default_plate=L1000_DEFAULTS["plate"], default_well=L1000_DEFAULTS["well"],
        default_treatment=L1000_DEFAULTS["treatment"],
    )
    adata.obs = obs
    adata.uns.setdefault("phenoseq_input", {})["controls"] = [str(c) for c in annotation.controls]
    return adata


def read_expression_table(
    path: str | os.PathLike,
    keys: ScreenKeys | None = None,
    sample_column: str | None = None,
    metadata_columns: list[str] | None = None,
) -> ad.AnnData:
    """Read a samples × genes CSV/TSV/parquet table with metadata columns.

    Parameters
    ----------
    path
        The table: one row per sample.
    sample_column
        Column of sample ids; default ``keys.sample`` (``Sample_ID``) or an unnamed leading index column.
    metadata_columns
        Columns that are metadata, not genes. Default: the key columns, columns starting with ``Metadata_``
        and the sample column. Every other column must be numeric (a gene).

    Returns
    -------
    AnnData, samples × genes: ``X`` float32 as stored, ``obs`` the metadata columns (index = sample ids),
    ``var_names`` the gene columns.
    """
    keys = keys or ScreenKeys()
    frame = read_frame(path)
    source = str(path)
    if sample_column is None:
        first = str(frame.columns[0])
        sample_column = keys.sample if keys.sample in frame.columns else (first if first.startswith("Unnamed: 0") or first == "" else None)
    if sample_column is None or sample_column not in frame.columns:
        raise PhenoseqError(
            f"{source}: no sample id column ({sample_column or keys.sample!r}); found {preview(list(frame.columns), 8)}. "
            "Name it with sample_column (--sample-column)."
        )
    if metadata_columns is None:
        metadata_columns = [c for c in frame.columns if c in keys.columns or str(c).startswith("Metadata_")]
    else:
        missing = [c for c in metadata_columns if c not in frame.columns]
        if missing:
            raise PhenoseqError(f"{source}: metadata columns {missing} are not in the table; found {preview(list(frame.columns), 8)}.")
    meta = list(dict.fromkeys([sample_column] + list(metadata_columns)))
    genes = [c for c in frame.columns if c not in meta]
    if not genes:
        raise PhenoseqError(f"{source}: no gene columns left after the metadata columns {meta}.")
    gene_names = check_names(
        [str(g) if not str(g).startswith("Unnamed: ") else "" for g in genes], source, "gene columns",
        "Every gene column needs a unique name (a repeated gene suggests two tables were pasted together).",
    )
    X = numeric_matrix(frame, genes, source, what="gene")
    ids = check_names(frame[sample_column].tolist(), source, "sample ids", f"Fix column {sample_column!r}.")
    obs = clean_obs(frame[meta].set_axis(ids))
    if sample_column != keys.sample:
        obs = obs.drop(columns=[sample_column])
    adata = ad.AnnData(X=X, obs=obs, var=pd.DataFrame(index=gene_names))
    adata.uns["phenoseq_input"] = {"source": source, "format": "expression", "modality": "rnaseq", "rna_kind": "expression"}
    return adata


def read_bulk(
    path: str | os.PathLike,
    kind: str,
    keys: ScreenKeys | None = None,
    annotation: Annotation | None = None,
    var_names: str | None = None,
    sample_column: str | None = None,
    metadata_columns: list[str] | None = None,
) -> ad.AnnData:
    """Read one bulk expression file (``kind`` ``"gct"``, ``"gctx"`` or ``"expression"``) with key columns filled.

    Returns AnnData, samples × genes, ``X`` float32 normalised values, ``obs`` = sample metadata plus the
    key columns (see :func:`annotate_samples`), ``var`` = gene metadata.
    """
    if kind == "gct":
        adata = read_gct(path, var_names=var_names)
    elif kind == "gctx":
        adata = read_gctx(path, var_names=var_names)
    elif kind == "expression":
        adata = read_expression_table(path, keys, sample_column, metadata_columns)
    else:
        raise PhenoseqError(f"unknown bulk expression kind {kind!r}")
    return annotate_samples(adata, keys, annotation)


def aggregate_wells(adata: ad.AnnData, keys: ScreenKeys | None = None, layer: str | None = None) -> ad.AnnData:
    """Mean profile per well (pseudo-bulk): cells × variables → wells × variables.

    Parameters
    ----------
    adata
        Single-cell AnnData with the key obs columns (e.g. a simulated or converted screen).
    keys
        Key column names; wells are ``obs[keys.sample]``.
    layer
        Average this layer instead of ``X``.

    Returns
    -------
    AnnData, wells × variables: ``X`` float32 means (of whatever ``X`` holds: counts give mean counts per cell),
    ``obs`` index = sample ids with the key columns, every other obs column that is constant within each well,
    and ``n_cells``; ``var`` copied.
    """
    keys = keys or ScreenKeys()
    if keys.sample not in adata.obs.columns:
        raise PhenoseqError(f"cannot aggregate: obs has no well column {keys.sample!r}; found {preview(list(adata.obs.columns), 8)}.")
    wells = adata.obs[keys.sample].astype(str).to_numpy()
    names, means = group_means(adata.layers[layer] if layer is not None else adata.X, wells)
    counts = np.unique(wells, return_counts=True)[1]
    obs = adata.obs.copy()
    obs[keys.sample] = wells
    grouped = obs.groupby(keys.sample, sort=True, observed=True)
    constant = [c for c in obs.columns if c != keys.sample and (grouped[c].nunique(dropna=False) <= 1).all()]
    table = grouped[constant].first() if constant else pd.DataFrame(index=names)
    table = table.reindex(names)
    table.insert(0, keys.sample, names)
    table["n_cells"] = counts.astype(int)
    table.index = pd.Index(names)
    for col in keys.columns:
        if col in table.columns:
            table[col] = table[col].astype(str)
    out = ad.AnnData(X=means.astype(np.float32), obs=table, var=adata.var.copy())
    # Aggregation works for either modality, so no modality is recorded.
    out.uns["phenoseq_input"] = {"format": "aggregate", "aggregated_from": int(adata.n_obs)}
    return out
