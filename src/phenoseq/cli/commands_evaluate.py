"""``phenoseq evaluate``, ``phenoseq report`` and ``phenoseq demo``."""

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
from phenoseq.errors import PhenoseqError


def _synthetic_args(values: list[str]) -> list[tuple[str | None, Path]]:
    """``PATH`` or ``NAME=PATH`` → (name or None, path)."""
    out = []
    for value in values:
        name, sep, path = value.partition("=")
        if sep and name and not Path(value).exists():
            out.append((name, Path(path)))
        else:
            out.append((None, Path(value)))
    return out


def _read_synthetic_sets(named: list[tuple[str | None, Path]]) -> dict:
    """Read each synthetic file; name = NAME, else ``uns["phenoseq"]["model"]``, else the file stem."""
    from phenoseq.io.files import read_h5ad

    sets = {}
    for name, path in named:
        adata = read_h5ad(path)
        name = name or str(adata.uns.get("phenoseq", {}).get("model") or path.stem)
        if name in sets:
            raise PhenoseqError(f"two synthetic sets are named {name!r}; name them with --synthetic NAME=PATH")
        sets[name] = adata
    return sets


def evaluate(
    imaging: Path = typer.Option(..., "--imaging", help="Imaging .h5ad (cells × morphology features)."),
    rnaseq: Path = typer.Option(..., "--rnaseq", help="RNA .h5ad: raw counts, or normalised expression with "
                                                      "--expression (bulk, e.g. L1000)."),
    model: Optional[Path] = typer.Option(None, "--model", help="Saved phenoseq model: evaluated as method 'phenoseq' "
                                                                "(it generates for the held-out wells and the "
                                                                "matched-context sets) and gives the RNA space."),
    synthetic: list[str] = typer.Option([], "--synthetic", "-s", help="Synthetic cells .h5ad already generated, "
                                        "optionally NAME=PATH; repeatable. Scored as given (no matched-context sets)."),
    rna_space: Optional[Path] = typer.Option(None, "--rna-space", help="Directory with rna_space.json/.safetensors, "
                                                                       "instead of --model."),
    baselines: bool = typer.Option(False, "--baselines", help="Also fit and score every baseline: training mean, "
                                   "control, ridge, nearest well, shuffled imaging."),
    unseen_folds: Optional[int] = typer.Option(None, "--unseen-folds", help="Unseen-compound protocol: K-fold "
                                               "cross-validation over compounds; every method (the model included, "
                                               "retrained with its saved settings) is refitted per fold."),
    unseen_train_on_tests: Optional[bool] = typer.Option(
        None, "--unseen-train-on-tests/--unseen-train-split-only", show_default=False,
        help="With --unseen-folds: the other compounds' test wells (WE, HE) join training (the default), or only "
             "the training split trains."),
    moa_key: Optional[str] = typer.Option(None, "--moa-key", help="obs column of the RNA file with each treatment's "
                                          "mechanism of action (adds MoA retrieval)."),
    expression: bool = typer.Option(False, "--expression", help="Bulk mode: the RNA file holds one normalised profile "
                                    "per sample. Chosen automatically when the model's RNA space takes expression."),
    layer: Optional[str] = LAYER,
    out: Path = typer.Option(..., "--out", "-o", help="Folder for metrics.json and arrays.npz."),
    report: Optional[Path] = typer.Option(None, "--report", help="Also write report.html into this folder."),
    cells_per_set: int = typer.Option(10, "--cells-per-set", help="Cells per matched-context set."),
    cells_per_well: int = typer.Option(100, help="Synthetic cells per well the generators make."),
    drop_unpaired: bool = typer.Option(False, help="Drop wells present in one modality only instead of failing."),
    seed: int = typer.Option(0, help="Seed of generation, profile sampling, pairing, folds and bootstrap."),
    sample_key: str = SAMPLE_KEY,
    treatment_key: str = TREATMENT_KEY,
    replicate_key: str = REPLICATE_KEY,
    batch_key: str = BATCH_KEY,
    group_key: str = GROUP_KEY,
    splits: Optional[str] = SPLITS,
    overwrite: bool = typer.Option(False, help="Replace metrics / a report already in --out / --report."),
    quiet: bool = QUIET,
) -> None:
    """Score synthetic transcriptomes against real held-out wells, beside every baseline.

    Well-level figures (change from the training mean, rank of the true well, energy ratio, scaled scores)
    in every mode; treatment identification with the matched-morphology control in single-cell mode.
    """
    from phenoseq.evaluate import BenchmarkConfig, evaluate as run_evaluation, evaluate_unseen, write_results
    from phenoseq.evaluate.metrics import ARRAYS_FILE, METRICS_FILE
    from phenoseq.generate.baselines import standard_baselines
    from phenoseq.io.files import check_destination, is_zarr_store
    from phenoseq.io.screen import PairedScreen
    from phenoseq.progress import RichProgress
    from phenoseq.report.html import REPORT_FILE
    from phenoseq.rna.space import RNASpace

    inputs = (imaging, rnaseq)
    for name in (METRICS_FILE, ARRAYS_FILE):
        check_destination(out / name, overwrite=overwrite, inputs=inputs, option="--out")
    if report is not None:
        check_destination(report / REPORT_FILE, overwrite=overwrite, inputs=inputs, option="--report")
    named = _synthetic_args(synthetic)
    for _, path in named:
        if not (path.is_file() or is_zarr_store(path)):
            raise PhenoseqError(f"{path}: no such synthetic-cells file (.h5ad) or .zarr store")
    if model is None and not named and not baselines:
        raise PhenoseqError("nothing to evaluate: pass --model MODEL_DIR, --synthetic FILE (repeatable) and/or --baselines")
    if model is not None and rna_space is not None:
        raise PhenoseqError("pass one of --model or --rna-space, not both")
    if model is None and rna_space is None and unseen_folds is None:
        raise PhenoseqError("pass --model MODEL_DIR (a saved phenoseq model) or --rna-space DIR: the RNA space every "
                            "method is scored in (with --unseen-folds, a space is fitted per fold instead)")
    if unseen_train_on_tests is not None and unseen_folds is None:
        raise PhenoseqError("--unseen-train-on-tests / --unseen-train-split-only apply to the unseen-compound protocol: "
                            "pass --unseen-folds K too")
    if unseen_folds is not None and named:
        raise PhenoseqError("--unseen-folds refits every method per fold; it cannot score --synthetic files made "
                            "by a model that saw every compound")
    config = BenchmarkConfig(cells_per_set=cells_per_set, cells_per_well=cells_per_well, seed=seed)
    keys = screen_keys(sample_key, treatment_key, replicate_key, batch_key, group_key, splits)
    progress = RichProgress(quiet)
    trained = None
    if model is not None:
        from phenoseq.phenoseq import PhenoSeq

        trained = PhenoSeq.load(model)
        space = trained.rna_space
    else:
        space = RNASpace.load(rna_space) if rna_space is not None else None
    if space is not None and getattr(space, "kind", "counts") == "expression" and not expression:
        err_console.print("the RNA space takes normalised expression: evaluating in bulk mode (--expression)")
        expression = True
    screen = PairedScreen.read(imaging, rnaseq, keys=keys, unpaired="drop" if drop_unpaired else "error",
                               rna_kind="expression" if expression else "counts",
                               allow_unseen=unseen_folds is not None, rna_layer=layer)
    sets = _read_synthetic_sets(named)
    if unseen_folds is not None:
        def fit(held: PairedScreen) -> dict:
            main = None
            if trained is not None:
                main = PhenoSeq(held, seed=trained.seed, **trained.config.to_dict())
                main.train(progress=progress)
                fold_space = main.rna_space
            else:  # the given space's size, refitted on the fold's training cells
                fold_space = RNASpace.fit(held.subset("rnaseq", held.wells_in("train")),
                                          n_latent=space.n_latent if space is not None else 50,
                                          n_top_genes=len(space.genes) if space is not None else 2000,
                                          kind="expression" if expression else "counts", seed=seed)
            return standard_baselines(held, fold_space, main) if baselines or main is None else {main.name: main}

        result = evaluate_unseen(screen, fit, unseen_folds, config, moa_key, progress,
                                 train_on_tests=unseen_train_on_tests is not False)
    else:
        generators = {trained.name: trained} if trained is not None else {}
        if baselines:
            generators = standard_baselines(screen, space, trained)
        clash = sorted(set(generators) & set(sets))
        if clash:
            raise PhenoseqError(f"synthetic sets named {clash} clash with generated methods; rename them with NAME=PATH")
        result = run_evaluation(screen, space, generators, sets, config, moa_key, progress=progress)
    metrics_path = write_results(result, out)
    report_path = None
    if report is not None:
        from phenoseq.report.html import render_report

        report_path = render_report(result, report)
    if not quiet:
        from phenoseq.report.tables import print_results

        print_results(result.metrics, console)
        console.print(f"wrote {metrics_path}" + (f" and {report_path}" if report_path else ""))


def report(
    metrics_dir: Path = typer.Argument(..., help="Folder holding metrics.json (and arrays.npz) from `phenoseq evaluate`."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder to write report.html into."),
    overwrite: bool = typer.Option(False, help="Replace a report.html already in --out."),
    quiet: bool = QUIET,
) -> None:
    """Re-render the HTML report from saved metrics (single-cell or bulk, seen or unseen compounds)."""
    from phenoseq.evaluate.metrics import read_results
    from phenoseq.io.files import check_destination
    from phenoseq.report.html import REPORT_FILE, render_report

    check_destination(out / REPORT_FILE, overwrite=overwrite)

    path = render_report(read_results(metrics_dir), out)
    if not quiet:
        console.print(f"wrote {path}")


def demo(
    out: Path = typer.Option(Path("phenoseq-demo"), "--out", "-o", help="Folder for the model, cells, metrics and report."),
    seed: int = typer.Option(0, help="Seed of the simulation, training, generation and evaluation."),
    overwrite: bool = typer.Option(False, help="Replace the outputs of an earlier demo in --out."),
    quiet: bool = QUIET,
) -> None:
    """Simulate a screen, train the diffusion model, generate, compare with every baseline, write a report."""
    from phenoseq.demo import run_demo
    from phenoseq.progress import RichProgress

    result = run_demo(out, seed=seed, progress=RichProgress(quiet), overwrite=overwrite)
    if not quiet:
        from phenoseq.report.tables import print_results

        print_results(result.result.metrics, console)
        err_console.print("time per stage (s): " + ", ".join(f"{k} {v:.0f}" for k, v in result.timings.items()))
    console.print(f"report: {result.report_path}")


def register(app: typer.Typer) -> None:
    app.command()(evaluate)
    app.command()(report)
    app.command()(demo)
