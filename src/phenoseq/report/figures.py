"""Figures of an evaluation, each returned as PNG bytes (matplotlib's Agg backend, chosen per call).

Every function takes the ``metrics`` dict (and ``arrays`` where needed) of a
:class:`~phenoseq.evaluate.BenchmarkResult`; none touches global matplotlib state beyond its own figure.
Missing values are drawn as "n/a", never raised on.
"""

from __future__ import annotations

import io

import numpy as np

from phenoseq.evaluate.benchmark import GAPS, confusion_key
from phenoseq.report.layout import BASELINE, REFERENCE, accuracy, accuracy_bars, dig, ident_splits, scaled_metrics

REFERENCE_COLOUR = "#7f7f7f"
METHOD_COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#bcbd22", "#17becf"]
GAP_TITLES = {"matched": "matched context (headline)", "vs_pooled": "single cell vs matched morphology",
              "vs_imaging": "paper-style (inflated)"}
PANELS_PER_ROW = 4


def _pyplot():
    import matplotlib

    # Agg renders to memory without a display; set here rather than at import so importing phenoseq
    # never changes a user's backend.
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> bytes:
    plt = _pyplot()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _grid(n: int, width: float, height: float, **kwargs):
    """``n`` panels, at most :data:`PANELS_PER_ROW` a row; returns the figure and the used axes (spares hidden)."""
    plt = _pyplot()
    cols = min(n, PANELS_PER_ROW)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False, layout="constrained",
                             **kwargs)
    flat = list(axes.flat)
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def _colour(metrics: dict, method: str) -> str:
    if method not in metrics["methods"]:
        return REFERENCE_COLOUR
    return METHOD_COLOURS[metrics["methods"].index(method) % len(METHOD_COLOURS)]


def _split_title(metrics: dict, split: str) -> str:
    return f"{metrics['splits'][split]['label']} ({split})"


def _bar(ax, x: float, value, ci=None, width: float = 0.8, **kwargs) -> None:
    """One bar with its 95% CI whisker, or "n/a" at its foot when the value is missing."""
    if value is None:
        ax.text(x, 0, "n/a", ha="center", va="bottom", fontsize=7, rotation=90)
        return
    err = None
    if ci is not None and ci[0] is not None and ci[1] is not None:
        err = [[max(value - ci[0], 0.0)], [max(ci[1] - value, 0.0)]]
    ax.bar(x, value, width, yerr=err, capsize=2, **kwargs)


def _clip(ax, low: float = -1.5, high: float = 2.0) -> None:
    """Keep a ratio axis readable: limits at most ``low`` to ``high`` (the tables give the exact values)."""
    bottom, top = ax.get_ylim()
    ax.set_ylim(max(bottom, low), min(top, high))


def _legend(fig, axes, **kwargs) -> None:
    """One legend for the figure, each label once."""
    unique = {}
    for ax in axes:
        for h, label in zip(*ax.get_legend_handles_labels()):
            unique.setdefault(label, h)
    fig.legend(unique.values(), unique.keys(), fontsize=8, frameon=False, **kwargs)


def treatment_colours(n: int) -> np.ndarray:
    """``(n, 4)`` RGBA colours, distinct enough for ~30 treatments (tab20 then tab20b)."""
    plt = _pyplot()
    palette = np.concatenate([plt.get_cmap("tab20").colors, plt.get_cmap("tab20b").colors])
    return np.array([(*palette[i % len(palette)], 1.0) for i in range(n)])


def _method_bars(ax, metrics: dict, methods: list[str], labels: list[str], entry) -> None:
    """Bars of every method side by side in each group ``labels[i]``; ``entry(i, method)`` gives ``(value, ci)``.
    Lines at 0 and 1 (dashed): the two ends of a ratio scale."""
    width = 0.8 / max(len(methods), 1)
    for j, method in enumerate(methods):
        for i in range(len(labels)):
            value, ci = entry(i, method)
            _bar(ax, i + (j - (len(methods) - 1) / 2) * width, value, ci, width=width, color=_colour(metrics, method),
                 label=method)
    ax.axhline(0, color="black", lw=0.8)
    ax.axhline(1, color="black", lw=0.8, ls="--")
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels, fontsize=8)
    ax.set_xlim(-0.5, len(labels) - 0.5)


def _finish(fig, axes, ylabel: str, n_methods: int) -> bytes:
    """Clip the shared y axis, label it, put the legend below the panels; the PNG."""
    _clip(axes[0])
    axes[0].set_ylabel(ylabel)
    _legend(fig, axes, loc="outside lower center", ncol=min(max(n_methods, 1), 6))
    return _png(fig)


def scaled_figure(metrics: dict) -> bytes:
    """Scaled scores per metric and method (the training-mean baseline, 0 by definition, left out); one panel
    per split; lines at 0 (training mean) and 1 (real replicate)."""
    methods = [m for m in metrics["methods"] if m != BASELINE]
    splits = list(metrics["splits"])
    fig, axes = _grid(len(splits), 5.5, 3.4, sharey=True)
    for ax, split in zip(axes, splits):
        keys = scaled_metrics(metrics, split)
        _method_bars(ax, metrics, methods, [label for _, label in keys],
                     lambda i, m: (dig(metrics, "scaled", m, split, keys[i][0], "scaled"), None))
        ax.set_title(_split_title(metrics, split), fontsize=10)
    return _finish(fig, axes, "scaled score\n(0 = training mean, 1 = replicate)", len(methods))


def _positions(bars: list[tuple[str, str]]) -> tuple[list[float], list[float], list[str]]:
    """x of each bar, bars of one modality side by side and a gap between modalities; tick x and labels."""
    xs, ticks, labels, x = [], [], [], -1.6
    for i, (_, modality) in enumerate(bars):
        new_group = i == 0 or modality != bars[i - 1][1]
        x += 1.6 if new_group else 1.0
        if new_group:
            ticks.append([])
            labels.append(modality)
        xs.append(x)
        ticks[-1].append(x)
    return xs, [float(np.mean(t)) for t in ticks], labels


def accuracy_figure(metrics: dict, split: str) -> bytes:
    """Balanced accuracy with 95% CIs for every modality and method of ``split``; one panel per profile kind
    (single cells, matched-context sets), grey bars for real data only."""
    plt = _pyplot()
    every = {p: accuracy_bars(metrics, p) for p in ("single", "multi")}
    bars = {p: b for p, b in every.items() if any(accuracy(metrics, *bar, split, p) for bar in b)}
    bars = bars or {"single": every["single"]}
    fig, axes = plt.subplots(1, len(bars), figsize=(0.2 * sum(len(b) for b in bars.values()) + 3.0, 3.6), sharey=True,
                             squeeze=False, gridspec_kw={"width_ratios": [len(b) + 2 for b in bars.values()]},
                             layout="constrained")
    chance = 1.0 / len(metrics["treatments"])
    for ax, (profile, these) in zip(axes[0], bars.items()):
        xs, ticks, labels = _positions(these)
        for x, (method, modality) in zip(xs, these):
            entry = accuracy(metrics, method, modality, split, profile) or {}
            _bar(ax, x, entry.get("balanced_accuracy"), entry.get("ci"), color=_colour(metrics, method),
                 label="real data" if method == REFERENCE else method)
        ax.axhline(chance, color="black", lw=0.8, ls=":", label="chance")
        ax.set_xticks(ticks)
        ax.set_xticklabels(labels, rotation=45, ha="right", fontsize=8)
        n = metrics["config"]["cells_per_set"]
        kind = "single cells" if profile == "single" else f"matched context: means of {n} cells"
        ax.set_title(f"{_split_title(metrics, split)}: {kind}", fontsize=10)
        ax.set_ylim(0, 1)
    axes[0][0].set_ylabel("balanced accuracy (95% CI)")
    _legend(fig, axes[0], loc="outside right upper")
    return _png(fig)


def gap_figure(metrics: dict) -> bytes:
    """Gap recovered (with 95% CI) per method and split; one panel per kind of gap; lines at 0 and 1."""
    splits = ident_splits(metrics)
    fig, axes = _grid(len(GAPS), 4.2, 3.4, sharey=True)
    for ax, gap in zip(axes, GAPS):
        def entry(i: int, method: str, gap: str = gap) -> tuple:
            e = dig(metrics, "identification", "gap", method, splits[i], gap) or {}
            return e.get("value"), e.get("ci")

        _method_bars(ax, metrics, metrics["methods"], [_split_title(metrics, s) for s in splits], entry)
        ax.set_title(GAP_TITLES.get(gap, gap), fontsize=10)
    return _finish(fig, axes, "gap recovered (95% CI)", len(metrics["methods"]))


def confusion_figure(metrics: dict, arrays: dict, split: str, profile: str) -> bytes:
    """Row-normalised confusion matrices: imaging, imaging+synthetic of each method, imaging+real."""
    panels = [(REFERENCE, "imaging")] + [(m, "imaging+synthetic") for m in metrics["methods"]]
    panels = [p for p in [*panels, (REFERENCE, "imaging+real")] if confusion_key(*p, split, profile) in arrays]
    treatments = metrics["treatments"]
    fig, axes = _grid(len(panels), 3.3, 3.5)
    ticks = list(range(0, len(treatments), max(1, len(treatments) // 14)))
    image = None
    for i, (ax, (method, modality)) in enumerate(zip(axes, panels)):
        conf = arrays[confusion_key(method, modality, split, profile)].astype(np.float64)
        rows = conf.sum(axis=1, keepdims=True)
        image = ax.imshow(np.divide(conf, rows, out=np.zeros_like(conf), where=rows > 0), vmin=0, vmax=1,
                          cmap="viridis")
        acc = dig(accuracy(metrics, method, modality, split, profile), "balanced_accuracy")
        name = "real data" if method == REFERENCE else method
        ax.set_title(f"{name}\n{modality}, bal. acc. {'n/a' if acc is None else f'{acc:.2f}'}", fontsize=8)
        ax.set_xticks(ticks)
        ax.set_yticks(ticks)
        ax.set_xticklabels([treatments[t] for t in ticks], rotation=90, fontsize=6)
        ax.set_yticklabels([treatments[t] for t in ticks], fontsize=6)
        ax.set_xlabel("predicted treatment", fontsize=8)
        if i % PANELS_PER_ROW == 0:
            ax.set_ylabel("true treatment", fontsize=8)
    if image is not None:
        fig.colorbar(image, ax=axes, shrink=0.6, label="fraction of the treatment's profiles")
    return _png(fig)


def embedding_figure(metrics: dict, arrays: dict) -> bytes:
    """PCA of real and synthetic cells (fitted on real cells), one panel per source, coloured by treatment."""
    plt = _pyplot()
    sources = metrics["embedding"]["sources"]
    xy, src, trt = arrays["embedding_xy"], arrays["embedding_source"], arrays["embedding_treatment"]
    colours = treatment_colours(len(metrics["treatments"]))
    fig, axes = _grid(len(sources), 3.3, 3.3, sharex=True, sharey=True)
    for i, (ax, name) in enumerate(zip(axes, sources)):
        m = src == i
        ax.scatter(xy[m, 0], xy[m, 1], c=colours[trt[m]], s=4, alpha=0.6, linewidths=0)
        ax.set_title("real cells" if name == "real" else f"synthetic: {name}", fontsize=9)
        ax.set_xlabel("PC 1")
        if i % PANELS_PER_ROW == 0:
            ax.set_ylabel("PC 2")
    handles = [plt.Line2D([], [], marker="o", ls="", color=colours[j], markersize=4, label=t)
               for j, t in enumerate(metrics["treatments"])]
    fig.legend(handles=handles, loc="outside right center", fontsize=6, ncol=2, frameon=False)
    return _png(fig)
