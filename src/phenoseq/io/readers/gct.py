"""Connectivity Map GCT (1.2, 1.3 text) and GCTX (HDF5) files → expression AnnData, samples × genes.

GCT text stores genes as rows and samples as columns; phenoseq transposes to samples × genes. In GCTX the
HDF5 dataset ``/0/DATA/0/matrix`` is stored samples × genes (cmapPy writes the genes × samples frame in
column-major order), so its first axis matches ``/0/META/COL``; the reader checks the shape against the
metadata lengths instead of trusting the convention.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd

from phenoseq.errors import PhenoseqError
from phenoseq.io.readers.tables import check_names, clean_obs, require_file
from phenoseq.io.validate import preview

MISSING_META = ("-666", "-666.0", "-666.000000")  # CMap's placeholder for "no value" in metadata


def _open_text(path: Path):
    return gzip.open(path, "rt") if path.suffix == ".gz" else open(path, "r", encoding="utf-8", errors="replace")


def _meta_frame(columns: dict[str, np.ndarray], ids: pd.Index) -> pd.DataFrame:
    cleaned = {}
    for name, values in columns.items():
        series = pd.Series(values, index=ids)
        cleaned[name] = series.where(~series.astype(str).isin(MISSING_META))
    return clean_obs(pd.DataFrame(cleaned, index=ids))


def _dims(line: str, version: str, path: Path) -> list[int]:
    want = 2 if version == "#1.2" else 4
    parts = line.rstrip("\r\n").split("\t")
    try:
        dims = [int(p) for p in parts[:want]]
    except ValueError:
        dims = []
    if len(dims) != want or any(d < 0 for d in dims):
        names = "n_rows, n_columns" + ("" if want == 2 else ", n_row_metadata, n_column_metadata")
        raise PhenoseqError(f"{path}: line 2 must hold {want} tab-separated counts ({names}), got {line.strip()[:80]!r}.")
    return dims if want == 4 else dims + [1, 0]


def read_gct(path: str | os.PathLike, var_names: str | None = None) -> ad.AnnData:
    """Read a GCT 1.2 or 1.3 text file (optionally gzipped).

    Parameters
    ----------
    path
        The ``.gct`` file.
    var_names
        Row-metadata field to use as gene names (e.g. ``"pr_gene_symbol"``); default the row ids.

    Returns
    -------
    AnnData, samples × genes: ``X`` float32 values as stored (no normalisation), ``obs`` the column metadata
    (index = column ids), ``var`` the row metadata (GCT 1.2: ``Description``).
    """
    path = require_file(path)
    with _open_text(path) as handle:
        lines = handle.read().splitlines()
    if not lines or lines[0].strip() not in ("#1.2", "#1.3"):
        raise PhenoseqError(f"{path}: not a GCT file: line 1 must be '#1.2' or '#1.3', got {lines[0][:40] if lines else ''!r}.")
    version = lines[0].strip()
    if len(lines) < 3:
        raise PhenoseqError(f"{path}: the file ends before its header (it has {len(lines)} lines).")
    n_rows, n_cols, n_rmeta, n_cmeta = _dims(lines[1], version, path)
    header = lines[2].split("\t")
    if len(header) != 1 + n_rmeta + n_cols:
        raise PhenoseqError(
            f"{path}: line 2 announces {n_cols} samples and {n_rmeta} row-metadata fields, so the header (line 3) "
            f"should have {1 + n_rmeta + n_cols} fields; it has {len(header)}."
        )
    body = lines[3 : 3 + n_cmeta + n_rows]
    trailing = [ln for ln in lines[3 + n_cmeta + n_rows :] if ln.strip()]
    if len(body) != n_cmeta + n_rows or trailing:
        found = len([ln for ln in lines[3:] if ln.strip()])
        raise PhenoseqError(
            f"{path}: line 2 announces {n_cmeta} column-metadata lines and {n_rows} data rows "
            f"({n_cmeta + n_rows} lines after the header); the file has {found}. The dimensions line and the "
            "body disagree: the file is truncated or was edited by hand."
        )
    fields = [ln.split("\t") for ln in body]
    short = [(3 + i + 1, len(f)) for i, f in enumerate(fields) if len(f) != len(header)]
    if short:
        where = ", ".join(f"line {ln} has {n}" for ln, n in short[:3])
        raise PhenoseqError(f"{path}: every line must have {len(header)} tab-separated fields like the header; {where}.")
    cids = check_names(header[1 + n_rmeta :], str(path), "sample (column) ids", "Sample ids must be unique and non-empty.")
    col_meta = {f[0]: np.asarray(f[1 + n_rmeta :], dtype=object) for f in fields[:n_cmeta]}
    rows = fields[n_cmeta:]
    rids = check_names([r[0] for r in rows], str(path), "gene (row) ids", "Gene ids must be unique and non-empty.")
    values = np.asarray([r[1 + n_rmeta :] for r in rows], dtype=object)
    row_meta = {name: np.asarray([r[1 + i] for r in rows], dtype=object) for i, name in enumerate(header[1 : 1 + n_rmeta])}
    X = _parse_values(values, rids, cids, path)
    obs = _meta_frame(col_meta, cids)
    var = _meta_frame(row_meta, rids)
    return _expression(X.T, obs, var, str(path), var_names, "gct")


def _parse_values(values: np.ndarray, rids: pd.Index, cids: pd.Index, path: Path) -> np.ndarray:
    try:
        return values.astype(np.float32)
    except ValueError:
        pass
    parsed = pd.DataFrame(values).apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float32)
    text = pd.DataFrame(values).apply(lambda c: c.str.strip().str.lower())
    bad = np.isnan(parsed) & ~text.isin(["nan", "na", ""]).to_numpy()
    r, c = np.nonzero(bad)
    cells = [f"{rids[i]}/{cids[j]}={values[i, j]!r}" for i, j in zip(r[:4], c[:4])]
    raise PhenoseqError(f"{path}: {len(r)} data values are not numbers (gene/sample=value: {', '.join(cells)}).")


def read_gctx(path: str | os.PathLike, var_names: str | None = None) -> ad.AnnData:
    """Read a GCTX (HDF5) file: ``/0/DATA/0/matrix``, ``/0/META/ROW/*`` (genes), ``/0/META/COL/*`` (samples).

    Same output as :func:`read_gct`: samples × genes, ``obs`` = column metadata, ``var`` = row metadata.
    """
    import h5py

    path = require_file(path)
    try:
        handle = h5py.File(path, "r")
    except OSError as exc:
        with open(path, "rb") as raw:
            start = raw.read(4)
        hint = " It starts like a GCT text file: read it as kind='gct'." if start.startswith(b"#1.") else ""
        raise PhenoseqError(f"{path}: not an HDF5 (GCTX) file ({exc}).{hint}") from exc
    with handle:
        for node in ("0/DATA/0/matrix", "0/META/ROW/id", "0/META/COL/id"):
            if node not in handle:
                raise PhenoseqError(f"{path}: no /{node} dataset; not a GCTX file (found {preview(list(handle.keys()))}).")
        row = {k: handle["0/META/ROW"][k][()] for k in handle["0/META/ROW"]}
        col = {k: handle["0/META/COL"][k][()] for k in handle["0/META/COL"]}
        matrix = handle["0/DATA/0/matrix"][()]
    rids = check_names(_text(row.pop("id")), str(path), "gene (row) ids", "Gene ids must be unique and non-empty.")
    cids = check_names(_text(col.pop("id")), str(path), "sample (column) ids", "Sample ids must be unique and non-empty.")
    for name, meta, n in (("ROW", row, len(rids)), ("COL", col, len(cids))):
        bad = [k for k, v in meta.items() if len(v) != n]
        if bad:
            raise PhenoseqError(f"{path}: /0/META/{name} fields {bad} do not have {n} entries like /0/META/{name}/id.")
    if matrix.ndim != 2:
        raise PhenoseqError(f"{path}: /0/DATA/0/matrix has {matrix.ndim} dimensions, expected 2.")
    if matrix.shape == (len(cids), len(rids)):
        X = matrix
    elif matrix.shape == (len(rids), len(cids)):
        X = matrix.T
    else:
        raise PhenoseqError(
            f"{path}: /0/DATA/0/matrix is {matrix.shape[0]} × {matrix.shape[1]} but the metadata name "
            f"{len(cids)} samples and {len(rids)} genes."
        )
    obs = _meta_frame({k: _text(v) for k, v in col.items()}, cids)
    var = _meta_frame({k: _text(v) for k, v in row.items()}, rids)
    return _expression(np.asarray(X, dtype=np.float32), obs, var, str(path), var_names, "gctx")


def _text(values: np.ndarray) -> np.ndarray:
    if values.dtype.kind in ("S", "O"):
        return np.asarray([v.decode() if isinstance(v, bytes) else v for v in values], dtype=object)
    return values


def _expression(X: np.ndarray, obs: pd.DataFrame, var: pd.DataFrame, source: str, var_names: str | None, fmt: str) -> ad.AnnData:
    if var_names is not None:
        if var_names not in var.columns:
            raise PhenoseqError(f"{source}: no row-metadata field {var_names!r} for gene names; found {preview(list(var.columns))}.")
        var = var.assign(**{"id": var.index})
        var.index = check_names(
            var[var_names].tolist(), source, f"gene names in {var_names!r}",
            "Use the row ids (default), or aggregate the repeated genes first.",
        )
    obs.index.name = None
    var.index.name = None
    adata = ad.AnnData(X=X, obs=obs, var=var)
    adata.uns["phenoseq_input"] = {"source": source, "format": fmt, "modality": "rnaseq", "rna_kind": "expression"}
    return adata
