"""Panels of the trust section: interval coverage per split, and confidence against realised error.

Both read ``metrics["trust"][method]`` (layout in :mod:`phenoseq.evaluate.trust`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from phenoseq.report.layout import dig
from phenoseq.report.style import REFERENCE_COLOUR, bar, colour, split_title

if TYPE_CHECKING:
    from matplotlib.axes import Axes

SPLIT_COLOURS = {"test": "#1f77b4", "test_he": "#e8710a", "unseen": "#2ca02c"}


def trust_methods(metrics: dict) -> list[str]:
    """Methods with a trust entry, in the result's method order."""
    return [m for m in metrics["methods"] if dig(metrics, "trust", m)]


def coverage(ax: "Axes", metrics: dict, method: str) -> None:
    """Coverage of the method's intervals and of the training-mean interval, per split; a line at the level."""
    entry = metrics["trust"][method]
    splits = list(entry["splits"])
    for i, split in enumerate(splits):
        s = entry["splits"][split]
        bar(ax, i - 0.2, s["coverage"], width=0.4, color=colour(metrics, method), label=method)
        bar(ax, i + 0.2, s["baseline_coverage"], width=0.4, color=REFERENCE_COLOUR,
            label="training-mean interval")
        if s["width"] is not None:
            ax.annotate(f"w {s['width']:.2f}", (i - 0.2, 0.02), ha="center", fontsize=7, color="white", rotation=90)
        if s["baseline_width"] is not None:
            ax.annotate(f"w {s['baseline_width']:.2f}", (i + 0.2, 0.02), ha="center", fontsize=7, color="white",
                        rotation=90)
    ax.axhline(entry["level"], ls="--", lw=1, color="black", label=f"nominal {entry['level']:.0%}")
    ax.set_xticks(range(len(splits)), [split_title(metrics, s) for s in splits], fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("coverage of real well means")
    ax.set_title(f"{method}: interval coverage (w = mean width)", fontsize=9)


def confidence_error(ax: "Axes", metrics: dict, method: str) -> None:
    """Each scored well's confidence against the RMS error of its predicted well mean, coloured by split."""
    entry = metrics["trust"][method]
    for split, s in entry["splits"].items():
        recs = list(s["per_well"].values())
        if not recs:
            continue
        conf = np.array([r["confidence"] for r in recs])
        err = np.array([r["error"] for r in recs])
        rho = "n/a" if s["spearman"] is None else f"{s['spearman']:.2f}"
        ax.scatter(conf, err, s=10, alpha=0.7, color=SPLIT_COLOURS.get(split),
                   label=f"{split_title(metrics, split)} (Spearman {rho})")
    ax.set_xlabel("confidence")
    ax.set_ylabel("RMS error of the well mean")
    ax.set_title(f"{method}: confidence against error", fontsize=9)
    ax.legend(fontsize=7, frameon=False)
