"""Filling phenoseq's key obs columns (well, treatment, replicate, batch, control flag) from what a file has.

Defaults, each overridable through :class:`Annotation`:

* **Sample_ID** (the well): kept when the file has it; otherwise ``"<plate>_<well>"`` from the plate and
  well columns (``Metadata_Plate``/``Metadata_Well`` for Cell Painting, ``det_plate``/``det_well`` for
  L1000), or the well alone when there is no plate column.
* **Treatment**: from ``treatment_column`` when given (a column of the data, or of the plate map: ``C`` is
  looked up as ``C`` then ``Metadata_C``), else from a plate map (``pert_iname`` when a compound table is
  given, else ``broad_sample``; wells with no sample get the plate map's ``solvent``), else kept when the
  file has it. Otherwise it stays absent and validation says so.
* **Replicate** and **batch**: ``replicate_column``/``batch_column`` when given, kept when present,
  otherwise the plate (one plate = one replicate = one batch, the safe assumption when nothing says more).
* **Group**: ``"control"`` when the treatment is one of ``controls`` (default ``("DMSO",)``) or the compound
  table marks it ``control_type == "negcon"``; ``"treated"`` otherwise.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from phenoseq.errors import PhenoseqError
from phenoseq.io.keys import ScreenKeys
from phenoseq.io.readers.tables import clean_obs, read_frame
from phenoseq.io.validate import preview

_WELL = re.compile(r"^\s*([A-Za-z]{1,2})\s*0*(\d{1,3})\s*$")


@dataclass
class Annotation:
    """How to derive the key columns. ``None`` means "the reader's default" (see the module docstring).

    Parameters
    ----------
    platemap
        Plate map table (path or DataFrame) with one row per well: ``platemap_well`` and ``platemap_sample``
        columns, optionally ``solvent`` and ``platemap_plate`` (for maps that cover several plates).
    compounds
        Compound table (path or DataFrame) keyed by ``platemap_sample`` (e.g. JUMP's
        ``compound_metadata.tsv`` with ``broad_sample``, ``pert_iname``, ``pert_type``, ``control_type``).
    treatment_column, replicate_column, batch_column
        obs columns to take the treatment, replicate and batch from.
    plate_column, well_column
        obs columns holding the plate barcode and the well position.
    controls
        Treatment names that are negative controls (``Group == "control"``).
    """

    platemap: str | os.PathLike | pd.DataFrame | None = None
    compounds: str | os.PathLike | pd.DataFrame | None = None
    platemap_well: str = "well_position"
    platemap_sample: str = "broad_sample"
    platemap_plate: str | None = None
    treatment_column: str | list[str] | None = None
    replicate_column: str | None = None
    batch_column: str | None = None
    plate_column: str | None = None
    well_column: str | None = None
    controls: tuple[str, ...] = ("DMSO",)


def normalise_well(well: object) -> str:
    """``"A1"``, ``"a01"`` and ``"A01"`` all become ``"A01"``; anything else is returned as text."""
    match = _WELL.match(str(well))
    if not match:
        return str(well)
    return f"{match.group(1).upper()}{int(match.group(2)):02d}"


def _table(table: str | os.PathLike | pd.DataFrame, what: str) -> tuple[pd.DataFrame, str]:
    if isinstance(table, pd.DataFrame):
        return table.copy(), what
    path = Path(table)
    return read_frame(path), str(path)


def _compound_table(ann: Annotation) -> tuple[pd.DataFrame, str]:
    compounds, source = _table(ann.compounds, "compound table")
    key = ann.platemap_sample
    if key not in compounds.columns:
        raise PhenoseqError(
            f"{source}: compound table has no {key!r} column to join the plate map on; found "
            f"{preview(list(compounds.columns), 10)}. Name the join column with platemap_sample (--platemap-sample)."
        )
    compounds = compounds[compounds[key].notna()]
    # JUMP's table lists some compounds twice (same id, same name); only disagreeing duplicates are an error.
    if "pert_iname" in compounds.columns:
        names = compounds.groupby(key)["pert_iname"].nunique()
        conflicting = names.index[names > 1].tolist()
        if conflicting:
            raise PhenoseqError(
                f"{source}: compounds {preview(conflicting)} appear with different pert_iname values; "
                "keep one row per compound."
            )
    return compounds.drop_duplicates(subset=[key], keep="first"), source


def join_platemap(obs: pd.DataFrame, ann: Annotation, plate_col: str | None, well_col: str, source: str) -> pd.DataFrame:
    """obs with the plate map's (and compound table's) columns added as ``Metadata_<column>``.

    Every well in ``obs`` must be in the plate map; the error lists the wells that are not.
    """
    platemap, pm_source = _table(ann.platemap, "plate map")
    wanted = [ann.platemap_well, ann.platemap_sample] + ([ann.platemap_plate] if ann.platemap_plate else [])
    missing = [c for c in wanted if c not in platemap.columns]
    if missing:
        raise PhenoseqError(
            f"{pm_source}: plate map is missing column(s) {missing}; found {preview(list(platemap.columns), 10)}. "
            "Name its columns with platemap_well / platemap_sample (--platemap-well / --platemap-sample)."
        )
    if well_col not in obs.columns:
        raise PhenoseqError(
            f"{source}: no well column {well_col!r} to join the plate map on; found "
            f"{preview([c for c in obs.columns if c.startswith('Metadata_')], 10)}. Name it with well_column (--well-column)."
        )
    join = ["_well"] + (["_plate"] if ann.platemap_plate else [])
    platemap = platemap.assign(_well=platemap[ann.platemap_well].astype(str).map(normalise_well))
    if ann.platemap_plate:
        if plate_col is None or plate_col not in obs.columns:
            raise PhenoseqError(f"{source}: the plate map has plates ({ann.platemap_plate!r}) but the data has no plate column.")
        platemap["_plate"] = platemap[ann.platemap_plate].astype(str)
    dups = platemap.loc[platemap.duplicated(join, keep=False), ann.platemap_well].unique().tolist()
    if dups:
        raise PhenoseqError(f"{pm_source}: wells {preview(dups)} appear more than once in the plate map; keep one row per well.")
    if ann.compounds is not None:
        compounds, _ = _compound_table(ann)
        unknown = sorted(set(platemap[ann.platemap_sample].dropna()) - set(compounds[ann.platemap_sample]))
        if unknown:
            raise PhenoseqError(
                f"{pm_source}: plate-map samples {preview(unknown)} are not in the compound table; "
                "use the compound table that belongs to this plate map."
            )
        extra = [c for c in compounds.columns if c != ann.platemap_sample and c not in platemap.columns]
        platemap = platemap.merge(compounds[[ann.platemap_sample] + extra], on=ann.platemap_sample, how="left")
    keyed = obs.assign(_well=obs[well_col].astype(str).map(normalise_well))
    if ann.platemap_plate:
        keyed["_plate"] = obs[plate_col].astype(str)
    known = pd.MultiIndex.from_frame(platemap[join].astype(str))
    have = pd.MultiIndex.from_frame(keyed[join].astype(str))
    absent = have[~have.isin(known)].unique()
    if len(absent):
        shown = [" ".join(t) if isinstance(t, tuple) else t for t in absent]
        raise PhenoseqError(
            f"{source}: wells {preview(shown)} are not in the plate map {pm_source} (it has "
            f"{preview(platemap[ann.platemap_well].tolist(), 4)}). Use the plate map of this plate, or fix the "
            "well names (well_column)."
        )
    renamed = {c: c if c.startswith("Metadata_") else f"Metadata_{c}" for c in platemap.columns if c not in join}
    # The plate map the user passed wins over annotations already in the file.
    keyed = keyed.drop(columns=[c for c in renamed.values() if c in keyed.columns])
    annotated = keyed.merge(platemap.rename(columns=renamed), on=join, how="left", validate="many_to_one")
    annotated.index = obs.index
    return annotated.drop(columns=join)


def _treatment_from_platemap(obs: pd.DataFrame, ann: Annotation, source: str) -> pd.Series:
    sample = obs[f"Metadata_{ann.platemap_sample}"]
    name = obs["Metadata_pert_iname"] if "Metadata_pert_iname" in obs.columns else sample
    treatment = name.where(name.notna(), sample)
    empty = treatment.isna()
    if empty.any():
        if "Metadata_solvent" not in obs.columns:
            raise PhenoseqError(
                f"{source}: wells {preview(obs.index[empty.to_numpy()].unique())} have no {ann.platemap_sample!r} in "
                "the plate map and it has no 'solvent' column to name them by; fill them in the plate map."
            )
        treatment = treatment.where(~empty, obs["Metadata_solvent"])
    return treatment.astype(str)


def _column(obs: pd.DataFrame, column: str, source: str, option: str) -> pd.Series:
    if column not in obs.columns:
        raise PhenoseqError(
            f"{source}: {option} names column {column!r}, which is not there; found "
            f"{preview(list(obs.columns), 10)}."
        )
    values = obs[column]
    if values.isna().any():
        raise PhenoseqError(f"{source}: column {column!r} ({option}) has {int(values.isna().sum())} missing values; fill them in.")
    return values.astype(str)


def _treatment_column_name(obs: pd.DataFrame, column: str, ann: Annotation, source: str,
                           data_columns: list[str]) -> str:
    """The obs column that ``treatment_column`` names: a column of the data, or of the plate map.

    Plate-map (and compound-table) columns are joined as ``Metadata_<column>``, so ``pert_iname`` is
    looked up as ``Metadata_pert_iname`` too.
    """
    if column in obs.columns:
        return column
    joined = f"Metadata_{column}"
    if ann.platemap is not None and joined in obs.columns:
        return joined
    if ann.platemap is None:
        _column(obs, column, source, "treatment_column")  # raises the usual "not there" error
    from_map = [c for c in obs.columns if c not in data_columns]
    raise PhenoseqError(
        f"{source}: treatment_column (--treatment-column) names column {column!r}, which is neither in the data "
        f"nor in the plate map (looked for {column!r} and {joined!r}); data columns {preview(data_columns, 8)}, "
        f"plate-map columns {preview(from_map, 8)}. Name one of those."
    )


def _treatment_from_columns(obs: pd.DataFrame, ann: Annotation, source: str, data_columns: list[str]) -> pd.Series:
    """Treatment from ``treatment_column`` (several columns are joined with ``@``, e.g. compound@dose)."""
    cols = [ann.treatment_column] if isinstance(ann.treatment_column, str) else list(ann.treatment_column)
    names = [_treatment_column_name(obs, c, ann, source, data_columns) for c in cols]
    parts = [_column(obs, c, source, "treatment_column") for c in names]
    return parts[0].str.cat(parts[1:], sep="@") if len(parts) > 1 else parts[0]


def assign_keys(
    obs: pd.DataFrame,
    keys: ScreenKeys,
    ann: Annotation,
    source: str,
    default_plate: str | None = None,
    default_well: str | None = None,
    default_treatment: str | None = None,
) -> pd.DataFrame:
    """obs with the five key columns filled in as text (see the module docstring for the rules).

    Key columns that cannot be derived are left absent: validation then reports them with a hint.
    """
    obs = obs.copy()
    plate_col = ann.plate_column or default_plate
    well_col = ann.well_column or default_well
    has_plate = plate_col is not None and plate_col in obs.columns
    if ann.plate_column and not has_plate:
        _column(obs, ann.plate_column, source, "plate_column")
    data_columns = list(obs.columns)
    if ann.platemap is not None:
        obs = join_platemap(obs, ann, plate_col if has_plate else None, well_col or "Metadata_Well", source)
    if ann.treatment_column is not None:
        # An explicit column wins over the plate map's default (its sample id or pert_iname).
        obs[keys.treatment] = _treatment_from_columns(obs, ann, source, data_columns)
    elif ann.platemap is not None:
        obs[keys.treatment] = _treatment_from_platemap(obs, ann, source)
    elif keys.treatment not in obs.columns and default_treatment is not None and default_treatment in obs.columns:
        obs[keys.treatment] = obs[default_treatment]
    if keys.sample not in obs.columns and well_col is not None and well_col in obs.columns:
        well = obs[well_col].astype(str).map(normalise_well)
        obs[keys.sample] = (obs[plate_col].astype(str) + "_" + well) if has_plate else well
    for key, option, value in ((keys.replicate, "replicate_column", ann.replicate_column),
                               (keys.batch, "batch_column", ann.batch_column)):
        if value is not None:
            obs[key] = _column(obs, value, source, option)
        elif key not in obs.columns and has_plate:
            obs[key] = obs[plate_col].astype(str)
    if keys.group not in obs.columns and keys.treatment in obs.columns:
        control = obs[keys.treatment].astype(str).isin([str(c) for c in ann.controls])
        if "Metadata_control_type" in obs.columns:
            control |= (obs["Metadata_control_type"].astype(str) == "negcon").to_numpy()
        obs[keys.group] = np.where(control, "control", "treated")
    return clean_obs(obs, text_columns=keys.columns)
