"""CellProfiler single-cell output as one merged table: per-compartment CSVs, cytominer-database SQLite, merged tables.

All three routes give the same layout (pycytominer's ``SingleCells`` conventions): one row per cell,
``Metadata_*`` columns (image metadata with any ``Image_`` prefix removed, plus object ids) and features
prefixed with their compartment (``Cells_AreaShape_Area``). Compartments are linked as pycytominer does:
Cytoplasm's ``Parent_Cells``/``Parent_Nuclei`` point at the Cells/Nuclei object numbers; without those
columns objects are matched on ``(ImageNumber, ObjectNumber)``.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pandas as pd

from phenoseq import progress as progress_mod
from phenoseq.errors import PhenoseqError
from phenoseq.io.readers.tables import read_frame, require_file
from phenoseq.io.validate import preview

COMPARTMENTS = ("Cells", "Cytoplasm", "Nuclei")
IMAGE_KEYS = ("TableNumber", "ImageNumber")

# Object bookkeeping that CellProfiler writes beside the measurements: identifiers, not morphology.
_ID_PARTS = ("Parent_", "Number_Object_Number")


def _as_metadata(columns: list[str], compartments: tuple[str, ...]) -> dict[str, str]:
    """Renames that move ``<Comp>_Parent_*``/``<Comp>_Number_Object_Number`` and ``Image_Metadata_*`` to metadata."""
    renames = {}
    for col in columns:
        if col.startswith("Image_Metadata_"):
            renames[col] = col.removeprefix("Image_")
            continue
        for comp in compartments:
            rest = col.removeprefix(f"{comp}_")
            if rest != col and rest.startswith(_ID_PARTS):
                renames[col] = f"Metadata_{col}"
    return {old: new for old, new in renames.items() if new not in columns}


def merge_compartments(
    image: pd.DataFrame, objects: dict[str, pd.DataFrame], source: str
) -> pd.DataFrame:
    """One row per cell from an image table and per-compartment object tables.

    ``objects`` maps a compartment name to its table, whose feature columns are already prefixed with the
    compartment; both kinds of table carry the image keys (``ImageNumber``, and ``TableNumber`` in
    cytominer-database files), object tables also ``ObjectNumber``.
    """
    comps = list(objects)
    keys = [k for k in IMAGE_KEYS if k in image.columns and all(k in t.columns for t in objects.values())]
    if "ImageNumber" not in keys:
        raise PhenoseqError(
            f"{source}: the Image and compartment tables do not all have an 'ImageNumber' column to join on; "
            "these do not look like CellProfiler output."
        )
    renamed = {}
    for comp, table in objects.items():
        if "ObjectNumber" not in table.columns:
            raise PhenoseqError(f"{source}: the {comp} table has no 'ObjectNumber' column; found {preview(list(table.columns), 6)}.")
        dup = table.duplicated(keys + ["ObjectNumber"])
        if dup.any():
            raise PhenoseqError(
                f"{source}: the {comp} table has {int(dup.sum())} repeated (ImageNumber, ObjectNumber) pairs; each "
                "object must appear once. Was the same site exported twice?"
            )
        renamed[comp] = table.rename(columns={"ObjectNumber": f"Metadata_{comp}_ObjectNumber"})
    linked = "Cytoplasm" in objects and all(
        f"Cytoplasm_Parent_{c}" in objects["Cytoplasm"].columns for c in comps if c != "Cytoplasm"
    )
    base = "Cytoplasm" if linked else comps[0]
    merged = renamed[base]
    unmatched = {}
    for comp in comps:
        if comp == base:
            continue
        left = f"Cytoplasm_Parent_{comp}" if linked else f"Metadata_{base}_ObjectNumber"
        before = len(merged)
        merged = merged.merge(renamed[comp], left_on=keys + [left], right_on=keys + [f"Metadata_{comp}_ObjectNumber"], how="inner")
        unmatched[comp] = before - len(merged)
    if merged.empty:
        raise PhenoseqError(
            f"{source}: no object could be matched across compartments {comps} (unmatched per join: {unmatched}); "
            "the tables do not describe the same cells."
        )
    image_meta = image[keys + [c for c in image.columns if c.startswith("Metadata_") and c not in keys]]
    if image_meta.duplicated(keys).any():
        raise PhenoseqError(f"{source}: the Image table repeats image keys {keys}; each image must appear once.")
    cells = merged.merge(image_meta, on=keys, how="left", indicator=True)
    orphans = cells["_merge"] == "left_only"
    if orphans.any():
        raise PhenoseqError(
            f"{source}: {int(orphans.sum())} objects belong to images missing from the Image table "
            f"(ImageNumber {preview(cells.loc[orphans, 'ImageNumber'].unique().tolist())})."
        )
    cells = cells.drop(columns="_merge").rename(columns={k: f"Metadata_{k}" for k in keys})
    main = "Cells" if "Cells" in comps else base
    cells["Metadata_ObjectNumber"] = cells[f"Metadata_{main}_ObjectNumber"]
    cells = cells.rename(columns=_as_metadata(list(cells.columns), tuple(comps)))
    cells.attrs["unmatched_objects"] = unmatched
    return cells


def _prefix(table: pd.DataFrame, comp: str) -> pd.DataFrame:
    ids = {"ImageNumber", "ObjectNumber", "TableNumber"}
    return table.rename(columns={c: f"{comp}_{c}" for c in table.columns if c not in ids and not c.startswith(f"{comp}_")})


def site_folders(path: str | os.PathLike) -> list[Path]:
    """Folders holding a CellProfiler ``Image.csv``: ``path`` itself, or its sub-folders (e.g. one per site)."""
    path = require_file(path)
    if path.is_file():
        path = path.parent
    if (path / "Image.csv").is_file():
        return [path]
    found = sorted(p.parent for p in path.rglob("Image.csv"))
    if not found:
        raise PhenoseqError(
            f"{path}: no Image.csv here or below; a CellProfiler export folder holds Image.csv and one CSV per "
            f"compartment ({', '.join(COMPARTMENTS)})."
        )
    return found


def read_cellprofiler_folder(folder: str | os.PathLike, compartments: tuple[str, ...] = COMPARTMENTS) -> pd.DataFrame:
    """Merge one CellProfiler export folder (``Image.csv`` + ``<Compartment>.csv``) into one row per cell."""
    folder = Path(folder)
    missing = [f"{c}.csv" for c in ("Image",) + tuple(compartments) if not (folder / f"{c}.csv").is_file()]
    if missing:
        present = sorted(p.name for p in folder.glob("*.csv"))
        raise PhenoseqError(
            f"{folder}: missing {missing} (found {present}). Pass the compartments that were measured "
            "(compartments=... / --compartments)."
        )
    image = read_frame(folder / "Image.csv")
    objects = {c: _prefix(read_frame(folder / f"{c}.csv"), c) for c in compartments}
    return merge_compartments(image, objects, str(folder))


def read_cytominer_sqlite(path: str | os.PathLike, compartments: tuple[str, ...] = COMPARTMENTS) -> pd.DataFrame:
    """Merge a cytominer-database SQLite file (tables ``Image`` and one per compartment) into one row per cell."""
    path = require_file(path)
    with open(path, "rb") as handle:
        if handle.read(16) != b"SQLite format 3\x00":
            raise PhenoseqError(f"{path}: not an SQLite database file.")
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        missing = [t for t in ("Image",) + tuple(compartments) if t not in tables]
        if missing:
            raise PhenoseqError(
                f"{path}: tables {missing} are missing (found {sorted(tables)}); pass the compartments that were "
                "measured (--compartments)."
            )
        frames = {t: pd.read_sql_query(f'SELECT * FROM "{t}"', con) for t in ("Image",) + tuple(compartments)}
    except sqlite3.DatabaseError as exc:
        raise PhenoseqError(f"{path}: could not read the SQLite database ({exc}).") from exc
    finally:
        con.close()
    for name, frame in frames.items():
        if frame.empty:
            raise PhenoseqError(f"{path}: table {name!r} has no rows.")
    image = frames.pop("Image")
    image = image.rename(columns=_as_metadata(list(image.columns), ()))
    objects = {c: _prefix(frames[c], c) for c in compartments}
    return merge_compartments(image, objects, str(path))


def read_single_cell_table(path: str | os.PathLike, compartments: tuple[str, ...] = COMPARTMENTS) -> pd.DataFrame:
    """A merged single-cell table (pycytominer ``SingleCells`` output, CSV or parquet), metadata names unified."""
    frame = read_frame(path)
    return frame.rename(columns=_as_metadata(list(frame.columns), compartments))


def read_cellprofiler_tables(
    paths: list[str | os.PathLike],
    kind: str,
    compartments: tuple[str, ...] = COMPARTMENTS,
    progress: progress_mod.Progress | None = None,
) -> pd.DataFrame:
    """Read and stack several inputs of one ``kind`` (``"cellprofiler"``, ``"sqlite"`` or ``"single_cell"``).

    Each row gets ``Metadata_Source`` (the file or folder it came from), since CellProfiler's
    ``ImageNumber`` restarts in every export.
    """
    if kind == "cellprofiler":
        units = [folder for p in paths for folder in site_folders(p)]
        reader = read_cellprofiler_folder
    elif kind == "sqlite":
        units, reader = [Path(p) for p in paths], read_cytominer_sqlite
    elif kind == "single_cell":
        units, reader = [Path(p) for p in paths], read_single_cell_table
    else:
        raise PhenoseqError(f"unknown CellProfiler input kind {kind!r}")
    frames = []
    for unit in progress_mod.get(progress).track(units, f"reading {kind} input"):
        frame = reader(unit, compartments)
        frames.append(frame.assign(Metadata_Source=str(unit)))
    if len(frames) == 1:
        return frames[0]
    columns = [set(f.columns) for f in frames]
    common = set.intersection(*columns)
    if any(c != common for c in columns):
        odd = sorted(set.union(*columns) - common)
        raise PhenoseqError(
            f"the {len(frames)} inputs do not have the same columns ({len(odd)} differ, e.g. {preview(odd)}); "
            "convert inputs measured with different pipelines separately."
        )
    return pd.concat(frames, ignore_index=True)
