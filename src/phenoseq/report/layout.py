"""What the report reads from a ``metrics.json`` dict (layout in :mod:`phenoseq.evaluate.workflow`).

Shared by the page (:mod:`phenoseq.report.html`) and the figures (:mod:`phenoseq.report.figures`), so both show
the same metrics, bars and labels. Every look-up tolerates missing entries: they come back as ``None``.
"""

from __future__ import annotations

from phenoseq.evaluate.benchmark import MODALITIES, REFERENCE
from phenoseq.evaluate.scaled import BASELINE
from phenoseq.evaluate.wells import REPLICATE

__all__ = ["BASELINE", "REFERENCE", "REPLICATE", "accuracy", "accuracy_bars", "change_arrays", "dig",
           "figure_split", "histories", "ident_splits", "per_treatment", "scaled_metrics", "space", "treatment_kind"]

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


def figure_split(metrics: dict) -> str:
    """The split the cell-level figures show: that of the sampled mean changes, else ``test``, else the first."""
    chosen = dig(metrics, "mean_change", "split")
    if chosen in metrics["splits"]:
        return chosen
    return "test" if "test" in metrics["splits"] else next(iter(metrics["splits"]))


def change_arrays(metrics: dict, arrays: dict, method: str):
    """``(real, predicted)`` ``(n_wells, n_features)`` sampled mean changes of ``method``, or ``None`` when the
    result keeps none (older results, results without arrays, the unseen protocol)."""
    real, pred = arrays.get("mean_change_real"), arrays.get(f"mean_change__{method}")
    if not metrics.get("mean_change") or real is None or pred is None:
        return None
    return real, pred


def per_treatment(metrics: dict, method: str, split: str, metric: str) -> dict[str, float]:
    """Treatment → median over its wells of a per-well figure (``wells[method][split][metric]["per_well"]``);
    empty when the figure or the wells' treatments (``treatment_info``) are missing."""
    import numpy as np

    per_well = dig(metrics, "wells", method, split, metric, "per_well") or {}
    treatment_of = dig(metrics, "treatment_info", "well_treatment") or {}
    grouped: dict[str, list[float]] = {}
    for well, value in per_well.items():
        if well in treatment_of and value is not None:
            grouped.setdefault(treatment_of[well], []).append(value)
    return {t: float(np.median(v)) for t, v in sorted(grouped.items())}


def treatment_kind(metrics: dict, treatment: str) -> str | None:
    """``"control"``, ``"visible morphology"`` or ``"silent morphology"``; ``None`` when the data do not say."""
    info = metrics.get("treatment_info") or {}
    if treatment in (info.get("controls") or []):
        return "control"
    visible = (info.get("morphology_visible") or {}).get(treatment)
    return None if visible is None else "visible morphology" if visible else "silent morphology"


def histories(metrics: dict) -> dict[str, list[dict]]:
    """Method → per-epoch training record (``metrics["history"]``); empty when no method recorded one."""
    return {m: h for m, h in (metrics.get("history") or {}).items() if h}


def trust_rows(entry: dict) -> list[tuple[str, str, dict]]:
    """(split, row name, figures) of a trust entry: each split, then its visible- and silent-morphology wells."""
    rows = []
    for split, t in entry["splits"].items():
        rows.append((split, split if t["exchangeable"] else f"{split} (not exchangeable)", t))
        for kind, k in (t.get("by_morphology") or {}).items():
            rows.append((split, f"  {kind} morphology", k))
    return rows
