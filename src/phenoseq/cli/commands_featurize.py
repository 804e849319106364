"""``phenoseq featurize``: raw Cell Painting images → per-cell morphology (.h5ad)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from phenoseq.cli.options import QUIET, Backend
from phenoseq.console import console


def featurize(
    images_dir: Path = typer.Argument(..., help="Folder holding the TIFF fields (not searched recursively)."),
    out: Path = typer.Option(..., "--out", "-o", help="Imaging .h5ad to write (cells × features)."),
    pattern: Optional[str] = typer.Option(
        None,
        help="File-name pattern with {well}, {site} and, for one file per channel, {channel} (other {name}s match "
        "anything), or a regex with (?P<well>...) groups. Default '{well}_s{site}.tif' (stacked C×Y×X files).",
    ),
    channels: Optional[str] = typer.Option(
        None,
        help="Channel names: NAME=TOKEN for per-channel files (TOKEN is what {channel} captures) or NAME=INDEX "
        "for stacked files, e.g. DNA=0,PH3=1,cellbody=2. Default: tokens / names stored in the file.",
    ),
    nuclei_channel: str = typer.Option("DNA", help="Channel to find nuclei in."),
    cell_channel: str = typer.Option(
        "auto", help="Channel to grow cells on ('auto': AGP or cellbody if present; 'none': expand nuclei)."
    ),
    platemap: Optional[Path] = typer.Option(
        None, help="CSV/TSV with a well column and Sample_ID/Treatment/... columns."
    ),
    well_column: Optional[str] = typer.Option(None, help="Plate-map column holding the well (default: detected)."),
    nucleus_diameter: float = typer.Option(12.0, help="Expected nucleus diameter in pixels (sets seed spacing)."),
    min_diameter: float = typer.Option(8.0, help="Discard nuclei smaller than this equivalent diameter (px)."),
    max_diameter: float = typer.Option(80.0, help="Discard nuclei larger than this equivalent diameter (px)."),
    threshold: str = typer.Option("otsu", help="Nuclei threshold: 'otsu' or 'li' (minimum cross-entropy)."),
    keep_border: bool = typer.Option(False, help="Keep nuclei touching the field's border."),
    backend: Backend = typer.Option(
        Backend.phenoseq,
        help="Measurements: 'phenoseq' (built in; its texture is its own, named TexturePhenoseq) or 'cp-measure' "
        "(CellProfiler's own code and names; pip install \"phenoseq[features]\").",
    ),
    no_texture: bool = typer.Option(False, "--no-texture", help="Skip Haralick texture (the slowest features)."),
    allow_empty_fields: bool = typer.Option(False, help="Skip fields with no nuclei instead of failing."),
    overwrite: bool = typer.Option(False, help="Replace --out if it exists."),
    quiet: bool = QUIET,
) -> None:
    """Segment nuclei and cells in Cell Painting fields and measure each cell (shape, intensity, texture, radial)."""
    from phenoseq.io.files import check_destination
    from phenoseq.featurize.images import parse_channels
    from phenoseq.featurize.pipeline import FeaturizeOptions, check_backend, featurize_to_h5ad
    from phenoseq.featurize.segment import SegmentationParams
    from phenoseq.progress import RichProgress

    check_destination(out, overwrite=overwrite, inputs=(platemap,))
    check_backend(backend.value)
    options = FeaturizeOptions(
        nuclei_channel=nuclei_channel,
        cell_channel=None if cell_channel.lower() == "none" else cell_channel,
        segmentation=SegmentationParams(
            nucleus_diameter=nucleus_diameter,
            min_diameter=min_diameter,
            max_diameter=max_diameter,
            threshold_method=threshold,
            exclude_border=not keep_border,
        ),
        texture=not no_texture,
        allow_empty_fields=allow_empty_fields,
        backend=backend.value,
    )
    adata = featurize_to_h5ad(
        images_dir,
        out,
        platemap=platemap,
        pattern=pattern,
        channels=parse_channels(channels),
        options=options,
        well_column=well_column,
        progress=RichProgress(quiet),
    )
    if not quiet:
        n_wells = adata.obs["Metadata_Well"].nunique()
        console.print(f"wrote {out} ({adata.n_obs} cells × {adata.n_vars} features from {n_wells} well(s))")


def register(app: typer.Typer) -> None:
    app.command()(featurize)
