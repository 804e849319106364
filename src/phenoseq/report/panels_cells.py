"""Panels of the cells and wells behind the metrics: co-embedding, predicted vs measured change, per-treatment
fidelity, training loss. Each draws on a given Axes (see :mod:`phenoseq.report.panels`); each raises
:class:`~phenoseq.errors.PhenoseqError` when the result lacks its data, so the report can put a note instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from phenoseq.errors import PhenoseqError
from phenoseq.report.layout import (REPLICATE, change_arrays, dig, figure_split, per_treatment, space,
                                    treatment_kind)
from phenoseq.report.style import (KIND_COLOURS, REFERENCE_COLOUR, TRAIN_COLOUR, VAL_COLOUR, colour, split_title,
                                   treatment_colours)

if TYPE_CHECKING:
    from matplotlib.axes import Axes

COLOR_BY = ("source", "treatment")
METRIC_LABELS = {"pearson_genes": "r of change (genes)", "pearson_latent": "r of change (latent)",
                 "pearson_genes_control": "r of change vs control (genes)",
                 "pearson_latent_control": "r of change vs control (latent)", "energy_ratio": "energy ratio"}


def _source_label(name: str) -> str:
    return "real cells" if name == "real" else name


def embedding(ax: "Axes", metrics: dict, arrays: dict, color: str = "source", sources: list[str] | None = None,
              size: float = 4.0) -> None:
    """Real and synthetic cells in one PCA (fitted on real cells, so all sources share its axes).

    ``color="source"``: real cells grey underneath, each method in its colour; ``"treatment"``: every cell in
    its treatment's colour (labelled proxies for a legend). ``sources``: which of ``metrics["embedding"]
    ["sources"]`` to draw (default all).
    """
    if "embedding_xy" not in arrays or not metrics.get("embedding"):
        raise PhenoseqError("no embedding in this result (single-cell results with arrays.npz only)")
    if color not in COLOR_BY:
        raise PhenoseqError(f"color must be one of {COLOR_BY}, got {color!r}")
    names = list(metrics["embedding"]["sources"])
    sources = names if sources is None else list(sources)
    unknown = sorted(set(sources) - set(names))
    if unknown:
        raise PhenoseqError(f"no embedded cells of {unknown}; sources are {names}")
    xy, src, trt = arrays["embedding_xy"], arrays["embedding_source"], arrays["embedding_treatment"]
    if color == "source":
        for name in sorted(sources, key=lambda s: s != "real"):  # real first: the others drawn over it
            m = src == names.index(name)
            ax.scatter(xy[m, 0], xy[m, 1], s=size, alpha=0.5, linewidths=0, label=_source_label(name),
                       color=REFERENCE_COLOUR if name == "real" else colour(metrics, name))
    else:
        m = np.isin(src, [names.index(s) for s in sources])
        colours = treatment_colours(len(metrics["treatments"]))
        ax.scatter(xy[m, 0], xy[m, 1], c=colours[trt[m]], s=size, alpha=0.6, linewidths=0)
        for j in np.unique(trt[m]):  # one empty, labelled artist per treatment, for the legend
            ax.plot([], [], "o", ls="", color=colours[j], markersize=4, label=metrics["treatments"][j])
    ev = list(metrics["embedding"].get("explained_variance") or []) + [None, None]
    ax.set_xlabel("PC 1" + (f" ({ev[0]:.0%})" if ev[0] is not None else ""), fontsize=8)
    ax.set_ylabel("PC 2" + (f" ({ev[1]:.0%})" if ev[1] is not None else ""), fontsize=8)
    shown = [s for s in sources if s != "real"]
    what = "real cells" if not shown else ("real and " if "real" in sources else "") + ", ".join(shown)
    ax.set_title(f"{what}: by {color}", fontsize=9)


def mean_change(ax: "Axes", metrics: dict, arrays: dict, method: str, well: str | None = None) -> None:
    """Predicted against measured change from the training mean of each sampled gene (or latent dimension):
    every sampled well pooled, or one ``well``. Points coloured by their treatment's morphology when the data
    mark it; dashed: predicted = measured."""
    pair = change_arrays(metrics, arrays, method)
    if pair is None:
        raise PhenoseqError(f"no sampled mean changes of {method!r} in this result (re-run the evaluation)")
    info = metrics["mean_change"]
    wells = list(info["wells"])
    real, pred = pair
    if well is not None:
        if well not in wells:
            raise PhenoseqError(f"well {well!r} is not among the sampled wells {wells[:6]}…")
        real, pred, wells = real[[wells.index(well)]], pred[[wells.index(well)]], [well]
    treatment_of = dig(metrics, "treatment_info", "well_treatment") or {}
    kinds = [treatment_kind(metrics, treatment_of.get(w, "")) for w in wells]
    size = 3.0 if len(wells) > 1 else 9.0
    for kind in dict.fromkeys(kinds):
        rows = [i for i, k in enumerate(kinds) if k == kind]
        ax.scatter(real[rows].ravel(), pred[rows].ravel(), s=size, alpha=0.35, linewidths=0,
                   color=KIND_COLOURS.get(kind, colour(metrics, method)), label=kind or method)
    lim = 1.05 * max(float(np.abs(real).max(initial=0.0)), float(np.abs(pred).max(initial=0.0)), 1e-6)
    ax.plot([-lim, lim], [-lim, lim], ls="--", color="black", lw=0.8, label="predicted = measured")
    ax.axhline(0, color="grey", lw=0.5)
    ax.axvline(0, color="grey", lw=0.5)
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    a, b = real.ravel(), pred.ravel()
    r = float(np.corrcoef(a, b)[0, 1]) if a.std() > 0 and b.std() > 0 else 0.0
    ax.text(0.03, 0.97, f"r = {r:.2f}", transform=ax.transAxes, va="top", fontsize=8)
    unit = "genes" if info["space"] == "genes" else "latent dims"
    where = f"well {well} ({treatment_of.get(well, '?')})" if well else f"{len(wells)} wells × {real.shape[1]} {unit}"
    ax.set_title(f"{method}: {where}", fontsize=9)
    ax.set_xlabel("measured change from training mean", fontsize=8)
    ax.set_ylabel("predicted change", fontsize=8)


def treatment_fidelity(ax: "Axes", metrics: dict, method: str, split: str | None = None, metric: str | None = None,
                       labels: bool = False) -> None:
    """One point per treatment: the median over its held-out wells of a per-well figure (default: r of change),
    against how much it changes morphology (``treatment_info.morphology_effect``; treatments in order of the
    figure without it). Grey bars: the real replicate of the same treatment. Colour: visible or silent
    morphology when the data mark it."""
    split = split or figure_split(metrics)
    metric = metric or f"pearson_{space(metrics, split)}"
    values = per_treatment(metrics, method, split, metric)
    if not values:
        raise PhenoseqError(f"no per-well {metric} of {method!r} on split {split!r} with the wells' treatments "
                            "(treatment_info) in this result (re-run the evaluation)")
    effect = dig(metrics, "treatment_info", "morphology_effect") or {}
    use_effect = all(t in effect for t in values)
    order = sorted(values, key=lambda t: values[t])
    x = {t: effect[t] if use_effect else float(i) for i, t in enumerate(order)}
    replicate = per_treatment(metrics, REPLICATE, split, metric)
    shown = [t for t in order if t in replicate]
    if shown:
        ax.scatter([x[t] for t in shown], [replicate[t] for t in shown], marker="_", s=80, color=REFERENCE_COLOUR,
                   label="real replicate")
    kinds = {t: treatment_kind(metrics, t) for t in order}
    for kind in dict.fromkeys(kinds.values()):
        these = [t for t in order if kinds[t] == kind]
        ax.scatter([x[t] for t in these], [values[t] for t in these], s=18, zorder=3,
                   color=KIND_COLOURS.get(kind, colour(metrics, method)), label=kind or method)
    if labels:
        for t in order:
            ax.annotate(t, (x[t], values[t]), fontsize=5, xytext=(2, 2), textcoords="offset points")
    ax.axhline(1.0 if metric == "energy_ratio" else 0.0, color="black", lw=0.8)
    if use_effect:
        ax.axvline(1.0, color="black", lw=0.6, ls=":")
        ax.set_xlabel("morphology effect (1 = like a control well)", fontsize=8)
    else:
        ax.set_xticks([x[t] for t in order])
        ax.set_xticklabels(order, rotation=90, fontsize=6)
    ax.set_ylabel(METRIC_LABELS.get(metric, metric) + ", median over wells", fontsize=8)
    ax.set_title(f"{method}: per treatment, {split_title(metrics, split)}", fontsize=9)


def history(ax: "Axes", records: list[dict], title: str | None = None) -> None:
    """Training and validation loss per epoch; dotted: the epoch of lowest validation loss (the weights kept)."""
    if not records:
        raise PhenoseqError("no training history to draw (an empty list)")
    epochs = [r.get("epoch", i + 1) for i, r in enumerate(records)]
    for key, label, col in (("train_loss", "training loss", TRAIN_COLOUR), ("val_loss", "validation loss", VAL_COLOUR)):
        points = [(e, r[key]) for e, r in zip(epochs, records) if r.get(key) is not None]
        if points:
            ax.plot(*zip(*points), marker="o" if len(points) < 30 else None, markersize=3, color=col, label=label)
    val = [(r["val_loss"], e) for e, r in zip(epochs, records) if r.get("val_loss") is not None]
    if val:
        best = min(val)[1]
        ax.axvline(best, color="black", lw=0.8, ls=":", label=f"lowest validation loss (epoch {best})")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
    ax.set_xlabel("epoch", fontsize=8)
    ax.set_ylabel("loss", fontsize=8)
    ax.set_title(title or "training history", fontsize=9)
