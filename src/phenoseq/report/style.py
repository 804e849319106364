"""Colours and small drawing helpers shared by the report's panels (:mod:`phenoseq.report.panels`,
:mod:`phenoseq.report.panels_cells`). Nothing here touches pyplot or global matplotlib state."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from matplotlib.axes import Axes

REFERENCE_COLOUR = "#7f7f7f"
METHOD_COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#bcbd22", "#17becf"]
# Treatments by what their morphology shows (per-treatment figures): visible, silent, control, not recorded.
KIND_COLOURS = {"visible morphology": "#1f77b4", "silent morphology": "#e8710a", "control": "#222222"}
TRAIN_COLOUR, VAL_COLOUR = "#1f77b4", "#d62728"


def colour(metrics: dict, method: str) -> str:
    """A method's colour, the same in every figure (its position in ``metrics["methods"]``); grey otherwise."""
    if method not in metrics["methods"]:
        return REFERENCE_COLOUR
    return METHOD_COLOURS[metrics["methods"].index(method) % len(METHOD_COLOURS)]


def split_title(metrics: dict, split: str) -> str:
    """``"label (split)"``; splits scored only in a figure's own section (the trust section's ``test`` wells of
    the unseen protocol) take their usual label."""
    from phenoseq.evaluate.benchmark import SPLIT_LABELS

    label = metrics["splits"].get(split, {}).get("label") or SPLIT_LABELS.get(split, split)
    return f"{label} ({split})"


def treatment_colours(n: int) -> np.ndarray:
    """``(n, 4)`` RGBA colours, distinct enough for ~30 treatments (tab20 then tab20b)."""
    from matplotlib import colormaps

    palette = np.concatenate([colormaps["tab20"].colors, colormaps["tab20b"].colors])
    return np.array([(*palette[i % len(palette)], 1.0) for i in range(n)])


def bar(ax: "Axes", x: float, value, ci=None, width: float = 0.8, **kwargs) -> None:
    """One bar with its 95% CI whisker, or "n/a" at its foot when the value is missing."""
    if value is None:
        ax.text(x, 0, "n/a", ha="center", va="bottom", fontsize=7, rotation=90)
        return
    err = None
    if ci is not None and ci[0] is not None and ci[1] is not None:
        err = [[max(value - ci[0], 0.0)], [max(ci[1] - value, 0.0)]]
    ax.bar(x, value, width, yerr=err, capsize=2, **kwargs)


def clip(ax: "Axes", low: float = -1.5, high: float = 2.0) -> None:
    """Keep a ratio axis readable: limits at most ``low`` to ``high`` (the tables give the exact values)."""
    bottom, top = ax.get_ylim()
    ax.set_ylim(max(bottom, low), min(top, high))


def method_bars(ax: "Axes", metrics: dict, methods: list[str], labels: list[str], entry) -> None:
    """Bars of every method side by side in each group ``labels[i]``; ``entry(i, method)`` gives ``(value, ci)``.
    Lines at 0 and 1 (dashed): the two ends of a ratio scale."""
    width = 0.8 / max(len(methods), 1)
    for j, method in enumerate(methods):
        for i in range(len(labels)):
            value, ci = entry(i, method)
            bar(ax, i + (j - (len(methods) - 1) / 2) * width, value, ci, width=width, color=colour(metrics, method),
                label=method)
    ax.axhline(0, color="black", lw=0.8)
    ax.axhline(1, color="black", lw=0.8, ls="--")
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels, fontsize=8)
    ax.set_xlim(-0.5, len(labels) - 0.5)


def positions(bars: list[tuple[str, str]]) -> tuple[list[float], list[float], list[str]]:
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


def legend_handles(axes: list["Axes"]) -> dict:
    """Label → handle over ``axes``, each label once (in first-seen order)."""
    unique: dict = {}
    for ax in axes:
        for h, label in zip(*ax.get_legend_handles_labels()):
            unique.setdefault(label, h)
    return unique
