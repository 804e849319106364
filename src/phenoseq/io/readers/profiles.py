"""Single-cell morphology profiles (CellProfiler / pycytominer) → phenoseq's imaging AnnData."""

from __future__ import annotations

import os

import anndata as ad
import pandas as pd

from phenoseq import progress as progress_mod
from phenoseq.errors import PhenoseqError
from phenoseq.io.keys import ScreenKeys
from phenoseq.io.readers.annotate import Annotation, assign_keys
from phenoseq.io.readers.cellprofiler import COMPARTMENTS, read_cellprofiler_tables
from phenoseq.io.readers.hygiene import Hygiene, apply_hygiene
from phenoseq.io.readers.tables import check_names, clean_obs, numeric_matrix
from phenoseq.io.validate import preview


def cell_names(obs: pd.DataFrame, keys: ScreenKeys) -> pd.Index:
    """``"<Sample_ID>-<n>"`` (n counts cells within the well), or ``"cell-<n>"`` without a well column."""
    if keys.sample in obs.columns:
        n = obs.groupby(keys.sample, sort=False, observed=True).cumcount()
        return pd.Index(obs[keys.sample].astype(str) + "-" + n.map("{:05d}".format))
    return pd.Index([f"cell-{i:06d}" for i in range(len(obs))])


def profiles_to_anndata(
    frame: pd.DataFrame,
    source: str,
    keys: ScreenKeys | None = None,
    annotation: Annotation | None = None,
    hygiene: Hygiene | None = None,
    compartments: tuple[str, ...] = COMPARTMENTS,
) -> ad.AnnData:
    """Turn a merged single-cell table into an imaging AnnData.

    Parameters
    ----------
    frame
        One row per cell: ``Metadata_*`` columns and features prefixed ``<Compartment>_``.
    source
        Name used in messages.
    keys, annotation
        Key column names and how to derive them (see :mod:`phenoseq.io.readers.annotate`); the plate column
        defaults to ``Metadata_Plate`` and the well column to ``Metadata_Well``.
    hygiene
        Feature selection and normalisation (:class:`~phenoseq.io.readers.hygiene.Hygiene`); None = no
        processing (raw features, as in the file).

    Returns
    -------
    AnnData, cells × features: ``X`` float32, ``var_names`` the feature names, ``obs`` the key columns (text)
    and every ``Metadata_*`` column. ``uns["phenoseq_input"]`` records the source and settings,
    ``uns["phenoseq_hygiene"]`` what feature selection removed.
    """
    keys = keys or ScreenKeys()
    annotation = annotation or Annotation()
    prefixes = tuple(f"{c}_" for c in compartments)
    meta_cols = [c for c in frame.columns if c.startswith("Metadata_")]
    feature_cols = [c for c in frame.columns if c.startswith(prefixes)]
    if not feature_cols:
        raise PhenoseqError(
            f"{source}: no feature columns starting with {list(prefixes)}; found {preview(list(frame.columns), 8)}. "
            "Name the compartments measured (--compartments)."
        )
    check_names(feature_cols, source, "feature columns", "Rename or drop the repeated columns.")
    X = numeric_matrix(frame, feature_cols, source)
    obs = clean_obs(frame[meta_cols].reset_index(drop=True))
    key_cols = [c for c in keys.columns if c in frame.columns and c not in meta_cols]
    if key_cols:
        obs = pd.concat([obs, clean_obs(frame[key_cols].reset_index(drop=True))], axis=1)
    obs = assign_keys(obs, keys, annotation, source, default_plate="Metadata_Plate", default_well="Metadata_Well")
    obs.index = cell_names(obs, keys)
    adata = ad.AnnData(X=X, obs=obs, var=pd.DataFrame(index=pd.Index(feature_cols)))
    adata.uns["phenoseq_input"] = {
        "source": source,
        "modality": "imaging",
        "controls": [str(c) for c in annotation.controls],
        "unmatched_objects": {k: int(v) for k, v in frame.attrs.get("unmatched_objects", {}).items()},
    }
    if hygiene is not None and (hygiene.feature_select or hygiene.normalize):
        adata = apply_hygiene(adata, hygiene, keys, annotation.plate_column or "Metadata_Plate", source)
    return adata


def read_cellprofiler(
    paths: str | os.PathLike | list[str | os.PathLike],
    kind: str = "cellprofiler",
    keys: ScreenKeys | None = None,
    annotation: Annotation | None = None,
    hygiene: Hygiene | None = None,
    compartments: tuple[str, ...] = COMPARTMENTS,
    progress: progress_mod.Progress | None = None,
) -> ad.AnnData:
    """Read CellProfiler single-cell output into an imaging AnnData (cells × features).

    Parameters
    ----------
    paths
        One or more inputs of one kind: CellProfiler export folders (``Image.csv`` + ``Cells.csv``,
        ``Cytoplasm.csv``, ``Nuclei.csv``; a parent folder of several site folders works too) for
        ``kind="cellprofiler"``; cytominer-database ``.sqlite`` files for ``"sqlite"``; merged single-cell
        CSV/parquet tables for ``"single_cell"``.
    keys, annotation, hygiene, compartments
        See :func:`profiles_to_anndata`. ``hygiene=None`` applies pycytominer's defaults; pass
        ``Hygiene(feature_select=False, normalize=None)`` for raw features.

    Returns
    -------
    AnnData as described in :func:`profiles_to_anndata`; ``obs["Metadata_Source"]`` names the input each cell
    came from.
    """
    paths = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    frame = read_cellprofiler_tables(paths, kind, tuple(compartments), progress)
    source = str(paths[0]) if len(paths) == 1 else f"{paths[0]} (+{len(paths) - 1} more)"
    adata = profiles_to_anndata(frame, source, keys, annotation, hygiene or Hygiene(), tuple(compartments))
    adata.uns["phenoseq_input"]["format"] = kind
    adata.uns["phenoseq_input"]["sources"] = [str(p) for p in paths]
    return adata
