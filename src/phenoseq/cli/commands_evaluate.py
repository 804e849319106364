"""``phenoseq evaluate``, ``phenoseq report`` and ``phenoseq demo``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from phenoseq.cli.console import console, err_console
from phenoseq.errors import PhenoseqError

QUIET = typer.Option(False, "--quiet", "-q", help="No progress bars or tables.")


def print_headline(metrics: dict, split: str | None = None, profile: str = "single") -> None:
    """The headline table (one row per method) as a rich table on stdout."""
    from rich import box
    from rich.table import Table

    from phenoseq.evaluate.metrics import headline_rows

    rows = headline_rows(metrics, split, profile)
    split = rows[0]["split"]
    table = Table(
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        title=f"{metrics['splits'][split]['label']} test split ({split}), {profile}-cell profiles",
        caption="balanced accuracy from imaging (img) alone, + real RNA (ceiling), + synthetic RNA; "
                "gap = share of the img→ceiling gain recovered; E-ratio = energy distance to real cells "
                "÷ replicate floor (≈1 is replicate-like); loc. = treatments placed at the right real centroid",
    )
    widths = {"method": max(len("method"), *(len(r["method"]) for r in rows)), "gap (95% CI)": 16}
    for col in ("method", "img", "img+real", "img+syn", "gap (95% CI)", "E-ratio", "loc."):
        table.add_column(col, justify="left" if col == "method" else "right", min_width=widths.get(col, len(col)))

    def f(x) -> str:
        return "n/a" if x is None else f"{x:.2f}"

    for r in rows:
        ci = r["gap_ci"]
        gap = f(r["gap_recovered"]) + (f" ({ci[0]:.2f}–{ci[1]:.2f})" if ci[0] is not None else "")
        table.add_row(r["method"], f(r["imaging"]), f(r["imaging+real"]), f(r["imaging+synthetic"]), gap,
                      f(r["energy_ratio"]), f(r["localisation"]))
    console.print(table)


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


def _load_rna_space(model: Optional[Path], rna_space: Optional[Path]):
    if (model is None) == (rna_space is None):
        raise PhenoseqError("pass exactly one of --model MODEL_DIR (a saved phenoseq model) or --rna-space DIR")
    if rna_space is not None:
        from phenoseq.rna.space import RNASpace

        return RNASpace.load(rna_space)
    from phenoseq.model.phenoseq import PhenoSeq

    return PhenoSeq.load(model).rna_space


def evaluate(
    imaging: Path = typer.Option(..., "--imaging", help="Imaging .h5ad (cells × morphology features)."),
    rnaseq: Path = typer.Option(..., "--rnaseq", help="RNA .h5ad (cells × genes, raw counts)."),
    synthetic: list[str] = typer.Option([], "--synthetic", "-s",
                                        help="Synthetic cells .h5ad, optionally NAME=PATH; repeat for several methods."),
    model: Optional[Path] = typer.Option(None, "--model", help="Saved phenoseq model directory (gives the RNA space)."),
    rna_space: Optional[Path] = typer.Option(None, "--rna-space",
                                             help="Directory with rna_space.json/.safetensors, instead of --model."),
    baselines: bool = typer.Option(False, "--baselines", help="Also fit and evaluate the ridge and nearest-well baselines."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for metrics.json and arrays.npz."),
    report: Optional[Path] = typer.Option(None, "--report", help="Also write report.html into this folder."),
    cells_per_set: int = typer.Option(10, "--cells-per-set", help="Cells averaged per multi-cell profile."),
    cells_per_well: int = typer.Option(100, help="Synthetic cells per well the baselines generate."),
    drop_unpaired: bool = typer.Option(False, help="Drop wells present in one modality only instead of failing."),
    seed: int = typer.Option(0, help="Seed of profile sampling, pairing, bootstrap and baselines."),
    bulk: bool = typer.Option(False, "--bulk",
                              help="Bulk (well-level) mode: --rnaseq holds one normalised expression profile per "
                                   "sample; score per-sample Pearson and identification rank against the ridge "
                                   "baseline. Chosen automatically when the model's RNA space takes expression."),
    split: list[str] = typer.Option([], "--split", help="Bulk mode: held-out split to score (repeatable; "
                                                         "default test and test_he)."),
    quiet: bool = QUIET,
) -> None:
    """Treatment identification (bootstrap CIs, gap recovered) and fidelity of synthetic cells.

    With --bulk (or a model trained with --expression): per-sample profile correlation and identification
    rank of held-out samples (see phenoseq.evaluate.bulk).
    """
    from phenoseq.evaluate.benchmark import BenchmarkConfig, evaluate_synthetic
    from phenoseq.evaluate.metrics import write_results
    from phenoseq.io.screen import PairedScreen
    from phenoseq.progress import RichProgress

    if bulk:
        _evaluate_bulk(imaging, rnaseq, synthetic, _load_rna_space(model, rna_space), baselines, out,
                       tuple(split) or BULK_SPLITS, cells_per_well, drop_unpaired, seed, quiet)
        return
    if not synthetic and not baselines:
        raise PhenoseqError("nothing to evaluate: pass --synthetic FILE (repeatable) and/or --baselines")
    named = _synthetic_args(synthetic)
    for _, path in named:
        if not path.is_file():
            raise PhenoseqError(f"{path}: no such synthetic-cells file")
    config = BenchmarkConfig(cells_per_set=cells_per_set, seed=seed)  # validates the numbers before any work
    progress = RichProgress(quiet)
    space = _load_rna_space(model, rna_space)
    if getattr(space, "input", "counts") == "expression":
        # A model of normalised expression was trained in bulk mode; the single-cell benchmark needs counts.
        err_console.print("the model's RNA space takes normalised expression: evaluating in bulk mode (--bulk)")
        _evaluate_bulk(imaging, rnaseq, synthetic, space, baselines, out, tuple(split) or BULK_SPLITS,
                       cells_per_well, drop_unpaired, seed, quiet)
        return
    screen = PairedScreen.read(imaging, rnaseq, unpaired="drop" if drop_unpaired else "error")
    sets = _read_synthetic_sets(named)
    if baselines:
        from phenoseq.generate.baselines import NearestWellBaseline, RidgeBaseline

        wells = screen.wells_in("train") + [w for s in config.test_splits for w in screen.wells_in(s)]
        imaging_only = screen.subset("imaging", wells).copy()
        for baseline in (RidgeBaseline(screen, space), NearestWellBaseline(screen, space)):
            if baseline.name in sets:
                raise PhenoseqError(f"a synthetic set is already named {baseline.name!r}; rename it with NAME=PATH")
            sets[baseline.name] = baseline.generate(imaging_only, cells_per_well, seed=seed, progress=progress)
    result = evaluate_synthetic(screen, sets, space, config, progress)
    metrics_path = write_results(result, out)
    report_path = None
    if report is not None:
        from phenoseq.report.html import render_report

        report_path = render_report(result, report)
    if not quiet:
        print_headline(result.metrics)
        console.print(f"wrote {metrics_path}" + (f" and {report_path}" if report_path else ""))


BULK_SPLITS = ("test", "test_he")


def _read_synthetic_sets(named: list[tuple[str | None, Path]]) -> dict:
    """Read each synthetic file; name = NAME, else ``uns["phenoseq"]["model"]``, else the file stem."""
    from phenoseq.io.files import read_h5ad

    sets = {}
    for name, path in named:
        if not path.is_file():
            raise PhenoseqError(f"{path}: no such synthetic-cells file")
        adata = read_h5ad(path)
        name = name or str(adata.uns.get("phenoseq", {}).get("model") or path.stem)
        if name in sets:
            raise PhenoseqError(f"two synthetic sets are named {name!r}; name them with --synthetic NAME=PATH")
        sets[name] = adata
    return sets


def _evaluate_bulk(imaging: Path, rnaseq: Path, synthetic: list[str], space, baselines: bool, out: Path,
                   splits: tuple[str, ...], cells_per_well: int, drop_unpaired: bool, seed: int, quiet: bool) -> None:
    """``phenoseq evaluate --bulk``: the ridge baseline (always; plus nearest-well with --baselines) is fitted
    on the training samples, generates for the held-out samples, and every set is scored by
    :func:`phenoseq.evaluate.bulk.evaluate_bulk`; ``metrics.json`` is written only when all of it succeeded."""
    from phenoseq.evaluate.bulk import evaluate_bulk, write_bulk_metrics
    from phenoseq.generate.baselines import NearestWellBaseline, RidgeBaseline
    from phenoseq.io.screen import PairedScreen

    if not hasattr(space, "genes"):
        raise PhenoseqError("bulk evaluation compares expression profiles; the model has no RNA space of genes")
    sets = _read_synthetic_sets(_synthetic_args(synthetic))
    screen = PairedScreen.read(imaging, rnaseq, unpaired="drop" if drop_unpaired else "error", rna_kind="expression")
    held_out = [w for s in splits for w in screen.wells_in(s)]
    if not held_out:
        raise PhenoseqError(f"{imaging}: no samples in the held-out splits {list(splits)}; nothing to evaluate")
    # The baselines see the imaging of the held-out samples only, never their expression.
    imaging_only = screen.subset("imaging", held_out).copy()
    for baseline in (RidgeBaseline, NearestWellBaseline) if baselines else (RidgeBaseline,):
        if baseline.name in sets:
            raise PhenoseqError(f"a synthetic set is already named {baseline.name!r}; rename it with NAME=PATH")
        sets[baseline.name] = baseline(screen, space).generate(imaging_only, cells_per_well, seed=seed)
    metrics = evaluate_bulk(screen, sets, space, splits)
    metrics["config"] = {"splits": list(splits), "baseline_cells_per_well": int(cells_per_well), "seed": int(seed)}
    path = write_bulk_metrics(metrics, out)
    if not quiet:
        print_bulk_headline(metrics)
        console.print(f"wrote {path}")


def print_bulk_headline(metrics: dict) -> None:
    """One rich table per held-out split: a row per method, then the RNA-space reconstruction ceiling."""
    from rich import box
    from rich.table import Table

    from phenoseq.evaluate.bulk import headline_rows

    for split, info in metrics["splits"].items():
        rows = headline_rows(metrics, split)
        table = Table(
            box=box.SIMPLE_HEAD, pad_edge=False,
            title=f"bulk profiles, {info['label']} held-out split ({split}): {info['n_samples']} samples, "
                  f"chance mean rank {rows[0]['chance']:.1f}",
            caption="r = Pearson of generated vs real profile, both centred by the training mean (median, IQR); "
                    "raw r = uncentred; rank of the true sample among the split's real profiles (1 = best); "
                    "ceiling = real profiles through the RNA space",
        )
        # Explicit widths: in an 80-column (non-terminal) console rich would otherwise squeeze the figures.
        widths = {"r": 5, "IQR": 9, "raw r": 5, "rank": 5, "median": 6, "top-1": 5, "top-5": 5}
        table.add_column("method", no_wrap=True, overflow="ellipsis")
        for col, width in widths.items():
            table.add_column(col, justify="right", min_width=width, no_wrap=True)
        for r in rows:
            iqr = r["pearson_iqr"]
            table.add_row(r["method"], f"{r['pearson']:.2f}", f"{iqr[0]:.2f}–{iqr[1]:.2f}", f"{r['pearson_raw']:.3f}",
                          f"{r['mean_rank']:.1f}", f"{r['median_rank']:.1f}", f"{r['top1']:.2f}", f"{r['top5']:.2f}")
        ref = metrics["reference"][split]["pearson"]
        table.add_row("[dim]ceiling[/]", f"[dim]{ref['median']:.2f}[/]",
                      f"[dim]{ref['iqr'][0]:.2f}–{ref['iqr'][1]:.2f}[/]", "", "", "", "", "")
        console.print(table)


def report(
    metrics_dir: Path = typer.Argument(..., help="Folder holding metrics.json (and arrays.npz) from `phenoseq evaluate`."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder to write report.html into."),
    quiet: bool = QUIET,
) -> None:
    """Re-render the HTML report from saved metrics."""
    from phenoseq.evaluate.metrics import read_results
    from phenoseq.report.html import render_report

    path = render_report(read_results(metrics_dir), out)
    if not quiet:
        console.print(f"wrote {path}")


def demo(
    out: Path = typer.Option(Path("phenoseq-demo"), "--out", "-o", help="Folder for the model, cells, metrics and report."),
    seed: int = typer.Option(0, help="Seed of the simulation, training, generation and evaluation."),
    quiet: bool = QUIET,
) -> None:
    """Simulate a screen, train the diffusion model, generate, compare with baselines, write a report."""
    from phenoseq.evaluate.demo import run_demo
    from phenoseq.progress import RichProgress

    result = run_demo(out, seed=seed, progress=RichProgress(quiet))
    if not quiet:
        print_headline(result.result.metrics)
        err_console.print("time per stage (s): " + ", ".join(f"{k} {v:.0f}" for k, v in result.timings.items()))
    console.print(f"report: {result.report_path}")


def register(app: typer.Typer) -> None:
    app.command()(evaluate)
    app.command()(report)
    app.command()(demo)
