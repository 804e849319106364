"""Reading delimited and parquet tables, and turning their columns into h5ad-safe obs and float matrices."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from phenoseq.errors import PhenoseqError
from phenoseq.io.validate import preview

# Spellings of "missing" that text exports use; they are NaN, not malformed numbers.
MISSING_TOKENS = frozenset({"", "nan", "na", "n/a", "null", "none"})

PARQUET_SUFFIXES = (".parquet", ".pq")
TEXT_SUFFIXES = (".csv", ".tsv", ".txt", ".csv.gz", ".tsv.gz", ".txt.gz")


def full_suffix(path: str | os.PathLike) -> str:
    """Lower-case suffix including a compression suffix, e.g. ``".csv.gz"``."""
    suffixes = [s.lower() for s in Path(path).suffixes]
    if len(suffixes) >= 2 and suffixes[-1] in (".gz", ".bz2", ".zip", ".xz"):
        return "".join(suffixes[-2:])
    return suffixes[-1] if suffixes else ""


def _separator(path: Path) -> str:
    return "\t" if full_suffix(path).startswith((".tsv", ".txt")) else ","


def require_file(path: str | os.PathLike) -> Path:
    """``path`` as a Path, or a clear error when it does not exist."""
    path = Path(path)
    if not path.exists():
        raise PhenoseqError(f"{path}: no such file")
    return path


def read_frame(path: str | os.PathLike, nrows: int | None = None) -> pd.DataFrame:
    """Read a CSV/TSV (optionally gzipped) or parquet table, failing with the file name on any problem.

    Tab-separated when the name ends in ``.tsv``/``.txt``, comma-separated otherwise. An empty table (no
    rows) is an error: there is nothing to convert.
    """
    path = require_file(path)
    try:
        if full_suffix(path) in PARQUET_SUFFIXES:
            frame = pd.read_parquet(path)
            if nrows is not None:
                frame = frame.head(nrows)
        else:
            frame = pd.read_csv(path, sep=_separator(path), nrows=nrows, low_memory=False)
    except pd.errors.EmptyDataError as exc:
        raise PhenoseqError(f"{path}: the file is empty (no header, no rows).") from exc
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError) as exc:
        raise PhenoseqError(
            f"{path}: could not be read as a {'parquet' if full_suffix(path) in PARQUET_SUFFIXES else 'delimited'} "
            f"table ({type(exc).__name__}: {exc}). Check the file is complete and every row has the header's "
            "number of fields."
        ) from exc
    if full_suffix(path) not in PARQUET_SUFFIXES:
        _check_header(path, frame)
    if nrows is None and len(frame) == 0:
        raise PhenoseqError(f"{path}: the table has a header ({len(frame.columns)} columns) but no rows.")
    return frame


def _check_header(path: Path, frame: pd.DataFrame) -> None:
    # pandas silently renames a repeated header "X" to "X.1"; a repeated gene or feature must be an error.
    mangled = [c for c in frame.columns if isinstance(c, str) and c.rpartition(".")[0] in frame.columns]
    if not mangled:
        return
    raw = pd.read_csv(path, sep=_separator(path), header=None, nrows=1, dtype=str).iloc[0]
    dups = raw[raw.duplicated() & raw.notna()].unique().tolist()
    if dups:
        raise PhenoseqError(
            f"{path}: duplicated column names {preview(dups)}; each column must be unique (a repeated gene or "
            "feature suggests two tables were pasted together)."
        )


def header_of(path: str | os.PathLike) -> list[str]:
    """Column names of a table without reading its rows."""
    path = require_file(path)
    if full_suffix(path) in PARQUET_SUFFIXES:
        import pyarrow.parquet as pq

        try:
            return list(pq.read_schema(path).names)
        except Exception as exc:  # pyarrow raises its own types for non-parquet bytes
            raise PhenoseqError(f"{path}: not a readable parquet file ({type(exc).__name__}: {exc})") from exc
    return list(read_frame(path, nrows=0).columns)


def require_columns(frame: pd.DataFrame, columns: list[str], source: str, hint: str) -> None:
    """Raise when any of ``columns`` is absent, naming the columns found and how to fix it."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise PhenoseqError(
            f"{source}: missing column(s) {missing}; found {preview(list(frame.columns), 10)}. {hint}"
        )


def numeric_matrix(frame: pd.DataFrame, columns: list[str], source: str, what: str = "feature") -> np.ndarray:
    """``frame[columns]`` as float32, rows × columns.

    Text that spells a missing value (``"nan"``, ``"NA"``, empty ...) becomes NaN; any other text is an error
    naming the columns and a few offending values, since a silently coerced label would corrupt a profile.
    """
    block = frame[columns]
    bad_columns: list[str] = []
    examples: list[str] = []
    fixed = {}
    for col in block.columns[~np.array([pd.api.types.is_numeric_dtype(t) for t in block.dtypes], dtype=bool)]:
        values = block[col]
        coerced = pd.to_numeric(values, errors="coerce")
        text = values.astype(str).str.strip().str.lower()
        bad = coerced.isna() & values.notna() & ~text.isin(MISSING_TOKENS)
        if bad.any():
            bad_columns.append(col)
            examples.extend(repr(v) for v in values[bad].unique()[:2])
        fixed[col] = coerced
    if bad_columns:
        raise PhenoseqError(
            f"{source}: {len(bad_columns)} {what} column(s) hold non-numeric values: {preview(bad_columns)}, "
            f"e.g. {', '.join(examples[:5])}. Fix those values, or (if the column is an annotation) name it "
            "Metadata_<name> so it is read as metadata."
        )
    if fixed:
        block = block.assign(**fixed)
    try:
        return block.to_numpy(dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise PhenoseqError(f"{source}: {what} columns could not be converted to numbers ({exc}).") from exc


def clean_obs(frame: pd.DataFrame, text_columns: tuple[str, ...] | list[str] = ()) -> pd.DataFrame:
    """A copy whose columns h5ad can store.

    Numbers stay numbers; text columns whose every value parses as a number become numeric (so GCT text and
    GCTX agree), except ``text_columns``; other text becomes categorical with NaN kept as missing; all-missing
    columns become float NaN (h5py cannot write an object column of NaN).
    """
    out = {}
    for col in frame.columns:
        values = frame[col]
        name = str(col)
        if pd.api.types.is_bool_dtype(values) or (pd.api.types.is_numeric_dtype(values) and name not in text_columns):
            out[name] = values
            continue
        if isinstance(values.dtype, pd.CategoricalDtype):
            values = values.astype(object)
        if values.map(lambda v: isinstance(v, bytes)).any():
            values = values.map(lambda v: v.decode() if isinstance(v, bytes) else v)
        present = values.notna()
        if not present.any():
            out[name] = pd.Series(np.nan, index=frame.index, dtype=np.float64)
            continue
        if name not in text_columns:
            numeric = pd.to_numeric(values, errors="coerce")
            if (numeric.notna() == present).all():
                out[name] = numeric
                continue
        out[name] = pd.Series(pd.Categorical(values.where(~present, values.astype(str))), index=frame.index)
    return pd.DataFrame(out, index=frame.index)


def check_names(names: pd.Index | list, source: str, what: str, hint: str) -> pd.Index:
    """Names as a string Index; empty, missing or duplicated names are an error."""
    index = pd.Index(names)
    empty = [i for i, n in enumerate(index) if pd.isna(n) or str(n).strip() == ""]
    if empty:
        raise PhenoseqError(f"{source}: {len(empty)} {what} have no name (positions {preview(empty)}). {hint}")
    index = index.astype(str)
    if index.has_duplicates:
        dups = index[index.duplicated()].unique().tolist()
        raise PhenoseqError(f"{source}: duplicated {what} {preview(dups)}; each must be unique. {hint}")
    return index
