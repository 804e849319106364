"""A self-contained HTML report of a benchmark (figures embedded as base64 PNG), written atomically.

Meant for a biologist: every figure and table has a short explanation of what it shows and how to read it.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

from phenoseq.evaluate.benchmark import BenchmarkResult
from phenoseq.evaluate.metrics import headline_rows
from phenoseq.io.files import atomic_path
from phenoseq.report import figures

REPORT_FILE = "report.html"

MODALITY_TEXT = {
    "imaging": "Cell Painting morphology of single imaging cells.",
    "real_rna": "measured transcriptomes (real RNA cells, in the model's RNA space).",
    "imaging+real": "each imaging cell joined with a random real RNA cell of the same well: the ceiling, "
                    "what a paired measurement would give.",
    "synthetic_rna": "classifier trained on synthetic cells of the training wells, tested on synthetic cells of "
                     "the test wells.",
    "real_to_synthetic": "classifier trained on real RNA of the training wells, tested on synthetic cells of the "
                         "test wells: do synthetic cells look like real cells of the right treatment?",
    "imaging+synthetic": "each imaging cell joined with a random synthetic cell generated for its well from "
                         "imaging alone.",
}

METHOD_TEXT = {
    "ridge": "baseline: ridge regression from a well's mean morphology to its mean RNA profile, cells drawn "
             "around the prediction with the typical within-well spread.",
    "nearest_well": "baseline: real RNA cells of the training well whose mean morphology is most similar, "
                    "resampled.",
}

STYLE = """
body { font-family: -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; max-width: 1150px; margin: 2em auto;
       padding: 0 1em; color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 2em; }
table { border-collapse: collapse; margin: 1em 0; font-size: .92em; }
th, td { border: 1px solid #ccc; padding: .3em .6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f3f3f3; }
img { max-width: 100%; margin: .5em 0; }
.note { color: #555; font-size: .93em; }
.caveat { background: #fff6e0; border-left: 4px solid #e0a800; padding: .6em 1em; }
"""


def _fmt(x, digits: int = 2) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def _ci(ci) -> str:
    return "" if ci is None or ci[0] is None else f" [{ci[0]:.2f}, {ci[1]:.2f}]"


def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _headline(metrics: dict) -> str:
    parts = []
    for split in metrics["splits"]:
        for profile in metrics["profiles"]:
            rows = [[html.escape(r["method"]), _fmt(r["imaging"]), _fmt(r["imaging+real"]), _fmt(r["imaging+synthetic"]),
                     _fmt(r["gap_recovered"]) + _ci(r["gap_ci"]), _fmt(r["energy_ratio"]), _fmt(r["localisation"])]
                    for r in headline_rows(metrics, split, profile)]
            kind = "single cells" if profile == "single" else f"means of {metrics['config']['cells_per_set']} cells"
            parts.append(f"<h3>{html.escape(metrics['splits'][split]['label'])} test split ({html.escape(split)}), "
                         f"{kind}</h3>")
            parts.append(_table(["method", "imaging", "imaging+real", "imaging+synthetic", "gap recovered [95% CI]",
                                 "energy ratio (median)", "localisation"], rows))
    return "\n".join(parts)


def _fidelity_table(metrics: dict) -> str:
    rows = []
    for method in metrics["methods"]:
        for split, fid in metrics["fidelity"][method].items():
            iqr = fid["energy_ratio_iqr"]
            rows.append([html.escape(method), html.escape(f"{metrics['splits'][split]['label']} ({split})"),
                         _fmt(fid["localisation"]),
                         _fmt(fid["energy_ratio_median"]) + (f" ({_fmt(iqr[0])}–{_fmt(iqr[1])})" if iqr[0] is not None else ""),
                         _fmt(fid["gene_pearson_median"]) + f" ({fid['n_genes']} genes)"])
    return _table(["method", "split", "localisation", "energy ratio: median (IQR)", "gene correlation: median"], rows)


def _methods(metrics: dict) -> str:
    items = []
    for method in metrics["methods"]:
        text = METHOD_TEXT.get(method) or METHOD_TEXT.get(metrics["settings"].get(method, {}).get("model", ""))
        text = text or "generator: " + html.escape(str(metrics["settings"].get(method, {}).get("model", method)))
        items.append(f"<li><b>{html.escape(method)}</b>: {html.escape(text)}</li>")
    modalities = "".join(f"<li><b>{html.escape(m)}</b>: {html.escape(t)}</li>" for m, t in MODALITY_TEXT.items())
    return f"<p>Methods compared:</p><ul>{''.join(items)}</ul><p>Inputs to the classifier (modalities):</p><ul>{modalities}</ul>"


def render_report(result: BenchmarkResult, out_dir: str | Path) -> Path:
    """Write ``out_dir/report.html`` (atomically) from a benchmark result; return its path.

    Figures that need arrays absent from ``result.arrays`` (confusion matrices, embedding) are left out
    with a note, so a report can still be drawn from ``metrics.json`` alone.
    """
    m, arrays = result.metrics, result.arrays
    split = "test" if "test" in m["splits"] else next(iter(m["splits"]))
    cfg = m["config"]
    sections = [
        "<h1>phenoseq benchmark: treatment identification from morphology and generated transcriptomes</h1>",
        f"<p>{len(m['treatments'])} treatments; test splits: "
        + ", ".join(f"{html.escape(v['label'])} = <code>{html.escape(s)}</code> ({v['n_wells']} wells)" for s, v in m["splits"].items())
        + ". WE (within experiment) wells come from the same experimental round as the training wells; HE (held-out "
          "experiment) wells from another round, a harder test of generalisation.</p>",
        _methods(m),
        "<h2>Headline</h2>",
        "<p class='note'>Balanced accuracy: the average over treatments of the fraction of a treatment's profiles "
        f"assigned to the right treatment (chance = {1 / len(m['treatments']):.3f}). A logistic regression is trained "
        "on the training wells and tested on the test wells; no RNA of a test well is used to train the classifier "
        "or the generator. <b>Gap recovered</b> = (imaging+synthetic − imaging) / (imaging+real − imaging): 0 means "
        "the synthetic transcriptomes add nothing to morphology, 1 means they add as much as measured "
        "transcriptomes. 95% confidence intervals come from resampling test wells "
        f"({cfg['n_boot']} bootstrap draws).</p>",
        _headline(m),
        "<div class='caveat'><b>Read gap recovered together with fidelity.</b> A generator that emits one "
        "idealised prototype per treatment can make treatments <i>easier</i> to tell apart than real, noisy cells, "
        "giving gap recovered near or above 1 while its cells look nothing like real cells. Gap recovered above 1 "
        "with a large energy ratio or poor localisation means collapsed prototypes, not better-than-real biology. "
        "Likewise, the nearest-well baseline returns real training cells, so it can score well wherever a test "
        "well's morphology points to the right training well. Finally, imaging+synthetic and synthetic_rna train the "
        "classifier on synthetic cells, so a generator that consistently gives a treatment the cells of another "
        "one still scores well there; real_to_synthetic and localisation, which compare with real cells, catch "
        "it.</div>",
    ]
    for s in m["splits"]:
        sections += [f"<h2>Accuracy by modality: {html.escape(m['splits'][s]['label'])} ({html.escape(s)})</h2>",
                     _img(figures.accuracy_figure(m, s), f"accuracy {s}"),
                     "<p class='note'>Grey bars use real data only (the floor, imaging, and the ceiling, "
                     "imaging+real); coloured bars use each method's synthetic cells. Left: single cells; right: "
                     f"means of {cfg['cells_per_set']} random cells of a well, which average out cell-to-cell noise. "
                     "Whiskers: 95% CI over test wells. Dotted line: chance.</p>"]
    sections += ["<h2>Gap recovered</h2>", _img(figures.gap_figure(m), "gap recovered"),
                 "<p class='note'>Fraction of the accuracy gain from adding measured transcriptomes to morphology "
                 "that synthetic transcriptomes recover. Dashed line: as good as real RNA. n/a: the ceiling did not "
                 "beat imaging, so the ratio is undefined.</p>"]
    if any(k.startswith("confusion__") for k in arrays):
        sections += [f"<h2>Confusion matrices ({html.escape(m['splits'][split]['label'])}, single cells)</h2>",
                     _img(figures.confusion_figure(m, arrays, split, "single"), "confusion matrices"),
                     "<p class='note'>Rows: true treatment; columns: predicted treatment; colour: fraction of the "
                     "treatment's cells. A bright diagonal means treatments are told apart; off-diagonal blocks are "
                     "treatments confused with each other, often compounds sharing a mechanism of action.</p>"]
    else:
        sections.append("<p class='note'>Confusion matrices not drawn: arrays.npz was not found.</p>")
    if "embedding_xy" in arrays:
        ev = m["embedding"]["explained_variance"]
        sections += [f"<h2>Real and synthetic cells ({html.escape(m['splits'][m['embedding']['split']]['label'])} test wells)</h2>",
                     _img(figures.embedding_figure(m, arrays), "embedding"),
                     "<p class='note'>Principal components of the RNA latent, fitted on real cells (PC 1 and 2 explain "
                     f"{ev[0]:.0%} and {ev[1]:.0%} of their variance); each point is a cell, coloured by treatment. "
                     "Good synthetic cells cover the same regions with the same spread as the real cells of their "
                     "treatment; tight clumps mean too little cell-to-cell variation.</p>"]
    else:
        sections.append("<p class='note'>Embedding not drawn: arrays.npz was not found.</p>")
    sections += ["<h2>Fidelity</h2>", _fidelity_table(m),
                 "<p class='note'><b>Localisation</b>: fraction of treatments whose average synthetic cell is closest "
                 "to the average real cell of the same treatment (1 = every treatment lands in the right place). "
                 "<b>Energy ratio</b>: distance between a test well's synthetic and real cells (energy distance, which "
                 "compares whole distributions, spread included) divided by the distance between the real cells of "
                 "another replicate well of the same treatment and the test well's real cells. Around 1: synthetic "
                 "cells are as close to the well as a biological replicate; much above 1: they differ more than "
                 "replicates do. HE wells come from another round than the replicate well, so their floor includes "
                 "the batch effect. <b>Gene correlation</b>: for each gene, the correlation across test wells between "
                 "the synthetic and real well-average expression; median over genes.</p>"]
    page = ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>phenoseq benchmark</title>"
            f"<style>{STYLE}</style></head><body>{''.join(sections)}</body></html>")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_dir / REPORT_FILE) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return out_dir / REPORT_FILE
