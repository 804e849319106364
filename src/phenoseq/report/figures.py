"""Figures of an evaluation, each returned as PNG bytes: grids of the panels of :mod:`phenoseq.report.panels`
and :mod:`phenoseq.report.panels_cells` (the same drawing code as :mod:`phenoseq.pl`).

Every function takes the ``metrics`` dict (and ``arrays`` where needed) of a
:class:`~phenoseq.evaluate.BenchmarkResult`. Figures are plain :class:`matplotlib.figure.Figure` objects
rendered by Agg, never pyplot, so drawing a report changes no backend and leaves no open figure behind.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from phenoseq.evaluate.benchmark import GAPS, confusion_key
from phenoseq.report import panels, panels_cells, panels_trust
from phenoseq.report.layout import (
    BASELINE,
    REFERENCE,
    accuracy,
    accuracy_bars,
    change_arrays,
    histories,
    ident_splits,
    per_treatment,
    space,
)
from phenoseq.report.style import clip, legend_handles

if TYPE_CHECKING:
    from matplotlib.figure import Figure

PANELS_PER_ROW = 4


def _figure(**kwargs) -> "Figure":
    from matplotlib.figure import Figure

    return Figure(layout="constrained", **kwargs)


def _png(fig: "Figure") -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return buf.getvalue()


def _grid(n: int, width: float, height: float, **kwargs) -> tuple["Figure", list]:
    """``n`` panels, at most :data:`PANELS_PER_ROW` a row; returns the figure and the used axes (spares hidden)."""
    cols = min(n, PANELS_PER_ROW)
    rows = -(-n // cols)
    fig = _figure(figsize=(width * cols, height * rows))
    axes = fig.subplots(rows, cols, squeeze=False, **kwargs)
    flat = list(axes.flat)
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def _legend(fig: "Figure", axes: list, **kwargs) -> None:
    """One legend for the figure, each label once."""
    unique = legend_handles(axes)
    if unique:
        fig.legend(unique.values(), unique.keys(), fontsize=8, frameon=False, **kwargs)


def _below(fig: "Figure", axes: list, ncol: int = 8, **kwargs) -> bytes:
    """The legend below the panels (one row up to ``ncol`` entries); the PNG."""
    _legend(fig, axes, loc="outside lower center", ncol=max(1, min(ncol, len(legend_handles(axes)))), **kwargs)
    return _png(fig)


def _finish(fig: "Figure", axes: list, ylabel: str, n_methods: int) -> bytes:
    """Clip the shared y axis, label it, put the legend below the panels; the PNG."""
    clip(axes[0])
    axes[0].set_ylabel(ylabel)
    return _below(fig, axes, min(max(n_methods, 1), 6))


def _first_column_only(axes: list) -> None:
    """Shared axes: y labels on the first panel of each row only."""
    for i, ax in enumerate(axes):
        if i % PANELS_PER_ROW:
            ax.set_ylabel("")


def scaled_figure(metrics: dict) -> bytes:
    """Scaled scores per metric and method, one panel per split; lines at 0 (training mean) and 1 (replicate)."""
    splits = list(metrics["splits"])
    fig, axes = _grid(len(splits), 5.5, 3.4, sharey=True)
    for ax, split in zip(axes, splits):
        panels.scaled(ax, metrics, split)
    n = len([m for m in metrics["methods"] if m != BASELINE])
    return _finish(fig, axes, "scaled score\n(0 = training mean, 1 = replicate)", n)


def accuracy_figure(metrics: dict, split: str) -> bytes:
    """Balanced accuracy with 95% CIs for every modality and method of ``split``; one panel per profile kind
    (single cells, matched-context sets), grey bars for real data only."""
    every = {p: accuracy_bars(metrics, p) for p in ("single", "multi")}
    bars = {p: b for p, b in every.items() if any(accuracy(metrics, *bar, split, p) for bar in b)}
    bars = bars or {"single": every["single"]}
    fig = _figure(figsize=(0.2 * sum(len(b) for b in bars.values()) + 3.0, 3.6))
    axes = fig.subplots(1, len(bars), sharey=True, squeeze=False,
                        gridspec_kw={"width_ratios": [len(b) + 2 for b in bars.values()]})[0]
    for ax, profile in zip(axes, bars):
        panels.accuracy_panel(ax, metrics, split, profile)
    axes[0].set_ylabel("balanced accuracy (95% CI)")
    _legend(fig, list(axes), loc="outside right upper")
    return _png(fig)


def gap_figure(metrics: dict) -> bytes:
    """Gap recovered (with 95% CI) per method and split; one panel per kind of gap; lines at 0 and 1."""
    fig, axes = _grid(len(GAPS), 4.2, 3.4, sharey=True)
    for ax, gap in zip(axes, GAPS):
        panels.gap(ax, metrics, gap, ident_splits(metrics))
    return _finish(fig, axes, "gap recovered (95% CI)", len(metrics["methods"]))


def confusion_figure(metrics: dict, arrays: dict, split: str, profile: str) -> bytes:
    """Row-normalised confusion matrices: imaging, imaging+synthetic of each method, imaging+real."""
    these = [(REFERENCE, "imaging")] + [(m, "imaging+synthetic") for m in metrics["methods"]]
    these = [p for p in [*these, (REFERENCE, "imaging+real")] if confusion_key(*p, split, profile) in arrays]
    fig, axes = _grid(len(these), 3.3, 3.5)
    image = None
    for ax, (method, modality) in zip(axes, these):
        image = panels.confusion(ax, metrics, arrays, method, modality, split, profile)
    _first_column_only(axes)
    if image is not None:
        fig.colorbar(image, ax=axes, shrink=0.6, label="fraction of the treatment's profiles")
    return _png(fig)


def embedding_figure(metrics: dict, arrays: dict) -> bytes:
    """The shared PCA, one panel per source (real cells, each method), coloured by treatment."""
    sources = metrics["embedding"]["sources"]
    fig, axes = _grid(len(sources), 3.3, 3.3, sharex=True, sharey=True)
    for ax, name in zip(axes, sources):
        panels_cells.embedding(ax, metrics, arrays, color="treatment", sources=[name])
        ax.set_title("real cells" if name == "real" else f"synthetic: {name}", fontsize=9)
    _first_column_only(axes)
    _legend(fig, axes, loc="outside right center", ncol=2 if len(metrics["treatments"]) > 16 else 1)
    return _png(fig)


def embedding_source_figure(metrics: dict, arrays: dict) -> bytes:
    """The shared PCA coloured by source: one panel per method, its cells over the real cells (grey)."""
    methods = [s for s in metrics["embedding"]["sources"] if s != "real"]
    fig, axes = _grid(len(methods), 3.3, 3.3, sharex=True, sharey=True)
    for ax, method in zip(axes, methods):
        panels_cells.embedding(ax, metrics, arrays, color="source", sources=["real", method])
        ax.set_title(f"real cells and {method}", fontsize=9)
    _first_column_only(axes)
    return _below(fig, axes, markerscale=3)


def change_methods(metrics: dict, arrays: dict) -> list[str]:
    """Methods with sampled mean changes, the training mean left out (it predicts no change by construction)."""
    return [m for m in metrics["methods"] if m != BASELINE and change_arrays(metrics, arrays, m) is not None]


def mean_change_figure(metrics: dict, arrays: dict) -> bytes:
    """Predicted against measured change of every sampled gene and well, one panel per method."""
    methods = change_methods(metrics, arrays)
    fig, axes = _grid(len(methods), 3.3, 3.3)
    for ax, method in zip(axes, methods):
        panels_cells.mean_change(ax, metrics, arrays, method)
    _first_column_only(axes)
    return _below(fig, axes, markerscale=3)


def fidelity_methods(metrics: dict, split: str) -> list[str]:
    """Methods with per-treatment values on ``split`` (the training mean left out: its r is 0 by construction)."""
    metric = f"pearson_{space(metrics, split)}"
    return [m for m in metrics["methods"] if m != BASELINE and per_treatment(metrics, m, split, metric)]


def treatment_fidelity_figure(metrics: dict, split: str) -> bytes:
    """Per-treatment r of change against the treatment's morphology effect, one panel per method."""
    methods = fidelity_methods(metrics, split)
    fig, axes = _grid(len(methods), 3.3, 3.1, sharey=True)
    for ax, method in zip(axes, methods):
        panels_cells.treatment_fidelity(ax, metrics, method, split)
    _first_column_only(axes)
    return _below(fig, axes)


def history_figure(metrics: dict) -> bytes:
    """Training and validation loss per epoch, one panel per method that recorded a history."""
    found = histories(metrics)
    fig, axes = _grid(len(found), 4.5, 3.0)
    for ax, (method, records) in zip(axes, found.items()):
        panels_cells.history(ax, records, title=method)
    return _below(fig, axes)


def trust_figure(metrics: dict) -> bytes:
    """Interval coverage per split and confidence against error, a pair of panels per method with a trust entry."""
    methods = panels_trust.trust_methods(metrics)
    fig, axes = _grid(2 * len(methods), 4.4, 3.4)
    for i, method in enumerate(methods):
        panels_trust.coverage(axes[2 * i], metrics, method)
        panels_trust.confidence_error(axes[2 * i + 1], metrics, method)
    return _below(fig, axes[::2])
