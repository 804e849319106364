"""Figures of a benchmark, each returned as PNG bytes (matplotlib's Agg backend, chosen per call).

Every function takes the ``metrics`` dict (and ``arrays`` where needed) of a
:class:`~phenoseq.evaluate.BenchmarkResult`; none touches global matplotlib state beyond its own figure.
"""

from __future__ import annotations

import io

import numpy as np

REFERENCE_COLOUR = "#7f7f7f"
METHOD_COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]


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


def _colour(metrics: dict, method: str) -> str:
    if method == "reference":
        return REFERENCE_COLOUR
    return METHOD_COLOURS[metrics["methods"].index(method) % len(METHOD_COLOURS)]


def _split_title(metrics: dict, split: str) -> str:
    return f"{split} ({metrics['splits'][split]['label']})"


def treatment_colours(n: int) -> np.ndarray:
    """``(n, 4)`` RGBA colours, distinct enough for ~30 treatments (tab20 then tab20b)."""
    plt = _pyplot()
    palette = np.concatenate([plt.get_cmap("tab20").colors, plt.get_cmap("tab20b").colors])
    return np.array([(*palette[i % len(palette)], 1.0) for i in range(n)])


def accuracy_figure(metrics: dict, split: str) -> bytes:
    """Balanced accuracy with 95% CIs for every modality and method; one panel per profile kind."""
    plt = _pyplot()
    profiles = metrics["profiles"]
    fig, axes = plt.subplots(1, len(profiles), figsize=(6.2 * len(profiles), 3.8), sharey=True, squeeze=False)
    bars = [("reference", m) for m in metrics["modalities"]["reference"]]
    bars += [(meth, m) for m in metrics["modalities"]["synthetic"] for meth in metrics["methods"]]
    chance = 1.0 / len(metrics["treatments"])
    for ax, profile in zip(axes[0], profiles):
        for i, (method, modality) in enumerate(bars):
            entry = metrics["accuracy"][method][modality][split][profile]
            acc, (lo, hi) = entry["balanced_accuracy"], entry["ci"]
            err = [[acc - lo], [hi - acc]] if lo is not None else None
            ax.bar(i, acc, color=_colour(metrics, method), yerr=err, capsize=3,
                   label=method if method != "reference" else "real data")
        ax.axhline(chance, color="black", lw=0.8, ls=":", label="chance")
        ax.set_xticks(range(len(bars)))
        ax.set_xticklabels([m for _, m in bars], rotation=40, ha="right", fontsize=8)
        title = "single cell" if profile == "single" else f"mean of {metrics['config']['cells_per_set']} cells"
        ax.set_title(f"{_split_title(metrics, split)}: {title}")
        ax.set_ylim(0, 1)
    axes[0][0].set_ylabel("balanced accuracy (95% CI)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    unique = dict(zip(labels, handles))
    axes[0][-1].legend(unique.values(), unique.keys(), fontsize=8, loc="upper left")
    return _png(fig)


def gap_figure(metrics: dict) -> bytes:
    """Gap recovered (with 95% CI) per method, split and profile kind; dashed lines at 0 and 1."""
    plt = _pyplot()
    groups = [(s, p) for s in metrics["splits"] for p in metrics["profiles"]]
    methods = metrics["methods"]
    width = 0.8 / len(methods)
    fig, ax = plt.subplots(figsize=(max(5.0, 1.6 * len(groups) + 1), 3.6))
    for j, method in enumerate(methods):
        for i, (split, profile) in enumerate(groups):
            gap = metrics["gap_recovered"][method][split][profile]
            x = i + (j - (len(methods) - 1) / 2) * width
            if gap["value"] is None:
                ax.text(x, 0.02, "n/a", ha="center", fontsize=7)
                continue
            lo, hi = gap["ci"]
            err = [[gap["value"] - lo], [hi - gap["value"]]] if lo is not None else None
            ax.bar(x, gap["value"], width, color=_colour(metrics, method), yerr=err, capsize=3,
                   label=method if i == 0 else None)
    ax.axhline(0, color="black", lw=0.8)
    ax.axhline(1, color="black", lw=0.8, ls="--")
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels([f"{metrics['splits'][s]['label']} {p}" for s, p in groups])
    ax.set_ylabel("gap recovered (95% CI)")
    ax.legend(fontsize=8)
    return _png(fig)


def confusion_figure(metrics: dict, arrays: dict, split: str, profile: str) -> bytes:
    """Row-normalised confusion matrices: imaging, imaging+synthetic of each method, imaging+real."""
    from phenoseq.evaluate.benchmark import confusion_key

    plt = _pyplot()
    panels = [("reference", "imaging")] + [(m, "imaging+synthetic") for m in metrics["methods"]]
    panels.append(("reference", "imaging+real"))
    panels = [p for p in panels if confusion_key(*p, split, profile) in arrays]
    treatments = metrics["treatments"]
    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 3.9), squeeze=False)
    image = None
    for ax, (method, modality) in zip(axes[0], panels):
        conf = arrays[confusion_key(method, modality, split, profile)].astype(np.float64)
        rows = conf.sum(axis=1, keepdims=True)
        frac = np.divide(conf, rows, out=np.zeros_like(conf), where=rows > 0)
        image = ax.imshow(frac, vmin=0, vmax=1, cmap="viridis")
        acc = metrics["accuracy"][method][modality][split][profile]["balanced_accuracy"]
        ax.set_title(f"{modality if method == 'reference' else method + ': ' + modality}\nbal. acc. {acc:.2f}",
                     fontsize=9)
        ax.set_xlabel("predicted treatment", fontsize=8)
        ticks = range(0, len(treatments), max(1, len(treatments) // 14))
        ax.set_xticks(list(ticks))
        ax.set_yticks(list(ticks))
        ax.set_xticklabels([treatments[t] for t in ticks], rotation=90, fontsize=6)
        ax.set_yticklabels([treatments[t] for t in ticks], fontsize=6)
    axes[0][0].set_ylabel("true treatment", fontsize=8)
    if image is not None:
        fig.colorbar(image, ax=list(axes[0]), shrink=0.8, label="fraction of the treatment's profiles")
    return _png(fig)


def embedding_figure(metrics: dict, arrays: dict) -> bytes:
    """PCA of real and synthetic cells (fitted on real cells), one panel per source, coloured by treatment."""
    plt = _pyplot()
    sources = metrics["embedding"]["sources"]
    xy, src, trt = arrays["embedding_xy"], arrays["embedding_source"], arrays["embedding_treatment"]
    colours = treatment_colours(len(metrics["treatments"]))
    fig, axes = plt.subplots(1, len(sources), figsize=(3.6 * len(sources), 3.8), sharex=True, sharey=True,
                             squeeze=False)
    for i, (ax, name) in enumerate(zip(axes[0], sources)):
        m = src == i
        ax.scatter(xy[m, 0], xy[m, 1], c=colours[trt[m]], s=4, alpha=0.6, linewidths=0)
        ax.set_title("real cells" if name == "real" else f"synthetic: {name}", fontsize=9)
        ax.set_xlabel("PC 1")
    axes[0][0].set_ylabel("PC 2")
    handles = [plt.Line2D([], [], marker="o", ls="", color=colours[j], markersize=4, label=t)
               for j, t in enumerate(metrics["treatments"])]
    fig.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=6, ncol=2, frameon=False)
    return _png(fig)
