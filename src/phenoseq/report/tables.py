"""The evaluation's tables for a terminal (rich), shared by the CLI, the demo and the benchmark scripts."""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.table import Table

from phenoseq.evaluate.metrics import identification_rows, well_rows
from phenoseq.report.layout import trust_rows

WIDE = 140  # columns the tables need to show every figure


def _f(x, digits: int = 2) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def _gap(value, ci) -> str:
    return _f(value) + (f" ({ci[0]:.2f}–{ci[1]:.2f})" if ci and ci[0] is not None else "")


def well_table(metrics: dict, split: str) -> Table:
    """Well-level figures of every method and the real replicate on ``split``, with scaled scores."""
    rows = well_rows(metrics, split)
    label = metrics["splits"][split]["label"]
    single = metrics["mode"] == "single-cell"
    table = Table(
        box=box.SIMPLE_HEAD, pad_edge=False,
        title=f"{label} ({split}): {rows[0]['n_wells'] if rows else 0} wells, {metrics['mode']}"
              + (f", {metrics['unseen']['n_folds']}-fold compound hold-out" if "unseen" in metrics else ""),
        caption="r = median per-well Pearson of predicted vs real change from the training mean (genes; ctrl: from "
                "control wells); rank of the true well among the held-out wells of its replicate (chance in "
                "brackets); E = median energy ratio to the replicate floor (1 = replicate-like); s = scaled score "
                "(0 = training mean, 1 = real replicate)",
    )
    cols = ["method", "r", "r ctrl", "rank", "top-1"] + (["E"] if single else []) + ["MoA", "s(r)", "s(rank)"] \
        + (["s(E)"] if single else [])
    for col in cols:
        table.add_column(col, justify="left" if col == "method" else "right", no_wrap=True)
    for r in rows:
        s = r["scaled"]
        cells = [r["method"], _f(r["pearson_genes"] if r["pearson_genes"] is not None else r["pearson_latent"]),
                 _f(r["pearson_genes_control"]), f"{_f(r['rank'], 1)} ({_f(r['chance'], 1)})", _f(r["top1"])]
        cells += [_f(r["energy_ratio"])] if single else []
        cells += [_f(r["moa"]), _f(s.get("pearson_genes", s.get("pearson_latent"))), _f(s.get("rank"))]
        cells += [_f(s.get("energy_ratio"))] if single else []
        style = "dim" if r["method"] == "replicate" else None
        table.add_row(*cells, style=style)
    return table


def identification_table(metrics: dict, split: str) -> Table | None:
    """Treatment identification on ``split``: matched-context sets (headline), matched morphology, paper-style."""
    rows = identification_rows(metrics, split)
    if not rows:
        return None
    n = metrics["config"]["cells_per_set"]
    table = Table(
        box=box.SIMPLE_HEAD, pad_edge=False,
        title=f"treatment identification, {metrics['splits'][split]['label']} ({split}): balanced accuracy",
        caption=f"matched: means of {n}-cell sets, the synthetic part generated from that set's imaging only "
                "(headline); pooled: single imaging cell ⊕ its well's pooled morphology (the matched-morphology "
                "control); paper-style: against a single imaging cell, inflated by pooling — for comparison with "
                "published numbers only. gap = (candidate − floor) / (ceiling − floor), 95% CI",
    )
    for col in ("method", "img", "+real", "+syn", "gap matched", "pooled", "+real ", "+syn ", "gap pooled",
                "gap paper-style"):
        table.add_column(col.strip(), justify="left" if col == "method" else "right", no_wrap=True)
    for r in rows:
        table.add_row(r["method"], _f(r["multi_imaging"]), _f(r["multi_real"]), _f(r["multi_synthetic"]),
                      _gap(r["gap_matched"], r["gap_matched_ci"]), _f(r["single_pooled"]),
                      _f(r["single_pooled_real"]), _f(r["single_pooled_synthetic"]),
                      _gap(r["gap_vs_pooled"], r["gap_vs_pooled_ci"]), _gap(r["gap_vs_imaging"], r["gap_vs_imaging_ci"]))
    return table


def print_results(metrics: dict, console: Console | None = None, splits: list[str] | None = None) -> None:
    """Every table of an evaluation: per split, identification (when run) then the well-level figures."""
    console = console or Console()
    if not console.is_terminal and console.width < WIDE:
        # Piped or captured output gets rich's 80 columns, which would cut every figure to an ellipsis.
        console = Console(file=console.file, width=WIDE, no_color=console.no_color)
    for split in splits or list(metrics["splits"]):
        ident = identification_table(metrics, split)
        if ident is not None:
            console.print(ident)
        console.print(well_table(metrics, split))
    for method in metrics.get("trust", {}):
        console.print(trust_table(metrics, method))


TRUST_COLUMNS = ("coverage", "width", "baseline_coverage", "baseline_width", "spearman", "flag_rate")


def trust_table(metrics: dict, method: str) -> Table:
    """Interval coverage and width beside the training-mean interval's, Spearman(confidence, −error) and the
    OOD flag of one method, per split (:mod:`phenoseq.evaluate.trust`)."""
    entry = metrics["trust"][method]
    ood = entry.get("ood") or {}
    caption = ("cov = fraction of real well-mean genes inside the interval; w = mean interval width; mean-cov/mean-w: "
               "the training-mean interval; rho = Spearman(confidence, −error); flagged = wells flagged OOD")
    if ood.get("n_positive"):
        caption += (f". OOD flag on unseen compounds: AUROC {_f(ood['auroc'])}, recall {_f(ood['recall'])} "
                    f"(visible morphology {_f(ood['recall_visible'])}), false flags {_f(ood['false_flag_rate'])} "
                    f"on {ood['n_negative']} held-out wells of training compounds")
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, caption=caption,
                  title=f"trust of {method}: {entry['level']:.0%} intervals calibrated on "
                        f"{entry['calibration_wells'].get('seen', 0)} validation wells"
                        + (f" (unseen compounds: {n_oof} out-of-fold wells)"
                           if (n_oof := entry['calibration_wells'].get('unseen_out_of_fold')) else "")
                        + (f" (each of {entry['n_models']} models)" if entry.get("n_models", 1) > 1 else ""))
    for col in ("split", "wells", "cov", "w", "mean-cov", "mean-w", "rho", "flagged"):
        table.add_column(col, justify="left" if col == "split" else "right", no_wrap=True)
    for split, name, t in trust_rows(entry):
        table.add_row(name, str(t["n_wells"]), *(_f(t[c], 3 if "coverage" in c else 2) for c in TRUST_COLUMNS))
    return table


TRUST_SEED_FIGURES = (("coverage", "coverage"), ("width", "width"), ("mean-interval coverage", "baseline_coverage"),
                      ("mean-interval width", "baseline_width"), ("Spearman", "spearman"), ("flagged", "flag_rate"))
OOD_SEED_FIGURES = (("AUROC", "auroc"), ("recall", "recall"), ("recall (visible)", "recall_visible"),
                    ("false flags", "false_flag_rate"))


def trust_seeds_table(per_seed: list[dict], method: str, title: str) -> Table:
    """Mean ± sd over seeds of the trust figures of ``method``: one row per split, then the OOD flag."""
    import numpy as np

    entries = [m["trust"][method] for m in per_seed if method in m.get("trust", {})]
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, title=f"{title}: mean ± sd over {len(entries)} seed(s)")
    table.add_column("split", no_wrap=True)
    for label, _ in TRUST_SEED_FIGURES:
        table.add_column(label, justify="right", no_wrap=True)

    def cell(values: list) -> str:
        v = [x for x in values if x is not None]
        return f"{np.mean(v):.3f} ± {np.std(v):.3f}" if v else "n/a"

    for i, (_, name, _) in enumerate(trust_rows(entries[0]) if entries else []):
        per_seed = [trust_rows(e)[i][2] for e in entries if len(trust_rows(e)) > i]
        table.add_row(name, *(cell([t.get(k) for t in per_seed]) for _, k in TRUST_SEED_FIGURES))
    if entries and entries[0].get("ood", {}).get("n_positive"):
        table.add_row("OOD flag", *(f"{label} {cell([e['ood'][k] for e in entries])}" for label, k in OOD_SEED_FIGURES),
                      "", "")
    return table


SEED_FIGURES = [  # (label, row source, row key): the figures compared across seeds
    ("gap matched", "ident", "gap_matched"),
    ("gap vs pooled", "ident", "gap_vs_pooled"),
    ("gap paper-style", "ident", "gap_vs_imaging"),
    ("r (genes)", "wells", "pearson_genes"),
    ("mean rank", "wells", "rank"),
    ("top-1", "wells", "top1"),
    ("energy ratio", "wells", "energy_ratio"),
    ("energy (centred)", "wells", "energy_ratio_centred"),
    ("MoA top-1", "wells", "moa"),
]


def seeds_table(per_seed: list[dict], split: str) -> Table:
    """Mean ± sd over runs (seeds) of the key figures of every method on ``split``; columns no run has are left out."""
    import numpy as np

    first = per_seed[0]

    def values(method: str, source: str, key: str) -> list[float]:
        out = []
        for m in per_seed:
            rows = identification_rows(m, split) if source == "ident" else well_rows(m, split)
            row = next((r for r in rows if r["method"] == method), None)
            if row is not None and row.get(key) is not None:
                out.append(row[key])
        return out

    methods = [*first["methods"], "replicate"]
    figures = [f for f in SEED_FIGURES if any(values(m, f[1], f[2]) for m in methods)]
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False,
                  title=f"{first['splits'][split]['label']} ({split}): mean ± sd over {len(per_seed)} seed(s)")
    table.add_column("method", no_wrap=True)
    for label, _, _ in figures:
        table.add_column(label, justify="right", no_wrap=True)
    for method in methods:
        cells = []
        for _, source, key in figures:
            v = values(method, source, key)
            cells.append(f"{np.mean(v):.2f} ± {np.std(v):.2f}" if v else "n/a")
        table.add_row(method, *cells, style="dim" if method == "replicate" else None)
    return table
