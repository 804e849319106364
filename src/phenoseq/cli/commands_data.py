"""``phenoseq simulate`` and ``phenoseq info``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from phenoseq.console import console, err_console
from phenoseq.cli.options import (
    BATCH_KEY,
    GROUP_KEY,
    LAYER,
    QUIET,
    REPLICATE_KEY,
    SAMPLE_KEY,
    SPLITS,
    TREATMENT_KEY,
    screen_keys,
)

def simulate(
    out: Path = typer.Option(..., "--out", "-o", help="Folder to write imaging.h5ad and rnaseq.h5ad into."),
    seed: int = typer.Option(0, help="Random seed: the same seed gives the same screen."),
    replicates: int = typer.Option(5, help="Replicates per treatment (1, 2 = second round; 3, 4, 5 = first)."),
    imaging_cells: int = typer.Option(300, help="Mean imaging cells per well."),
    rna_cells: int = typer.Option(150, help="Mean RNA cells per well."),
    genes: int = typer.Option(2000, help="Number of genes."),
    features: int = typer.Option(300, help="Number of morphology features."),
    images: bool = typer.Option(False, help="Also render 5-channel single-cell image fields (TIFF) per well."),
    overwrite: bool = typer.Option(False, help="Replace imaging.h5ad / rnaseq.h5ad already in --out."),
    quiet: bool = QUIET,
) -> None:
    """Simulate a paired Cell Painting + scRNA-seq screen (28 treatments by default)."""
    from phenoseq.io.files import check_destination, write_h5ad
    from phenoseq.progress import RichProgress
    from phenoseq.simulate import SimulationConfig, simulate_screen

    config = SimulationConfig(
        seed=seed,
        n_replicates=replicates,
        imaging_cells_per_well=imaging_cells,
        rna_cells_per_well=rna_cells,
        n_genes=genes,
        n_features=features,
    )
    check_destination(out, overwrite=True, folder=True)
    for name in ("imaging.h5ad", "rnaseq.h5ad") + (("images",) if images else ()):
        check_destination(out / name, overwrite=overwrite, folder=name == "images")
    progress = RichProgress(quiet)
    with progress.task("simulating screen", total=None):
        imaging, rnaseq = simulate_screen(config)
    out.mkdir(parents=True, exist_ok=True)
    write_h5ad(imaging, out / "imaging.h5ad")
    write_h5ad(rnaseq, out / "rnaseq.h5ad")
    if images:
        from phenoseq.simulate.images import write_image_fields

        write_image_fields(config, out / "images", progress=progress)
    if not quiet:
        console.print(
            f"wrote {out / 'imaging.h5ad'} ({imaging.n_obs} cells × {imaging.n_vars} features) and "
            f"{out / 'rnaseq.h5ad'} ({rnaseq.n_obs} cells × {rnaseq.n_vars} genes)"
        )


def info(
    files: list[Path] = typer.Argument(..., help="One .h5ad file, or an imaging and an RNA .h5ad file to pair."),
    sample_key: str = SAMPLE_KEY,
    treatment_key: str = TREATMENT_KEY,
    replicate_key: str = REPLICATE_KEY,
    batch_key: str = BATCH_KEY,
    group_key: str = GROUP_KEY,
    splits: Optional[str] = SPLITS,
    allow_unseen: bool = typer.Option(False, help="Accept treatments with no training well (unseen compounds)."),
    drop_unpaired: bool = typer.Option(False, help="Drop wells present in one modality only instead of failing."),
    expression: bool = typer.Option(False, help="The RNA file holds normalised expression (e.g. bulk), not counts."),
    layer: Optional[str] = LAYER,
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Validate and summarise a screen: wells, cells per well, treatments, splits, problems found."""
    from phenoseq.io.summary import summarise_files

    keys = screen_keys(sample_key, treatment_key, replicate_key, batch_key, group_key, splits)
    summary = summarise_files(files, keys, drop_unpaired=drop_unpaired, rna_kind="expression" if expression else "counts",
                              allow_unseen=allow_unseen, rna_layer=layer)
    if as_json:
        import json

        console.print_json(json.dumps(summary, default=str))
    else:
        from phenoseq.io.summary import render_summary

        render_summary(summary, console)
    if summary.get("problems"):
        err_console.print(f"[bold red]{len(summary['problems'])} problem(s) found[/]")
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command()(simulate)
    app.command()(info)
