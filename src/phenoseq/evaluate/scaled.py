"""Scaled scores: where a method lands between "no better than the training mean" and "as good as a real replicate".

For a figure ``u`` of a method, ``b`` of the training-mean baseline and ``r`` of the real-replicate reference
(all on the same wells, by the same code)::

    s = (u − b) / (r − b)

0 means no better than predicting the training mean for every well, 1 as good as measuring a replicate
well, below 0 worse than the mean. The formula works whether larger (Pearson) or smaller (rank, energy
ratio) is better, since ``b`` and ``r`` carry the direction. ``s`` is ``None`` when ``b``, ``r`` or ``u`` is
missing (e.g. no replicate wells: one profile per compound) or when ``r`` does not beat ``b``.
"""

from __future__ import annotations

BASELINE = "training_mean"
CEILING = "replicate"
# metric -> the summary statistic scaled, and whether larger is better (for the "ceiling beats baseline" check)
SCALED_METRICS = {
    "pearson_genes": ("median", True),
    "pearson_latent": ("median", True),
    "pearson_genes_control": ("median", True),
    "pearson_latent_control": ("median", True),
    "rank": ("mean", False),
    "energy_ratio": ("median", False),
    "moa": ("top1", True),
}


def scaled(u: float | None, b: float | None, r: float | None, larger_is_better: bool = True) -> float | None:
    """``(u − b) / (r − b)``, or ``None`` when a value is missing or the ceiling does not beat the baseline."""
    if u is None or b is None or r is None:
        return None
    if (r - b if larger_is_better else b - r) <= 1e-12:
        return None
    return float((u - b) / (r - b))


def scaled_scores(wells: dict, methods: list[str], baseline: str = BASELINE, ceiling: str = CEILING) -> dict:
    """``scaled[method][split][metric] = {value, baseline, ceiling, scaled}`` from the well-level results
    ``wells[method][split][metric]`` (see :mod:`phenoseq.evaluate.wells`)."""
    out: dict = {}
    for method in methods:
        out[method] = {}
        for split, metrics in wells.get(method, {}).items():
            entry = {}
            for metric, (stat, larger) in SCALED_METRICS.items():
                if metric not in metrics:
                    continue
                u = metrics[metric].get(stat)
                b = wells.get(baseline, {}).get(split, {}).get(metric, {}).get(stat)
                r = 1.0 if metric == "energy_ratio" else wells.get(ceiling, {}).get(split, {}).get(metric, {}).get(stat)
                entry[metric] = {"value": u, "baseline": b, "ceiling": r, "scaled": scaled(u, b, r, larger)}
            out[method][split] = entry
    return out
