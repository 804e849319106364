"""Plotting, scanpy-style: each function draws one figure of an evaluation on a matplotlib Axes and returns it.

``data`` is a :class:`~phenoseq.evaluate.BenchmarkResult`, the folder ``phenoseq evaluate --out`` wrote, or a
``metrics`` dict (figures that need arrays then raise). ``ax=None`` makes a new figure (pyplot, so it shows in
a notebook); pass an Axes to draw into your own layout. The report's PNGs are drawn by the same panel code
(:mod:`phenoseq.report.panels`, :mod:`phenoseq.report.panels_cells`)::

    from phenoseq import pl
    pl.scaled_scores(result)
    pl.embedding(result, color="treatment", sources=["real", "phenoseq"])
    pl.mean_change_scatter(result, "phenoseq")
    pl.treatment_fidelity(result, "phenoseq")
    pl.history(model.history)

It sits at the report's level (it imports ``report`` and ``evaluate``); no pipeline stage imports it.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Union

from phenoseq.errors import PhenoseqError
from phenoseq.evaluate.workflow import BenchmarkResult
from phenoseq.report import panels, panels_cells
from phenoseq.report.layout import REFERENCE, figure_split, histories, ident_splits

if TYPE_CHECKING:
    from matplotlib.axes import Axes

Data = Union[BenchmarkResult, str, os.PathLike, dict]

__all__ = ["accuracy", "confusion", "embedding", "gap", "history", "mean_change_scatter", "scaled_scores",
           "treatment_fidelity"]


def _data(data: Data) -> tuple[dict, dict]:
    """``(metrics, arrays)`` of a result, a results folder or a metrics dict."""
    if isinstance(data, BenchmarkResult):
        return data.metrics, data.arrays
    if isinstance(data, dict) and "format" in data:
        return data, {}
    if isinstance(data, (str, os.PathLike)):
        from phenoseq.evaluate.metrics import read_results

        result = read_results(data)
        return result.metrics, result.arrays
    raise PhenoseqError(f"expected an evaluation result, its folder or its metrics dict, got {type(data).__name__}")


def _axes(ax: "Axes | None", size: tuple[float, float]) -> "Axes":
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=size, layout="constrained")[1]


def _legend(ax: "Axes", outside: bool = False, **kwargs) -> "Axes":
    """A legend of the Axes' labelled artists (outside on the right for long ones, e.g. treatments)."""
    if ax.get_legend_handles_labels()[0]:
        where = {"loc": "center left", "bbox_to_anchor": (1.0, 0.5)} if outside else {}
        ax.legend(fontsize=7, frameon=False, **where, **kwargs)
    return ax


def _split(metrics: dict, split: str | None) -> str:
    split = split or ("test" if "test" in metrics["splits"] else next(iter(metrics["splits"])))
    if split not in metrics["splits"]:
        raise PhenoseqError(f"split {split!r} was not evaluated; splits: {list(metrics['splits'])}")
    return split


def scaled_scores(data: Data, split: str | None = None, ax: "Axes | None" = None) -> "Axes":
    """Scaled scores of every method (0 = training mean, 1 = real replicate) on one split (default ``test``)."""
    metrics, _ = _data(data)
    ax = _axes(ax, (5.5, 3.4))
    panels.scaled(ax, metrics, _split(metrics, split))
    ax.set_ylabel("scaled score")
    return _legend(ax)


def accuracy(data: Data, split: str | None = None, profile: str = "single", ax: "Axes | None" = None) -> "Axes":
    """Balanced accuracy of treatment identification per modality (``profile``: ``single`` or ``multi``)."""
    metrics, _ = _data(data)
    if not ident_splits(metrics):
        raise PhenoseqError("this result has no treatment identification (bulk, unseen, or identification off)")
    split = split or ident_splits(metrics)[0]
    ax = _axes(ax, (7.0, 3.6))
    panels.accuracy_panel(ax, metrics, split, profile)
    ax.set_ylabel("balanced accuracy (95% CI)")
    return _legend(ax, outside=True)


def gap(data: Data, gap: str = "matched", ax: "Axes | None" = None) -> "Axes":
    """Gap recovered per method and split for one comparison (``matched``, ``vs_pooled``, ``vs_imaging``)."""
    metrics, _ = _data(data)
    if not ident_splits(metrics):
        raise PhenoseqError("this result has no treatment identification (bulk, unseen, or identification off)")
    ax = _axes(ax, (4.5, 3.4))
    panels.gap(ax, metrics, gap, ident_splits(metrics))
    ax.set_ylabel("gap recovered (95% CI)")
    return _legend(ax)


def confusion(data: Data, method: str = REFERENCE, modality: str = "imaging", split: str | None = None,
              profile: str = "single", ax: "Axes | None" = None) -> "Axes":
    """Row-normalised confusion matrix of one classifier (``method`` ``reference`` for real-data modalities)."""
    from phenoseq.evaluate.benchmark import confusion_key

    metrics, arrays = _data(data)
    split = split or (ident_splits(metrics) or [None])[0]
    if split is None or confusion_key(method, modality, split, profile) not in arrays:
        raise PhenoseqError(f"no confusion matrix for {method} / {modality} / {split} / {profile} in this result")
    ax = _axes(ax, (4.0, 4.0))
    ax.figure.colorbar(panels.confusion(ax, metrics, arrays, method, modality, split, profile), ax=ax, shrink=0.7)
    return ax


def embedding(data: Data, color: str = "source", sources: list[str] | None = None, ax: "Axes | None" = None,
              size: float = 4.0) -> "Axes":
    """Real and synthetic cells co-embedded in one PCA (fitted on real cells), coloured by ``"source"`` or
    ``"treatment"``; ``sources`` picks some of ``"real"`` and the methods (default all)."""
    metrics, arrays = _data(data)
    ax = _axes(ax, (5.0, 4.0))
    panels_cells.embedding(ax, metrics, arrays, color=color, sources=sources, size=size)
    return _legend(ax, outside=True, ncol=2 if color == "treatment" and len(metrics["treatments"]) > 16 else 1,
                   markerscale=2)


def mean_change_scatter(data: Data, method: str, well: str | None = None, ax: "Axes | None" = None) -> "Axes":
    """Predicted against measured well-mean change from the training mean, gene by gene: the sampled wells
    pooled (``well=None``) or one of them (``result.metrics["mean_change"]["wells"]``)."""
    metrics, arrays = _data(data)
    ax = _axes(ax, (4.2, 4.0))
    panels_cells.mean_change(ax, metrics, arrays, method, well)
    return _legend(ax, markerscale=2)


def treatment_fidelity(data: Data, method: str, split: str | None = None, metric: str | None = None,
                       labels: bool = True, ax: "Axes | None" = None) -> "Axes":
    """Per treatment, the median over its held-out wells of ``metric`` (default: r of change; also e.g.
    ``"energy_ratio"``) against its morphology effect, coloured visible / silent when the data mark it."""
    metrics, _ = _data(data)
    ax = _axes(ax, (5.0, 4.0))
    split = _split(metrics, split or figure_split(metrics))
    panels_cells.treatment_fidelity(ax, metrics, method, split, metric, labels=labels)
    return _legend(ax)


def history(history, method: str | None = None, ax: "Axes | None" = None) -> "Axes":
    """Training and validation loss per epoch. ``history``: ``PhenoSeq.history`` (a list of ``{epoch,
    train_loss, val_loss}``), a model with a ``history``, or an evaluation result / folder / metrics dict
    (``method`` picks among the methods that recorded one; default the first)."""
    records, title = history, method
    if hasattr(history, "history") and not isinstance(history, BenchmarkResult):
        records = history.history
    elif not isinstance(history, list):
        found = histories(_data(history)[0])
        if not found:
            raise PhenoseqError("this result holds no training history (no method was trained by epochs)")
        title = method or next(iter(found))
        if title not in found:
            raise PhenoseqError(f"no training history of {title!r}; methods with one: {list(found)}")
        records = found[title]
    ax = _axes(ax, (5.0, 3.2))
    panels_cells.history(ax, list(records), title=title)
    return _legend(ax)
