"""Raw fields → per-cell morphology AnnData, one field at a time (memory holds one field's pixels).

Output AnnData (cells × features):

* ``X``: dense float32 features, compartments Nuclei, Cells, Cytoplasm; radial distribution for Nuclei and
  Cells only (a ring has no meaningful centre). ``backend="phenoseq"`` (default) measures with
  :mod:`phenoseq.featurize.measure` (``Nuclei_AreaShape_Area``, ``Cells_Intensity_MeanIntensity_DNA``,
  ``Nuclei_TexturePhenoseq_Contrast_DNA_3``, ...); ``backend="cp-measure"`` runs CellProfiler's own
  measurement code (:mod:`phenoseq.featurize.cpmeasure`, needs ``pip install "phenoseq[features]"``).
* ``obs`` (index ``{well}_s{site}-{object:04d}``): ``Metadata_Well``, ``Metadata_Site``,
  ``Metadata_Field``, ``Metadata_FileName``, ``ObjectNumber``, ``Nuclei_Location_Center_X``/``_Y`` (pixels),
  and, with a plate map, its columns — at least the sample key (``Sample_ID``, defaulting to the well).
* ``uns["featurize"]``: the settings used and the fields skipped.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

import anndata as ad
import numpy as np
import pandas as pd

from phenoseq import progress as _progress
from phenoseq.errors import PhenoseqError
from phenoseq.featurize import cpmeasure
from phenoseq.featurize.images import Field, FieldSpec, discover_fields, load_field, normalise_well
from phenoseq.featurize.measure import centroids, measure_compartment
from phenoseq.featurize.segment import SegmentationParams, cytoplasm, segment_cells, segment_nuclei
from phenoseq.io.keys import ScreenKeys

# Channels tried, in order, as the cell-body image when the user does not name one: AGP (actin, Golgi,
# plasma membrane) outlines whole cells in Cell Painting; "cellbody" is CellProfiler's example name.
CELL_CHANNEL_PREFERENCE = ("AGP", "cellbody", "CellBody", "Actin", "RNA")
BACKENDS = ("phenoseq", "cp-measure")
WELL_COLUMNS = ("Metadata_Well", "well", "Well", "well_position", "Metadata_well_position", "WellName", "well_id")


@dataclass
class FeaturizeOptions:
    """What to segment on and what to measure.

    ``cell_channel``: channel grown into cells; ``"auto"`` picks the first of
    :data:`CELL_CHANNEL_PREFERENCE` present, ``None`` expands nuclei by ``segmentation.cell_expansion``.
    ``allow_empty_fields``: skip a field with no nuclei instead of failing.
    ``backend``: one of :data:`BACKENDS` — phenoseq's own measurements or CellProfiler's via cp-measure."""

    nuclei_channel: str = "DNA"
    cell_channel: str | None = "auto"
    segmentation: SegmentationParams = field(default_factory=SegmentationParams)
    texture: bool = True
    radial_bins: int | None = 4
    allow_empty_fields: bool = False
    backend: str = "phenoseq"


def check_backend(backend: str) -> None:
    """Fail before any work when ``backend`` is unknown or its package is not installed."""
    if backend not in BACKENDS:
        raise PhenoseqError(f"unknown --backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if backend == "cp-measure":
        cpmeasure.import_cp_measure()


def resolve_cell_channel(options: FeaturizeOptions, channels: Iterable[str]) -> str | None:
    """The cell-body channel to use for a field with ``channels`` (None: expand nuclei instead)."""
    channels = list(channels)
    if options.cell_channel is None or str(options.cell_channel).lower() == "none":
        return None
    if options.cell_channel == "auto":
        return next((c for c in CELL_CHANNEL_PREFERENCE if c in channels and c != options.nuclei_channel), None)
    return options.cell_channel


def featurize_field(fld: Field, options: FeaturizeOptions | None = None) -> tuple[np.ndarray, list[str], pd.DataFrame]:
    """Segment and measure one field.

    Returns ``(X, names, obs)``: X float32 (n_cells × n_features), feature names, and the per-cell obs
    (metadata and centroid). A field with no nuclei returns an empty X (0 × 0), no names, an empty obs."""
    o = options or FeaturizeOptions()
    check_backend(o.backend)
    measure = cpmeasure.measure_compartment_cp if o.backend == "cp-measure" else measure_compartment
    spec, images = fld.spec, fld.images
    for role, name in (("--nuclei-channel", o.nuclei_channel), ("--cell-channel", resolve_cell_channel(o, images))):
        if name is not None and name not in images:
            raise PhenoseqError(
                f"field {spec.name} ({spec.file_names}): unknown channel {name!r} for {role}; "
                f"the field has {', '.join(images)} — pass one of those or rename channels with --channels"
            )
    cell_channel = resolve_cell_channel(o, images)
    nuclei = segment_nuclei(images[o.nuclei_channel], o.segmentation)
    n = int(nuclei.max())
    if n == 0:
        return np.zeros((0, 0), np.float32), [], pd.DataFrame()
    cells = segment_cells(nuclei, images[cell_channel] if cell_channel else None, o.segmentation)
    cyto = cytoplasm(cells, nuclei)

    feats: dict[str, np.ndarray] = {}
    compartments = (("Nuclei", nuclei, o.radial_bins), ("Cells", cells, o.radial_bins), ("Cytoplasm", cyto, None))
    for comp, lab, radial in compartments:
        feats.update(measure(lab, n, images, comp, texture=o.texture, radial_bins=radial))
    names = list(feats)
    X = np.stack([feats[k] for k in names], axis=1).astype(np.float32)
    xy = centroids(nuclei, n)
    obs = pd.DataFrame(
        {
            "Metadata_Well": spec.well,
            "Metadata_Site": spec.site,
            "Metadata_Field": spec.name,
            "Metadata_FileName": spec.file_names,
            "ObjectNumber": np.arange(1, n + 1),
            "Nuclei_Location_Center_X": xy[:, 0],
            "Nuclei_Location_Center_Y": xy[:, 1],
        },
        index=[f"{spec.name}-{i:04d}" for i in range(1, n + 1)],
    )
    return X, names, obs


def featurize_fields(
    specs: list[FieldSpec],
    channels: Mapping[str, str | int] | None = None,
    options: FeaturizeOptions | None = None,
    progress: _progress.Progress | None = None,
) -> ad.AnnData:
    """Featurize ``specs`` one by one (progress bar "featurizing fields") into one AnnData (see module doc)."""
    o = options or FeaturizeOptions()
    check_backend(o.backend)
    parts, obs_parts, skipped = [], [], []
    names: list[str] | None = None
    channel_names: list[str] = []
    for spec in _progress.get(progress).track(specs, "featurizing fields"):
        fld = load_field(spec, channels)
        X, field_names, obs = featurize_field(fld, o)
        channel_names = channel_names or list(fld.images)
        del fld  # free the pixels before the next field is read
        if len(X) == 0:
            if not o.allow_empty_fields:
                raise PhenoseqError(
                    f"field {spec.name} ({spec.file_names}): no nuclei found in channel {o.nuclei_channel!r}; "
                    "check that it is the DNA stain and the nucleus size settings, or pass --allow-empty-fields "
                    "to skip such fields"
                )
            skipped.append(spec.name)
            continue
        if names is None:
            names = field_names
        elif field_names != names:
            raise PhenoseqError(
                f"field {spec.name} ({spec.file_names}) has different channels from the first field; "
                "every field must hold the same channels — pass --channels to pick a common set"
            )
        parts.append(X)
        obs_parts.append(obs)
    if not parts:
        raise PhenoseqError(
            f"no cells found in any of the {len(specs)} field(s); check --nuclei-channel and the images"
        )
    obs = pd.concat(obs_parts)
    for col in ("Metadata_Well", "Metadata_Site", "Metadata_Field", "Metadata_FileName"):
        obs[col] = obs[col].astype("category")
    adata = ad.AnnData(X=np.concatenate(parts), obs=obs, var=pd.DataFrame(index=names))
    adata.uns["featurize"] = {
        "backend": o.backend,
        "backend_version": cpmeasure.cp_measure_version() if o.backend == "cp-measure" else "",
        "nuclei_channel": o.nuclei_channel,
        "channels": channel_names,
        "cell_channel": str(resolve_cell_channel(o, channel_names)),
        "segmentation": o.segmentation.to_dict(),
        "texture": o.texture,
        "radial_bins": o.radial_bins or 0,
        "n_fields": len(specs),
        "skipped_fields": skipped,
    }
    return adata


def read_platemap(path: str | os.PathLike, well_column: str | None = None) -> pd.DataFrame:
    """Read a CSV/TSV plate map; returns it indexed by normalised well (``A01``), all columns as strings.

    The well column is ``well_column`` or the first of :data:`WELL_COLUMNS` present (case-insensitive)."""
    path = Path(path)
    if not path.is_file():
        raise PhenoseqError(f"{path}: plate map not found; pass a CSV/TSV with one row per well")
    sep = "\t" if path.suffix.lower() in (".tsv", ".tab", ".txt") else ","
    try:
        table = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False)
    except Exception as exc:
        raise PhenoseqError(f"{path}: not a readable CSV/TSV plate map ({type(exc).__name__}: {exc})") from exc
    lower = {c.lower(): c for c in table.columns}
    col = well_column if well_column in table.columns else None
    if col is None and well_column is None:
        col = next((lower[c.lower()] for c in WELL_COLUMNS if c.lower() in lower), None)
    if col is None:
        raise PhenoseqError(
            f"{path}: no well column (looked for {well_column or ', '.join(WELL_COLUMNS)}; "
            f"has {', '.join(table.columns)}); rename the column or pass --well-column"
        )
    wells = table[col].map(normalise_well)
    dup = wells[wells.duplicated()].unique()
    if len(dup):
        raise PhenoseqError(f"{path}: well(s) {', '.join(dup[:5])} appear more than once; keep one row per well")
    return table.drop(columns=[col]).set_index(pd.Index(wells, name="well"))


def attach_platemap(adata: ad.AnnData, platemap: pd.DataFrame, keys: ScreenKeys | None = None) -> None:
    """Copy plate-map columns onto ``adata.obs`` by ``Metadata_Well`` (in place). The sample key defaults
    to the well when the plate map has no such column. Every imaged well must be in the plate map."""
    k = keys or ScreenKeys()
    wells = adata.obs["Metadata_Well"].astype(str)
    missing = sorted(set(wells) - set(platemap.index))
    if missing:
        raise PhenoseqError(
            f"plate map has no row for imaged well(s) {', '.join(missing[:8])}"
            f"{' ...' if len(missing) > 8 else ''}; add them to the plate map"
        )
    for col in platemap.columns:
        if col in adata.obs.columns:
            continue  # never overwrite the image-derived metadata
        adata.obs[col] = pd.Categorical(platemap.loc[wells, col].to_numpy())
    if k.sample not in adata.obs.columns:
        adata.obs[k.sample] = pd.Categorical(wells.to_numpy())


def featurize_directory(
    images_dir: str | os.PathLike,
    pattern: str | None = None,
    channels: Mapping[str, str | int] | None = None,
    options: FeaturizeOptions | None = None,
    platemap: str | os.PathLike | None = None,
    well_column: str | None = None,
    keys: ScreenKeys | None = None,
    progress: _progress.Progress | None = None,
) -> ad.AnnData:
    """Find the fields in ``images_dir`` (see :mod:`phenoseq.featurize.images` for ``pattern`` and
    ``channels``), featurize them and attach the plate map when given. The plate map is read first so a
    bad one (or a backend that is not installed) fails before any image work."""
    check_backend((options or FeaturizeOptions()).backend)
    table = read_platemap(platemap, well_column) if platemap is not None else None
    specs = discover_fields(images_dir, pattern, channels)
    adata = featurize_fields(specs, channels, options, progress)
    if table is not None:
        attach_platemap(adata, table, keys)
    adata.uns["featurize"]["pattern"] = pattern or ""
    adata.uns["featurize"]["images_dir"] = str(images_dir)
    return adata


def featurize_to_h5ad(
    images_dir: str | os.PathLike, out: str | os.PathLike, platemap: str | os.PathLike | None = None, **kwargs
) -> ad.AnnData:
    """:func:`featurize_directory` then write ``out`` atomically (nothing is written on failure)."""
    from phenoseq.io.files import write_h5ad

    out = Path(out)
    if out.suffix != ".h5ad":
        raise PhenoseqError(f"--out {out}: the output must be an .h5ad file")
    adata = featurize_directory(images_dir, platemap=platemap, **kwargs)
    write_h5ad(adata, out, inputs=(platemap,))
    return adata
