"""``metrics.json`` and ``arrays.npz``: the saved results of a benchmark, and the headline table.

``metrics.json`` layout::

    methods, treatments, splits {split: {label, n_wells}}, config, settings {method: uns["phenoseq"]}
    accuracy[method][modality][split][profile] = {balanced_accuracy, ci: [low, high], n_wells, n_profiles}
        (method "reference" holds imaging, real_rna, imaging+real; each method holds synthetic_rna,
        real_to_synthetic, imaging+synthetic)
    gap_recovered[method][split][profile] = {value, ci}
    fidelity[method][split] = {localisation, energy_ratio_median, energy_ratio_iqr, energy_ratio_per_well,
                               gene_pearson_median, n_genes}
    embedding = {split, sources, explained_variance}

``arrays.npz`` (plain numeric arrays, loaded with ``allow_pickle=False``): confusion matrices
``confusion__<method>__<modality>__<split>__<profile>`` (rows true, columns predicted, treatment order of
``metrics["treatments"]``) and ``embedding_xy``, ``embedding_treatment``, ``embedding_source``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from phenoseq.errors import PhenoseqError
from phenoseq.evaluate.benchmark import REFERENCE, BenchmarkResult
from phenoseq.io.files import atomic_path

METRICS_FILE = "metrics.json"
ARRAYS_FILE = "arrays.npz"


def write_results(result: BenchmarkResult, out_dir: str | Path) -> Path:
    """Write ``metrics.json`` and ``arrays.npz`` into ``out_dir`` (each atomically); return the metrics path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_dir / ARRAYS_FILE) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **result.arrays)
    with atomic_path(out_dir / METRICS_FILE) as tmp:
        tmp.write_text(json.dumps(result.metrics, indent=1, allow_nan=False))
    return out_dir / METRICS_FILE


def read_results(directory: str | Path) -> BenchmarkResult:
    """Read what :func:`write_results` wrote (``arrays.npz`` is optional: figures that need it are skipped)."""
    directory = Path(directory)
    path = directory / METRICS_FILE
    try:
        metrics = json.loads(path.read_text())
    except FileNotFoundError:
        raise PhenoseqError(f"{path}: no such file; pass the folder `phenoseq evaluate --out` wrote") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise PhenoseqError(f"{path}: not a readable metrics file ({exc})") from exc
    if metrics.get("format") != "phenoseq-benchmark":
        raise PhenoseqError(f"{path}: not a phenoseq benchmark metrics file")
    arrays: dict[str, np.ndarray] = {}
    if (directory / ARRAYS_FILE).exists():
        try:
            with np.load(directory / ARRAYS_FILE, allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
        except (OSError, ValueError) as exc:
            raise PhenoseqError(f"{directory / ARRAYS_FILE}: not a readable array file ({exc})") from exc
    return BenchmarkResult(metrics=metrics, arrays=arrays)


def _acc(metrics: dict, method: str, modality: str, split: str, profile: str) -> float | None:
    try:
        return metrics["accuracy"][method][modality][split][profile]["balanced_accuracy"]
    except KeyError:
        return None


def headline_rows(metrics: dict, split: str | None = None, profile: str = "single") -> list[dict]:
    """One row per method: imaging, imaging+real, imaging+synthetic accuracy, gap recovered (+ CI),
    median energy ratio and localisation, on ``split`` (default: WE ``test`` when evaluated)."""
    split = split or ("test" if "test" in metrics["splits"] else next(iter(metrics["splits"])))
    rows = []
    for method in metrics["methods"]:
        gap = metrics["gap_recovered"][method][split][profile]
        fid = metrics["fidelity"][method][split]
        rows.append({
            "method": method,
            "split": split,
            "profile": profile,
            "imaging": _acc(metrics, REFERENCE, "imaging", split, profile),
            "imaging+real": _acc(metrics, REFERENCE, "imaging+real", split, profile),
            "imaging+synthetic": _acc(metrics, method, "imaging+synthetic", split, profile),
            "synthetic_rna": _acc(metrics, method, "synthetic_rna", split, profile),
            "gap_recovered": gap["value"],
            "gap_ci": gap["ci"],
            "energy_ratio": fid["energy_ratio_median"],
            "localisation": fid["localisation"],
            "gene_pearson": fid["gene_pearson_median"],
        })
    return rows
