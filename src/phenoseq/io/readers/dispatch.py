"""One entry point for every input format: :func:`read_table` picks the reader from the path and its contents.

Kinds
-----
``h5ad``          AnnData file (``.h5ad``) or ``.zarr`` store, read as it is.
``scgenescope``   scGeneScope-style ``.h5ad`` brought into the standard layout.
``cellprofiler``  CellProfiler export folder(s): ``Image.csv`` + one CSV per compartment.
``sqlite``        cytominer-database SQLite file(s).
``single_cell``   merged single-cell table (CSV/TSV/parquet) with ``Metadata_*`` and compartment features.
``gct``, ``gctx`` Connectivity Map expression files.
``expression``    samples × genes CSV/TSV/parquet table.
"""

from __future__ import annotations

import inspect
import os
from pathlib import Path

import anndata as ad

from phenoseq import progress as progress_mod
from phenoseq.errors import PhenoseqError
from phenoseq.io.keys import ScreenKeys
from phenoseq.io.readers.annotate import Annotation
from phenoseq.io.readers.hygiene import Hygiene
from phenoseq.io.readers.tables import PARQUET_SUFFIXES, TEXT_SUFFIXES, full_suffix, header_of

KINDS = ("h5ad", "scgenescope", "cellprofiler", "sqlite", "single_cell", "gct", "gctx", "expression")
IMAGING_KINDS = ("cellprofiler", "sqlite", "single_cell")
BULK_KINDS = ("gct", "gctx", "expression")
_CP_TABLES = ("Image", "Cells", "Cytoplasm", "Nuclei")


def detect_kind(path: str | os.PathLike) -> str:
    """The kind of one input, from its name and first bytes (see the module docstring)."""
    path = Path(path)
    if not path.exists():
        raise PhenoseqError(f"{path}: no such file")
    if path.is_dir():
        from phenoseq.io.files import is_zarr_store

        return "h5ad" if is_zarr_store(path) else "cellprofiler"
    with open(path, "rb") as handle:
        start = handle.read(16)
    suffix = full_suffix(path)
    if start.startswith(b"SQLite format 3"):
        return "sqlite"
    if start.startswith(b"\x89HDF"):
        return "h5ad" if suffix == ".h5ad" else "gctx"
    if start.startswith((b"#1.2", b"#1.3")):
        return "gct"  # also catches GCT text saved under a .gctx name, as in cmapPy's test data
    if suffix == ".h5ad":
        return "h5ad"  # not HDF5: read_h5ad gives the precise error
    if suffix in TEXT_SUFFIXES + PARQUET_SUFFIXES:
        columns = header_of(path)
        if path.name.split(".")[0] in _CP_TABLES and "ImageNumber" in columns:
            return "cellprofiler"
        if any(str(c).startswith(tuple(f"{t}_" for t in _CP_TABLES[1:])) for c in columns):
            return "single_cell"
        return "expression"
    raise PhenoseqError(
        f"{path}: cannot tell the format from the name {path.name!r}; supported: .h5ad, CellProfiler folders, "
        ".sqlite, .csv/.tsv(.gz)/.parquet, .gct, .gctx. Name the kind (kind=... / --kind)."
    )


def _check_options(func, options: dict, kind: str) -> None:
    accepted = set(inspect.signature(func).parameters)
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise PhenoseqError(f"option(s) {unknown} do not apply to {kind} input; it takes {sorted(accepted - {'path', 'paths', 'adata'})}.")


def read_table(
    paths: str | os.PathLike | list[str | os.PathLike],
    kind: str = "auto",
    keys: ScreenKeys | None = None,
    annotation: Annotation | None = None,
    hygiene: Hygiene | None = None,
    preprocess: bool = True,
    progress: progress_mod.Progress | None = None,
    standardise: bool = False,
    **options,
) -> ad.AnnData:
    """Read one input (or several of one kind) into phenoseq's standard AnnData.

    Parameters
    ----------
    paths
        A file or folder, or a list of them (several inputs only for the CellProfiler kinds, which are
        stacked and then processed together).
    kind
        One of :data:`KINDS`, or ``"auto"`` to detect it (``.h5ad`` files are then read as they are).
    keys, annotation
        Key column names and how to derive them (:class:`~phenoseq.io.readers.annotate.Annotation`).
    hygiene
        Feature selection and normalisation for the CellProfiler kinds (default pycytominer's).
    preprocess
        False reads CellProfiler profiles raw (no feature selection, no normalisation); other kinds are
        never transformed.
    standardise
        With ``kind="auto"``, bring ``.h5ad`` files into the standard layout (read them as ``scgenescope``)
        instead of reading them as they are: what ``phenoseq convert`` does.
    **options
        Reader-specific: ``compartments`` (CellProfiler kinds), ``embedding`` and ``modality``
        (scgenescope), ``var_names`` (gct/gctx), ``sample_column``/``metadata_columns`` (expression).
        ``None`` means the reader's default; an option given for a kind that does not take it is an error.

    Returns
    -------
    Imaging AnnData (cells × features) for the CellProfiler kinds, expression AnnData (samples × genes) for
    the bulk kinds, or the standardised/as-is AnnData for ``.h5ad``. ``uns["phenoseq_input"]`` records the
    format and source where a reader produced the data.
    """
    paths = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    if not paths:
        raise PhenoseqError("no input given")
    if kind == "auto":
        kinds = sorted({detect_kind(p) for p in paths})
        if len(kinds) > 1:
            raise PhenoseqError(f"inputs are of different kinds ({kinds}); convert one kind at a time.")
        kind = "scgenescope" if kinds == ["h5ad"] and standardise else kinds[0]
    options = {name: value for name, value in options.items() if value is not None}
    if kind not in KINDS:
        raise PhenoseqError(f"unknown input kind {kind!r}; choose one of {list(KINDS)}")
    if kind in IMAGING_KINDS:
        from phenoseq.io.readers.profiles import read_cellprofiler

        _check_options(read_cellprofiler, options, kind)
        hygiene = hygiene or Hygiene()
        if not preprocess:
            hygiene = Hygiene(feature_select=False, normalize=None)
        return read_cellprofiler(paths, kind, keys, annotation, hygiene, progress=progress, **options)
    if len(paths) > 1:
        raise PhenoseqError(f"{kind} input is read one file at a time; got {len(paths)} files.")
    path = paths[0]
    if kind == "h5ad":
        from phenoseq.io.files import read_h5ad

        _check_options(read_h5ad, options, kind)
        return read_h5ad(path, **options)
    if kind == "scgenescope":
        from phenoseq.io.files import read_h5ad
        from phenoseq.io.readers.scgenescope import guess_modality, standardise_scgenescope

        unknown = sorted(set(options) - {"embedding", "modality"})
        if unknown:
            raise PhenoseqError(f"option(s) {unknown} do not apply to scgenescope input; it takes ['embedding', 'modality'].")
        adata = read_h5ad(path)
        modality = options.get("modality", "auto")
        if modality == "auto":
            modality = guess_modality(adata)
        return standardise_scgenescope(adata, modality, options.get("embedding"), keys, annotation, str(path))
    from phenoseq.io.readers.bulk import read_bulk

    _check_options(read_bulk, options, kind)
    return read_bulk(path, kind, keys, annotation, **options)
