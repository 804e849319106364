"""A self-contained HTML report of an evaluation (figures embedded as base64 PNG), written atomically.

One page for every kind of result (``metrics.json`` layout in :mod:`phenoseq.evaluate.workflow`): single-cell
seen wells, single-cell unseen compounds, and bulk. It leads with the honest figures: the well-level table
with scaled scores, then (seen single-cell results) treatment identification at matched context, against
matched morphology, and the paper-style gap for comparison only. Then what lies behind the numbers:
predicted against measured change (gene by gene, and per treatment, morphologically visible or silent), real
and synthetic cells in one map, cell-level fidelity and the training history. Meant for a biologist: every
figure and table comes with a short explanation (:mod:`phenoseq.report.text`). Missing values read "n/a".
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

from phenoseq.evaluate.benchmark import GAPS, SPLIT_LABELS, confusion_key
from phenoseq.evaluate.workflow import BenchmarkResult
from phenoseq.io.files import atomic_path
from phenoseq.report import figures
from phenoseq.report import text as T
from phenoseq.report.layout import (
    REFERENCE,
    REPLICATE,
    accuracy,
    dig,
    figure_split,
    histories,
    ident_splits,
    scaled_metrics,
    space,
    trust_rows,
)
from phenoseq.report.panels_trust import trust_methods

REPORT_FILE = "report.html"

# Raw columns of the well-level table: (header, metric ({space}: genes or latent), summary statistic, digits).
RAW_COLUMNS = [
    ("r ({space})", "pearson_{space}", "median", 2),
    ("r vs control", "pearson_{space}_control", "median", 2),
    ("mean rank", "rank", "mean", 1),
    ("chance", "rank", "chance_mean", 1),
    ("top-1", "rank", "top1", 2),
    ("energy ratio", "energy_ratio", "median", 2),
    ("MoA top-1", "moa", "top1", 2),
]

STYLE = """
body { font-family: -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; max-width: 1150px; margin: 2em auto;
       padding: 0 1em; color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 2em; }
h4 { margin: 1em 0 0; }
table { border-collapse: collapse; margin: .6em 0 1em; font-size: .9em; display: block; overflow-x: auto; }
th, td { border: 1px solid #ccc; padding: .25em .55em; text-align: right; }
td { white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
th { background: #f3f3f3; font-weight: 600; }
tr.ref td { color: #666; font-style: italic; }
img { max-width: 100%; margin: .5em 0; }
.note { color: #555; font-size: .93em; }
.caveat { background: #fff6e0; border-left: 4px solid #e0a800; padding: .6em 1em; }
"""


def _fmt(x, digits: int = 2, signed: bool = False) -> str:
    """A number, or "n/a" when missing (``-0.00`` shown as ``0.00``)."""
    if x is None:
        return "n/a"
    return f"{round(x, digits) + 0.0:{'+' if signed else ''}.{digits}f}"


def _with_ci(value, ci) -> str:
    """``value [low, high]``; "n/a" alone when the value is missing (its interval then means nothing)."""
    if value is None:
        return "n/a"
    return _fmt(value) + ("" if not ci or None in ci else f" [{ci[0]:.2f}, {ci[1]:.2f}]")


def _esc(s) -> str:
    return html.escape(str(s))


def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{_esc(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def _note(content: str) -> str:
    return f"<p class='note'>{content}</p>"


def _table(header: list[str], rows: list[tuple[list[str], str]], groups: list[tuple[str, int]] | None = None) -> str:
    """An HTML table; ``rows`` are (escaped cells, CSS class); ``groups`` an optional (title, span) header row."""
    top = ""
    if groups:
        top = "<tr>" + "".join(f"<th colspan='{n}'>{_esc(t)}</th>" for t, n in groups if n) + "</tr>"
    head = "<tr>" + "".join(f"<th>{_esc(h)}</th>" for h in header) + "</tr>"
    body = "".join(f"<tr class='{cls}'>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>" for cells, cls in rows)
    return f"<table><thead>{top}{head}</thead><tbody>{body}</tbody></table>"


def _split_name(m: dict, split: str) -> str:
    label = m["splits"].get(split, {}).get("label") or SPLIT_LABELS.get(split, split)
    return f"{_esc(label)} (<code>{_esc(split)}</code>)"


def _method_text(m: dict, method: str) -> str:
    """What a method is (HTML), from its name or the model recorded in its settings."""
    model = str(dig(m, "settings", method, "model") or method)
    if method.startswith("shuffled_"):
        return T.SHUFFLED_TEXT.format(inner=_esc(method.removeprefix("shuffled_")))
    return T.METHOD_TEXT.get(method) or T.METHOD_TEXT.get(model) or T.OTHER_TEXT.format(model=_esc(model))


# ---- sections: _intro is HTML; the others return (anchor, title, HTML body) ----

def _intro(m: dict) -> str:
    kind = T.PROTOCOL_TEXT.get(m["protocol"], "").format(
        n_folds=dig(m, "unseen", "n_folds"), training=T.UNSEEN_TRAINING_TEXT[bool(dig(m, "unseen", "train_on_tests"))])
    splits = ", ".join(f"{_split_name(m, s)}: {v['n_wells']} wells" for s, v in m["splits"].items())
    parts = [f"<p>{T.MODE_TEXT.get(m['mode'], '')} {kind}</p>",
             f"<p>{len(m['treatments'])} treatments; held-out splits: {splits}."
             + (f" {T.SPLITS_TEXT}" if {"test", "test_he"} & set(m["splits"]) else "") + "</p>"]
    folds = dig(m, "unseen", "folds")
    if folds:
        items = "".join(f"<li>{_esc(', '.join(f))}</li>" for f in folds)
        parts.append(f"<details><summary>Compounds held out in each fold</summary><ol>{items}</ol></details>")
    return "".join(parts)


def _methods(m: dict) -> tuple[str, str, str]:
    items = [f"<li><b>{_esc(x)}</b>: {_method_text(m, x)}</li>" for x in m["methods"]]
    items.append(f"<li><b>{REPLICATE}</b>: {T.REPLICATE_TEXT}</li>")
    return "methods", "Methods compared", f"<ul>{''.join(items)}</ul>"


def _well_table(m: dict, split: str) -> str:
    """Well-level figures of every method and the replicate on ``split``, then their scaled scores."""
    sp = space(m, split)
    who = [x for x in [*m["methods"], REPLICATE] if dig(m, "wells", x, split) is not None]
    raw = [(h.format(space=sp), k.format(space=sp), stat, d) for h, k, stat, d in RAW_COLUMNS
           if any(k.format(space=sp) in m["wells"][x][split] for x in who)]
    scaled = scaled_metrics(m, split)
    rows = []
    for x in who:
        w = m["wells"][x][split]
        cells = [f"<b>{_esc(x)}</b>", str(dig(w, "rank", "n") or 0)]
        cells += [_fmt(dig(w, k, stat), d) for _, k, stat, d in raw]
        cells += ["1" if x == REPLICATE else _fmt(dig(m, "scaled", x, split, k, "scaled")) for k, _ in scaled]
        rows.append((cells, "ref" if x == REPLICATE else ""))
    groups = [("", 2), ("summary over wells (r, energy: median; rank: mean)", len(raw)),
              ("scaled score: 0 = training mean, 1 = replicate", len(scaled))]
    table = _table(["method", "wells", *[h for h, *_ in raw], *[label for _, label in scaled]], rows, groups)
    missing = "" if REPLICATE in who else _note("No replicate wells on this split: scaled scores are n/a.")
    return f"<h4>{_split_name(m, split)}</h4>{table}{missing}"


def _any_scaled(m: dict) -> bool:
    """Whether any method has a scaled score on any split (none without replicate wells)."""
    return any(e.get("scaled") is not None for x in m["methods"] for per in (dig(m, "scaled", x) or {}).values()
               for e in per.values())


def _wells(m: dict) -> tuple[str, str, str]:
    body = [_note(T.WELLS_TEXT), *(_well_table(m, s) for s in m["splits"]), _note(T.SCALED_TEXT)]
    if _any_scaled(m):
        body += [_img(figures.scaled_figure(m), "scaled scores"), _note(T.SCALED_FIGURE_TEXT)]
    else:
        body.append(_note(T.NO_SCALED_TEXT))
    return "wells", "Well-level figures (every method, every split)", "".join(body)


def _gap_table(m: dict, split: str, gap: str) -> str:
    """Accuracies of floor, measured and synthetic candidates and the gap recovered, one row per method."""
    profile, floor, candidate = GAPS[gap]
    real, syn = candidate.format(rna="real"), candidate.format(rna="synthetic")

    def acc(method: str, modality: str) -> str:
        return _fmt(dig(accuracy(m, method, modality, split, profile), "balanced_accuracy"))

    rows = []
    for x in m["methods"]:
        g = dig(m, "identification", "gap", x, split, gap) or {}
        rows.append(([f"<b>{_esc(x)}</b>", acc(REFERENCE, floor), acc(REFERENCE, real), acc(x, syn),
                      _with_ci(g.get("value"), g.get("ci")),
                      f"{_fmt(g.get('added'), signed=True)} / {_fmt(g.get('ceiling_added'), signed=True)}"], ""))
    header = ["method", floor, real, syn, "gap recovered [95% CI]", "added: synthetic / measured"]
    return f"<h4>{_split_name(m, split)}</h4>" + _table(header, rows)


def _identification(m: dict) -> tuple[str, str, str]:
    cfg = m["config"]
    body = [_note(T.IDENT_TEXT.format(chance=1 / len(m["treatments"]), n_boot=cfg["n_boot"]))]
    for gap in GAPS:
        title, explanation = T.GAP_TEXT[gap]
        fields = {"n": cfg["cells_per_set"], "pooled": cfg["pooled_context"]}
        body += [f"<h3>{_esc(title.format(**fields))}</h3>", _note(explanation.format(**fields))]
        body += [_gap_table(m, s, gap) for s in ident_splits(m)]
    body.append(f"<div class='caveat'>{T.CAVEAT}</div>")
    return "identification", "Treatment identification", "".join(body)


def _accuracy(m: dict) -> tuple[str, str, str]:
    body = [_img(figures.accuracy_figure(m, s), f"accuracy {s}") for s in ident_splits(m)]
    body.append(_note(T.ACCURACY_FIGURE_TEXT.format(n=m["config"]["cells_per_set"])))
    body.append("<ul class='note'>" + "".join(f"<li><b>{_esc(k)}</b>: {v}</li>" for k, v in T.MODALITY_TEXT.items())
                + "</ul>")
    body += [_img(figures.gap_figure(m), "gap recovered"), _note(T.GAP_FIGURE_TEXT)]
    return "accuracy", "Accuracy by modality and gap recovered", "".join(body)


def _confusion(m: dict, arrays: dict) -> tuple[str, str, str]:
    splits = ident_splits(m)
    split = "test" if "test" in splits else splits[0]
    profile = "multi" if confusion_key(REFERENCE, "imaging", split, "multi") in arrays else "single"
    kind = "matched context" if profile == "multi" else "single cells"
    title = f"Confusion matrices ({m['splits'][split]['label']}, {kind})"
    if confusion_key(REFERENCE, "imaging", split, profile) not in arrays:
        return "confusion", title, _note(T.MISSING_ARRAYS.format(what="Confusion matrices"))
    return "confusion", title, _img(figures.confusion_figure(m, arrays, split, profile), "confusion matrices") \
        + _note(T.CONFUSION_TEXT)


def _embedding(m: dict, arrays: dict) -> tuple[str, str, str]:
    title = f"Real and synthetic cells ({m['splits'][m['embedding']['split']]['label']} wells)"
    if "embedding_xy" not in arrays:
        return "embedding", title, _note(T.MISSING_ARRAYS.format(what="Embedding"))
    ev = list(m["embedding"].get("explained_variance") or []) + [0.0, 0.0]
    body = [_img(figures.embedding_source_figure(m, arrays), "embedding by source"), _note(T.EMBEDDING_SOURCE_TEXT),
            _img(figures.embedding_figure(m, arrays), "embedding by treatment"),
            _note(T.EMBEDDING_TEXT.format(ev0=ev[0], ev1=ev[1]))]
    return "embedding", title, "".join(body)


def _changes(m: dict, arrays: dict) -> tuple[str, str, str]:
    """Predicted against measured change, gene by gene, then per treatment (visible vs silent morphology)."""
    split = figure_split(m)
    body = ["<h3>Gene by gene</h3>"]
    info = m.get("mean_change") or {}
    if figures.change_methods(m, arrays):
        unit = "genes" if info.get("space") == "genes" else "latent dimensions"
        body += [_img(figures.mean_change_figure(m, arrays), "mean change scatter"),
                 _note(T.CHANGES_TEXT.format(split=_split_name(m, info["split"]), n_wells=len(info["wells"]),
                                             n_features=len(info["features"]), unit=unit))]
    else:
        body.append(_note(T.MISSING_FIGURE_DATA.format(what="The gene-level scatter",
                                                       data="the sampled mean changes")))
    body.append("<h3>Per treatment</h3>")
    if figures.fidelity_methods(m, split):
        has_effect = bool(dig(m, "treatment_info", "morphology_effect"))
        has_flags = bool(dig(m, "treatment_info", "morphology_visible"))
        text = T.TREATMENT_FIDELITY_TEXT.format(
            split=_split_name(m, split), x_axis=T.TREATMENT_X_TEXT if has_effect else T.TREATMENT_X_ORDER,
            colours=T.TREATMENT_COLOUR_TEXT if has_flags else T.NO_TREATMENT_COLOUR_TEXT)
        body += [_img(figures.treatment_fidelity_figure(m, split), "treatment fidelity"), _note(text)]
    else:
        body.append(_note(T.MISSING_FIGURE_DATA.format(what="The per-treatment figure",
                                                       data="the treatment of each well")))
    return "changes", "Predicted against measured change", "".join(body)


def _training(m: dict) -> tuple[str, str, str]:
    if not histories(m):
        return "training", "Training history", _note(T.NO_HISTORY_TEXT)
    fold = T.HISTORY_FOLD_TEXT if m["protocol"] == "unseen" else ""
    return "training", "Training history", _img(figures.history_figure(m), "training history") \
        + _note(T.HISTORY_TEXT.format(fold=fold))


def _fidelity(m: dict) -> tuple[str, str, str]:
    rows = []
    for x in m["methods"]:
        for split, fid in (m["fidelity"].get(x) or {}).items():
            energy = dig(m, "wells", x, split, "energy_ratio") or {}
            iqr = energy.get("iqr") or [None, None]
            spread = f" ({_fmt(iqr[0])}–{_fmt(iqr[1])})" if iqr[0] is not None else ""
            rows.append(([f"<b>{_esc(x)}</b>", _split_name(m, split), _fmt(fid.get("localisation")),
                          _fmt(energy.get("median")) + spread,
                          _fmt(fid.get("gene_pearson_median")) + f" ({fid.get('n_genes', 0)} genes)"], ""))
    header = ["method", "split", "localisation", "energy ratio: median (IQR)", "gene correlation: median"]
    return "fidelity", "Fidelity of the synthetic cells", _table(header, rows) + _note(T.FIDELITY_TEXT)


def _trust(m: dict) -> tuple[str, str, str]:
    rows = []
    for x in trust_methods(m):
        entry = m["trust"][x]
        for split, name, t in trust_rows(entry):
            label = _split_name(m, split) + ("" if entry["splits"][split]["exchangeable"] else " (not exchangeable)")
            if name.startswith(" "):  # a kind of wells within the split
                label = f"&nbsp;&nbsp;{_esc(name.strip())}"
            rows.append(([f"<b>{_esc(x)}</b>", label, str(t["n_wells"]),
                          _fmt(t["coverage"], 3), _fmt(t["width"], 3), _fmt(t["baseline_coverage"], 3),
                          _fmt(t["baseline_width"], 3), _fmt(t["spearman"]), _fmt(t["flag_rate"])], ""))
    header = ["method", "split", "wells", "coverage", "width", "coverage", "width", "Spearman(confidence, −error)",
              "flagged OOD"]
    level = m["trust"][trust_methods(m)[0]]["level"]
    groups = [("", 3), (f"{level:.0%} intervals", 2), ("training-mean interval", 2), ("", 2)]
    body = [_note(T.TRUST_TEXT.format(level=level)), _table(header, rows, groups)]
    for x in trust_methods(m):
        ood = m["trust"][x].get("ood") or {}
        if ood.get("n_positive"):
            text = T.OOD_TEXT if ood["n_negative"] else T.OOD_TEXT_NO_NEGATIVES
            body.append(_note(text.format(method=_esc(x), auroc=_fmt(ood["auroc"]), recall=_fmt(ood["recall"]),
                                                visible=_fmt(ood["recall_visible"]), n_visible=ood["n_visible"],
                                                n_pos=ood["n_positive"], false=_fmt(ood["false_flag_rate"]),
                                                n_neg=ood["n_negative"])))
    body += [_img(figures.trust_figure(m), "interval coverage and confidence against error"), _note(T.TRUST_FIGURE_TEXT)]
    return "trust", "Trust: intervals, confidence and the OOD flag", "".join(body)


def _sections(m: dict, arrays: dict) -> list[tuple[str, str, str]]:
    """The report's sections, honest figures first; sections a result has no data for are left out."""
    sections = [_methods(m), _wells(m)]
    if ident_splits(m):
        sections += [_identification(m), _accuracy(m), _confusion(m, arrays)]
    elif m["protocol"] in T.NO_IDENT_TEXT:
        sections.append(("identification", "Treatment identification", _note(T.NO_IDENT_TEXT[m["protocol"]])))
    sections.append(_changes(m, arrays))
    if m.get("embedding"):
        sections.append(_embedding(m, arrays))
    if m.get("fidelity"):
        sections.append(_fidelity(m))
    if trust_methods(m):
        sections.append(_trust(m))
    sections.append(_training(m))
    return sections


def render_report(result: BenchmarkResult, out_dir: str | Path) -> Path:
    """Write ``out_dir/report.html`` (atomically) from an evaluation result; return its path.

    Works for single-cell (seen or unseen compounds) and bulk results. Figures whose data the result lacks
    (arrays absent from ``result.arrays``: confusion matrices, embedding, mean changes; metrics entries of older
    results: per-treatment figures, training history) are left out with a note, so a report can still be drawn
    from ``metrics.json`` alone, or from one saved by an older phenoseq.
    """
    m, arrays = result.metrics, result.arrays
    sections = _sections(m, arrays)
    toc = "".join(f"<li><a href='#{a}'>{_esc(t)}</a></li>" for a, t, _ in sections)
    body = "".join(f"<h2 id='{a}'>{_esc(t)}</h2>{b}" for a, t, b in sections)
    title = f"phenoseq benchmark: transcriptomes generated from morphology ({m['mode']}, {m['protocol']})"
    page = ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>phenoseq benchmark</title>"
            f"<style>{STYLE}</style></head><body><h1>{_esc(title)}</h1>{_intro(m)}<ol>{toc}</ol>{body}</body></html>")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_dir / REPORT_FILE) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return out_dir / REPORT_FILE
