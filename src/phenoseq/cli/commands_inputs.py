"""``phenoseq convert``: lab formats (CellProfiler, cytominer SQLite, GCT/GCTX, tables, scGeneScope) → standard .h5ad."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from phenoseq.console import console
from phenoseq.cli.options import (
    BATCH_KEY,
    GROUP_KEY,
    QUIET,
    REPLICATE_KEY,
    SAMPLE_KEY,
    TREATMENT_KEY,
    InputKind,
    Modality,
    Normalize,
    NormalizeAgainst,
    screen_keys,
)

KIND_HELP = "Input format (auto: from name and contents; .h5ad → scgenescope)."


def _split(value: Optional[str]) -> Optional[list[str]]:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def convert(
    inputs: list[Path] = typer.Argument(..., help="Input file(s) or CellProfiler folder(s), all of one kind."),
    out: Path = typer.Option(..., "--out", "-o", help="Output .h5ad file (written atomically; never an input)."),
    kind: InputKind = typer.Option(InputKind.auto, help=KIND_HELP),
    platemap: Optional[Path] = typer.Option(None, help="Plate map (well → sample), e.g. JUMP's *_platemap.tsv."),
    compounds: Optional[Path] = typer.Option(None, help="Compound table keyed like the plate map (adds pert_iname)."),
    platemap_well: str = typer.Option("well_position", help="Plate-map column of well positions."),
    platemap_sample: str = typer.Option("broad_sample", help="Plate-map column of sample ids."),
    platemap_plate: Optional[str] = typer.Option(None, help="Plate-map column of plates, for maps covering several plates."),
    treatment_column: Optional[str] = typer.Option(None, help="Column(s) giving the treatment (comma-separated are joined with '@')."),
    replicate_column: Optional[str] = typer.Option(None, help="Column giving the replicate (default: the plate)."),
    batch_column: Optional[str] = typer.Option(None, help="Column giving the batch (default: the plate)."),
    plate_column: Optional[str] = typer.Option(None, help="Column of plate barcodes (default Metadata_Plate; det_plate for L1000)."),
    well_column: Optional[str] = typer.Option(None, help="Column of well positions (default Metadata_Well; det_well for L1000)."),
    controls: str = typer.Option("DMSO", help="Comma-separated treatments that are negative controls."),
    compartments: Optional[str] = typer.Option(None, help="CellProfiler compartments to merge, comma-separated "
                                               "(default Cells,Cytoplasm,Nuclei)."),
    feature_select: bool = typer.Option(True, help="Drop NaN-heavy, near-constant and blocklisted features."),
    na_cutoff: float = typer.Option(0.05, help="Drop features with more than this fraction of NaN cells."),
    blocklist: bool = typer.Option(True, help="Drop pycytominer's standard blocklisted features."),
    normalize: Normalize = typer.Option(Normalize.mad_robustize, help="Per-plate normalisation."),
    normalize_against: NormalizeAgainst = typer.Option(NormalizeAgainst.controls, help="Reference cells for normalisation."),
    embedding: Optional[str] = typer.Option(None, help="scGeneScope: obsm key of the embedding (e.g. scGPT)."),
    modality: Optional[Modality] = typer.Option(None, help="scGeneScope: imaging or rnaseq (default: counts in X → rnaseq)."),
    var_names: Optional[str] = typer.Option(None, help="GCT/GCTX: row-metadata field to use as gene names."),
    sample_column: Optional[str] = typer.Option(None, help="Expression table: column of sample ids."),
    sample_key: str = SAMPLE_KEY,
    treatment_key: str = TREATMENT_KEY,
    replicate_key: str = REPLICATE_KEY,
    batch_key: str = BATCH_KEY,
    group_key: str = GROUP_KEY,
    overwrite: bool = typer.Option(False, help="Replace --out if it exists."),
    quiet: bool = QUIET,
) -> None:
    """Convert lab formats into phenoseq's standard .h5ad (validated before anything is written)."""
    from phenoseq.errors import PhenoseqError
    from phenoseq.io.files import check_destination, write_h5ad
    from phenoseq.io.readers.annotate import Annotation
    from phenoseq.io.readers.dispatch import read_table
    from phenoseq.io.readers.hygiene import Hygiene
    from phenoseq.io.screen import modality_problems
    from phenoseq.progress import RichProgress

    keys = screen_keys(sample_key, treatment_key, replicate_key, batch_key, group_key)
    check_destination(out, overwrite=overwrite, inputs=tuple(inputs) + (platemap, compounds))
    treatments = _split(treatment_column)
    annotation = Annotation(
        platemap=platemap, compounds=compounds, platemap_well=platemap_well, platemap_sample=platemap_sample,
        platemap_plate=platemap_plate,
        treatment_column=treatments[0] if treatments and len(treatments) == 1 else treatments,
        replicate_column=replicate_column, batch_column=batch_column, plate_column=plate_column,
        well_column=well_column, controls=tuple(_split(controls) or ()),
    )
    hygiene = Hygiene(
        feature_select=feature_select, na_cutoff=na_cutoff, blocklist="pycytominer" if blocklist else None,
        normalize=None if normalize is Normalize.none else normalize.value, normalize_against=normalize_against.value,
        normalize_by=plate_column,
    )
    adata = read_table(inputs, kind.value, keys=keys, annotation=annotation, hygiene=hygiene,
                       progress=RichProgress(quiet), standardise=True, compartments=_split(compartments),
                       embedding=embedding, modality=None if modality is None else modality.value,
                       var_names=var_names, sample_column=sample_column)
    info = adata.uns.get("phenoseq_input", {})
    check = "imaging" if info.get("modality", "imaging") == "imaging" else info.get("rna_kind", "expression")
    source = str(inputs[0]) if len(inputs) == 1 else f"{inputs[0]} (+{len(inputs) - 1} more)"
    problems = modality_problems(adata, keys, f"{source} (converted)", check)
    if problems:
        hint = ""
        if any("missing column" in p for p in problems):
            hint = ("\nGive the treatments with --platemap (and --compounds) or --treatment-column; the replicate and "
                    "batch default to the plate (--replicate-column / --batch-column).")
        raise PhenoseqError("the converted data is not a valid phenoseq input; nothing was written:\n- "
                            + "\n- ".join(problems) + hint)
    write_h5ad(adata, out, inputs=tuple(inputs) + (platemap, compounds))
    if not quiet:
        rows, columns = ("cells", "features") if check == "imaging" else ("samples" if check == "expression" else "cells", "genes")
        hyg = adata.uns.get("phenoseq_hygiene")
        console.print(f"wrote {out} ({adata.n_obs} {rows} × {adata.n_vars} {columns}; "
                      f"{adata.obs[keys.sample].nunique()} wells, {adata.obs[keys.treatment].nunique()} treatments)")
        if hyg:
            dropped = {k.removeprefix("dropped_"): (len(v) if isinstance(v, list) else v)
                       for k, v in hyg.items() if k.startswith("dropped_")}
            console.print(f"feature hygiene: {hyg['n_features_in']} features in, dropped {dropped}"
                          + (f"; {hyg['normalize']}" if "normalize" in hyg else ""), highlight=False)


def register(app: typer.Typer) -> None:
    app.command()(convert)
