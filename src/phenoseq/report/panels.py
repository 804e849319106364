"""The report's metric panels, each drawn on a given matplotlib Axes from a ``metrics`` dict (and ``arrays``).

One panel per function, so that the report's figures (:mod:`phenoseq.report.figures`, grids of panels turned
into PNG) and the public plotting API (:mod:`phenoseq.pl`, one Axes each) draw with the same code. Panels
set their titles and labelled artists; legends are left to the caller (one per figure in the report).
Missing values are drawn as "n/a", never raised on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from phenoseq.evaluate.benchmark import confusion_key
from phenoseq.report.layout import BASELINE, REFERENCE, accuracy, accuracy_bars, dig, scaled_metrics
from phenoseq.report.style import bar, colour, method_bars, positions, split_title

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.image import AxesImage

GAP_TITLES = {"matched": "matched context (headline)", "vs_pooled": "single cell vs matched morphology",
              "vs_imaging": "paper-style (inflated)"}


def scaled(ax: "Axes", metrics: dict, split: str) -> None:
    """Scaled scores per metric and method on ``split`` (the training-mean baseline, 0 by definition, left out);
    lines at 0 (training mean) and 1 (real replicate)."""
    methods = [m for m in metrics["methods"] if m != BASELINE]
    keys = scaled_metrics(metrics, split)
    method_bars(ax, metrics, methods, [label for _, label in keys],
                lambda i, m: (dig(metrics, "scaled", m, split, keys[i][0], "scaled"), None))
    ax.set_title(split_title(metrics, split), fontsize=10)


def accuracy_panel(ax: "Axes", metrics: dict, split: str, profile: str) -> None:
    """Balanced accuracy with 95% CIs of every modality and method of ``split`` for one profile kind
    (``single`` cells or ``multi``: matched-context sets); grey bars for real data only."""
    these = accuracy_bars(metrics, profile)
    xs, ticks, labels = positions(these)
    for x, (method, modality) in zip(xs, these):
        entry = accuracy(metrics, method, modality, split, profile) or {}
        bar(ax, x, entry.get("balanced_accuracy"), entry.get("ci"), color=colour(metrics, method),
            label="real data" if method == REFERENCE else method)
    ax.axhline(1.0 / len(metrics["treatments"]), color="black", lw=0.8, ls=":", label="chance")
    ax.set_xticks(ticks)
    ax.set_xticklabels(labels, rotation=45, ha="right", fontsize=8)
    n = metrics["config"]["cells_per_set"]
    kind = "single cells" if profile == "single" else f"matched context: means of {n} cells"
    ax.set_title(f"{split_title(metrics, split)}: {kind}", fontsize=10)
    ax.set_ylim(0, 1)


def gap(ax: "Axes", metrics: dict, gap: str, splits: list[str]) -> None:
    """Gap recovered (with 95% CI) of one kind per method and split; lines at 0 and 1."""
    def entry(i: int, method: str) -> tuple:
        e = dig(metrics, "identification", "gap", method, splits[i], gap) or {}
        return e.get("value"), e.get("ci")

    method_bars(ax, metrics, metrics["methods"], [split_title(metrics, s) for s in splits], entry)
    ax.set_title(GAP_TITLES.get(gap, gap), fontsize=10)


def confusion(ax: "Axes", metrics: dict, arrays: dict, method: str, modality: str, split: str,
              profile: str) -> "AxesImage":
    """Row-normalised confusion matrix of one classifier (``arrays`` must hold it); returns the image."""
    treatments = metrics["treatments"]
    conf = arrays[confusion_key(method, modality, split, profile)].astype(np.float64)
    rows = conf.sum(axis=1, keepdims=True)
    image = ax.imshow(np.divide(conf, rows, out=np.zeros_like(conf), where=rows > 0), vmin=0, vmax=1,
                      cmap="viridis")
    acc = dig(accuracy(metrics, method, modality, split, profile), "balanced_accuracy")
    name = "real data" if method == REFERENCE else method
    ax.set_title(f"{name}\n{modality}, bal. acc. {'n/a' if acc is None else f'{acc:.2f}'}", fontsize=8)
    ticks = list(range(0, len(treatments), max(1, len(treatments) // 14)))
    ax.set_xticks(ticks)
    ax.set_yticks(ticks)
    ax.set_xticklabels([treatments[t] for t in ticks], rotation=90, fontsize=6)
    ax.set_yticklabels([treatments[t] for t in ticks], fontsize=6)
    ax.set_xlabel("predicted treatment", fontsize=8)
    ax.set_ylabel("true treatment", fontsize=8)
    return image
