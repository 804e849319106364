"""``phenoseq train`` and ``phenoseq generate``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from phenoseq.cli.options import (
    BATCH_KEY,
    DEVICE,
    GROUP_KEY,
    LAYER,
    QUIET,
    REPLICATE_KEY,
    SAMPLE_KEY,
    SPLITS,
    TREATMENT_KEY,
    Preset,
    Sampler,
    screen_keys,
)
from phenoseq.console import console, err_console


def _settings(pairs: list[str]) -> dict:
    """``["context_size=32", "lr=1e-3"]`` → ``{"context_size": 32, "lr": 0.001}`` (JSON values, else strings)."""
    import json

    from phenoseq.errors import PhenoseqError

    out = {}
    for pair in pairs:
        if "=" not in pair:
            raise PhenoseqError(f"--set expects NAME=VALUE, got {pair!r}")
        name, value = pair.split("=", 1)
        try:
            out[name] = json.loads(value)
        except json.JSONDecodeError:
            out[name] = value
    return out


def train(
    imaging: Path = typer.Option(..., "--imaging", "-i", help="Imaging .h5ad (cells × morphology features)."),
    rnaseq: Path = typer.Option(..., "--rnaseq", "-r", help="RNA .h5ad (cells × genes, raw counts)."),
    out: Path = typer.Option(..., "--out", "-o", help="Model directory to write (model.safetensors + model.json)."),
    preset: Preset = typer.Option(Preset.cpu, help="Model size (tiny: tests; paper: the published size, for a GPU)."),
    seed: int = typer.Option(0, help="Random seed."),
    max_epochs: Optional[int] = typer.Option(None, min=1, help="Train for this many epochs (default: the preset's); "
                                             "the learning rate decays over them. With --resume: stop there."),
    time_limit: Optional[float] = typer.Option(None, help="Stop after this many seconds (> 0), keeping the best weights."),
    resume: bool = typer.Option(False, help="Continue the interrupted run saved in --out."),
    drop_unpaired: bool = typer.Option(False, help="Drop wells present in one modality only."),
    expression: bool = typer.Option(False, help="The RNA file holds normalised expression (e.g. bulk), not counts."),
    layer: Optional[str] = LAYER,
    rna_embedding: Optional[str] = typer.Option(None, help="Train in this obsm embedding of the RNA file (e.g. "
                                                "X_embedding holding scGPT) instead of the PCA space of X."),
    set_: list[str] = typer.Option([], "--set", help="Override a model setting, e.g. --set context_size=32."),
    sample_key: str = SAMPLE_KEY,
    treatment_key: str = TREATMENT_KEY,
    replicate_key: str = REPLICATE_KEY,
    batch_key: str = BATCH_KEY,
    group_key: str = GROUP_KEY,
    splits: Optional[str] = SPLITS,
    allow_unseen: bool = typer.Option(False, help="Accept treatments with no training well: the model never sees "
                                      "them and generates for them from imaging alone (unseen compounds)."),
    device: str = DEVICE,
    quiet: bool = QUIET,
) -> None:
    """Train the image-conditioned diffusion model on the training split of a paired screen.

    Under torchrun (torchrun --nproc_per_node N --no-python phenoseq train ...) the N processes train
    data-parallel (gloo on the CPU, NCCL on GPUs); rank 0 writes the model."""
    from phenoseq.errors import PhenoseqError
    from phenoseq.io import PairedScreen
    from phenoseq.io.files import check_destination, check_free_space
    from phenoseq.model.config import ModelConfig
    from phenoseq.model.device import resolve_device
    from phenoseq.model.distributed import current_ranks
    from phenoseq.phenoseq import PhenoSeq
    from phenoseq.progress import RichProgress

    resolve_device(device)  # an unusable device is refused first
    main_rank = current_ranks().is_main  # under torchrun the other ranks train quietly
    quiet = quiet or not main_rank
    if out.exists() and out.resolve() in (imaging.resolve(), rnaseq.resolve()):
        raise PhenoseqError(f"refusing to write the model to {out}: it is one of the inputs")
    # Everything that can be checked without the data is checked first: settings, then the destination.
    keys = screen_keys(sample_key, treatment_key, replicate_key, batch_key, group_key, splits)
    model = PhenoSeq.load(out) if resume else None
    if model is not None:
        model.check_world_size()
    if model is None:
        if main_rank and out.is_dir() and any(out.iterdir()):
            raise PhenoseqError(f"{out} exists and is not empty; choose a new directory, or pass --resume to continue")
        overrides = _settings(set_)
        if time_limit is not None:
            overrides["time_limit"] = time_limit
        if max_epochs is not None:  # the run's own length sets its learning-rate schedule
            overrides["max_epochs"] = max_epochs
        if expression:
            overrides["rna_kind"] = "expression"
        if rna_embedding:
            overrides["rna_embedding"] = rna_embedding
        ModelConfig.preset(preset.value, **overrides)
    elif set_ or time_limit is not None:
        raise PhenoseqError("--resume continues with the run's own settings; drop --set / --time-limit")
    if main_rank:  # rank 0 alone writes (another rank's checks could trip over its probe file)
        check_destination(out, overwrite=True, inputs=(imaging, rnaseq), folder=True)
    screen = PairedScreen.read(imaging, rnaseq, keys=keys, unpaired="drop" if drop_unpaired else "error",
                               rna_kind="expression" if expression else "counts", allow_unseen=allow_unseen, rna_layer=layer)
    for warning in screen.warnings if main_rank else ():
        err_console.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False)
    progress = RichProgress(quiet)
    if model is not None:
        model.resume(screen, progress=progress, max_epochs=max_epochs, checkpoint_dir=out, device=device)
    else:
        model = PhenoSeq(screen, preset=preset.value, seed=seed, **overrides)
        check_free_space(out, model.checkpoint_bytes(), "the model")
        model.train(progress=progress, max_epochs=max_epochs, checkpoint_dir=out, device=device)
    if not quiet:
        s = model.training_state
        console.print(f"trained {s.epoch} epochs (best validation loss {s.best_val:.4f} at epoch {s.best_epoch})"
                      + (f" on {model.world_size} processes" if model.world_size > 1 else "") + f"; model saved to {out}")


def generate(
    model_dir: Path = typer.Option(..., "--model", "-m", help="Model directory written by phenoseq train."),
    imaging: Path = typer.Option(..., "--imaging", "-i", help="Imaging .h5ad (or .zarr) of the wells to generate for."),
    out: Path = typer.Option(..., "--out", "-o", help="Synthetic-cell .h5ad to write."),
    wells_out: Optional[Path] = typer.Option(
        None, "--wells-out", help="Well-level .h5ad (well means, intervals, confidence, OOD flag) [default: OUT.wells.h5ad]."),
    level: float = typer.Option(0.9, min=0.01, max=0.99, help="Coverage of the well-level prediction intervals."),
    cells_per_well: int = typer.Option(100, min=1, help="Synthetic cells per well."),
    seed: int = typer.Option(0, help="Random seed: the same seed gives the same cells."),
    sampler: Optional[Sampler] = typer.Option(None, help="Sampler (default: the model's, dpm++2m: fast)."),
    steps: Optional[int] = typer.Option(None, min=1, help="Sampling steps (default: the model's, 12 for dpm++2m)."),
    guidance: Optional[float] = typer.Option(None, help="Classifier-free guidance scale (1 = none; >= 0)."),
    resume: bool = typer.Option(False, help="Finish an interrupted run from the parts in OUT.parts/."),
    shard: Optional[str] = typer.Option(
        None, help="Make only shard i of N (e.g. 3/8; one per Slurm array task), or 'rank' for this torchrun "
        "process's share; then run phenoseq merge."),
    chunk_wells: Optional[int] = typer.Option(
        None, min=1, help="Wells per part [default: four network calls' worth, so the result equals one in-memory run]."),
    overwrite: bool = typer.Option(False, help="Replace --out and --wells-out if they exist (and an unfinished run)."),
    device: str = DEVICE,
    quiet: bool = QUIET,
) -> None:
    """Generate synthetic single-cell transcriptomes for every well of an imaging file, and a well-level file
    with each well's predicted mean, prediction intervals, confidence and out-of-distribution flag.

    Wells are generated a chunk at a time into OUT.parts/ (memory does not grow with the number of wells), then
    merged into OUT; an interrupted run finishes with --resume, and --shard splits the work across processes."""
    from phenoseq.errors import PhenoseqError
    from phenoseq.generate.well_output import wells_path
    from phenoseq.io.files import check_destination, check_free_space
    from phenoseq.progress import RichProgress
    from phenoseq.streaming import GenerationSettings, generate_to_disk, open_run, parse_shard

    wells_out = wells_out or wells_path(out)
    inputs = (imaging, model_dir / "model.safetensors", model_dir / "model.json")
    if wells_out.resolve() == out.resolve():
        raise PhenoseqError(f"--wells-out {wells_out} is the same file as --out; give the well-level file another name")
    parts = parse_shard(shard)
    if parts is not None and overwrite:
        raise PhenoseqError("--overwrite with --shard would remove the other shards' parts; remove OUT.parts/ yourself "
                            "to start a sharded run again, and pass --overwrite to phenoseq merge to replace OUT")
    if parts is None:
        for path, option in ((out, "--out"), (wells_out, "--wells-out")):
            check_destination(path, overwrite=overwrite, inputs=inputs, option=option)
    settings = GenerationSettings(cells_per_well, seed, sampler and sampler.value, steps, guidance, level, device)
    run = open_run(model_dir, imaging, out, settings, chunk_wells)
    check_free_space(out, 2 * run.output_bytes(), "the synthetic cells (parts, then the merged file)")
    made = generate_to_disk(run, resume=resume or parts is not None, overwrite=overwrite, shard=parts,
                            progress=RichProgress(quiet))
    if parts is not None:
        if not quiet:
            console.print(f"shard {parts[0] + 1}/{parts[1]}: made {made} parts in {run.parts}; when every shard is done, run "
                          f"phenoseq merge -o {out}" + (f" --wells-out {wells_out}" if wells_out != wells_path(out) else ""))
        return
    _merge(run.parts, out, wells_out, inputs, quiet)


def merge(
    out: Path = typer.Option(..., "--out", "-o", help="Synthetic-cell .h5ad that the shards were made for."),
    wells_out: Optional[Path] = typer.Option(None, "--wells-out", help="Well-level .h5ad [default: OUT.wells.h5ad]."),
    overwrite: bool = typer.Option(False, help="Replace --out and --wells-out if they exist."),
    quiet: bool = QUIET,
) -> None:
    """Merge the parts that phenoseq generate --shard made (OUT.parts/) into OUT and its well-level file."""
    from phenoseq.generate.well_output import wells_path
    from phenoseq.io.files import check_destination
    from phenoseq.streaming import parts_dir

    wells_out = wells_out or wells_path(out)
    for path, option in ((out, "--out"), (wells_out, "--wells-out")):
        check_destination(path, overwrite=overwrite, option=option)
    _merge(parts_dir(out), out, wells_out, (), quiet)


def _merge(parts: Path, out: Path, wells_out: Path, inputs: tuple, quiet: bool) -> None:
    import anndata as ad

    from phenoseq.streaming import merge_parts

    n_cells, n_wells = merge_parts(parts, out, wells_out, inputs)
    wells = ad.read_h5ad(wells_out)
    calibrated = bool(wells.uns["phenoseq"]["calibrated"])
    if not calibrated:
        err_console.print("[yellow]warning:[/] the model was trained without validation wells, so it has no "
                          "calibration: the well-level file has no intervals or confidence. Train with a validation "
                          "split to get them", highlight=False)
    if not quiet:
        n_ood = int(wells.obs["phenoseq_ood"].sum())
        console.print(f"wrote {out}: {n_cells} synthetic cells for {n_wells} wells "
                      f"({n_ood} wells flagged out-of-distribution); well-level means"
                      + (", intervals and confidence" if calibrated else "") + f" in {wells_out}")


def register(app: typer.Typer) -> None:
    app.command()(train)
    app.command()(generate)
    app.command()(merge)
