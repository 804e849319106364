"""What the report reads from a ``metrics.json`` dict (layout in :mod:`phenoseq.evaluate.workflow`).

Shared by the page (:mod:`phenoseq.report.html`) and the figures (:mod:`phenoseq.report.figures`), so both show
the same metrics, bars and labels. Every look-up tolerates missing entries: they come back as ``None``.
"""

from __future__ import annotations

from phenoseq.evaluate.benchmark import MODALITIES, REFERENCE
from phenoseq.evaluate.scaled import BASELINE
from phenoseq.evaluate.wells import REPLICATE

__all__ = ["BASELINE", "REFERENCE", "REPLICATE", "accuracy", "accuracy_bars", "dig", "ident_splits",
           "scaled_metrics", "space"]

# Short names of the scaled metrics, in the order they are shown ({space}: genes or latent).
SCALED_LABELS = {
    "pearson_{space}": "r",
    "pearson_{space}_control": "r vs control",
    "rank": "rank",
    "energy_ratio": "energy ratio",
    "moa": "MoA",
}


def dig(d, *path):
    """``d[path[0]][path[1]]...``, or ``None`` where a key is missing."""
    for key in path:
        if not isinstance(d, dict) or key not in d:
            return None
        d = d[key]
    return d


def space(metrics: dict, split: str) -> str:
    """``"genes"`` when the well-level figures of ``split`` were scored in gene space, else ``"latent"``."""
    entries = (dig(metrics, "wells", m, split) or {} for m in metrics.get("wells", {}))
    return "genes" if any("pearson_genes" in e for e in entries) else "latent"


def scaled_metrics(metrics: dict, split: str) -> list[tuple[str, str]]:
    """``(metric, label)`` of the scaled scores present for ``split`` (any method), in display order."""
    present = {k for m in metrics["methods"] for k in dig(metrics, "scaled", m, split) or {}}
    keys = [(k.format(space=space(metrics, split)), label) for k, label in SCALED_LABELS.items()]
    return [(k, label) for k, label in keys if k in present]


def ident_splits(metrics: dict) -> list[str]:
    """The splits with treatment-identification results (seen single-cell results only)."""
    return list(dig(metrics, "identification", "splits") or [])


def accuracy(metrics: dict, method: str, modality: str, split: str, profile: str) -> dict | None:
    """The ``{balanced_accuracy, ci, ...}`` entry of one classifier, or ``None`` when it was not run."""
    return dig(metrics, "identification", "accuracy", method, modality, split, profile)


def accuracy_bars(metrics: dict, profile: str) -> list[tuple[str, str]]:
    """``(method, modality)`` bars of the accuracy figure: real-data modalities, then per synthetic modality every
    method that has it (multi-cell profiles: the methods with matched-context sets only)."""
    ident = metrics.get("identification") or {}
    methods = ident.get("matched_methods", []) if profile == "multi" else metrics["methods"]
    methods = [m for m in metrics["methods"] if m in methods]
    bars = [(REFERENCE, mod) for mod in MODALITIES[profile]["reference"]]
    return bars + [(m, mod) for mod in MODALITIES[profile]["method"] for m in methods]
