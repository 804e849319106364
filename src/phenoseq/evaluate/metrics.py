"""``metrics.json`` and ``arrays.npz``: the saved results of an evaluation, and the rows of its tables.

The layout of ``metrics.json`` is documented in :mod:`phenoseq.evaluate.workflow` (``format:
"phenoseq-metrics"``, one layout for single-cell and bulk modes, seen and unseen protocols).
``arrays.npz`` (plain numeric arrays, loaded with ``allow_pickle=False``) holds the confusion matrices
``confusion__<method>__<modality>__<split>__<profile>`` (rows true, columns predicted, in the treatment order of
``metrics["treatments"]``) and ``embedding_xy``, ``embedding_treatment``, ``embedding_source``.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from phenoseq.errors import PhenoseqError
from phenoseq.evaluate.benchmark import REFERENCE
from phenoseq.evaluate.wells import REPLICATE
from phenoseq.evaluate.workflow import FORMAT, BenchmarkResult
from phenoseq.io.files import atomic_path

METRICS_FILE = "metrics.json"
ARRAYS_FILE = "arrays.npz"


def write_results(result: BenchmarkResult, out_dir: str | Path) -> Path:
    """Write ``metrics.json`` and ``arrays.npz`` into ``out_dir`` (each atomically); return the metrics path.

    The metrics are serialised before anything is written, so a failure (e.g. a NaN) leaves nothing behind.
    """
    out_dir = Path(out_dir)
    text = json.dumps(result.metrics, indent=1, allow_nan=False)
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_dir / ARRAYS_FILE) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **result.arrays)
    with atomic_path(out_dir / METRICS_FILE) as tmp:
        tmp.write_text(text)
    return out_dir / METRICS_FILE


def read_results(directory: str | Path) -> BenchmarkResult:
    """Read what :func:`write_results` wrote (``arrays.npz`` is optional: figures that need it are skipped)."""
    directory = Path(directory)
    path = directory / METRICS_FILE
    try:
        metrics = json.loads(path.read_text())
    except FileNotFoundError:
        raise PhenoseqError(f"{path}: no such file; pass the folder `phenoseq evaluate --out` wrote") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PhenoseqError(f"{path}: not a readable metrics file ({exc})") from exc
    if not isinstance(metrics, dict) or metrics.get("format") != FORMAT:
        raise PhenoseqError(f"{path}: not a phenoseq metrics file (format {FORMAT!r}); re-run `phenoseq evaluate`")
    arrays: dict[str, np.ndarray] = {}
    if (directory / ARRAYS_FILE).exists():
        try:
            with np.load(directory / ARRAYS_FILE, allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise PhenoseqError(f"{directory / ARRAYS_FILE}: not a readable array file ({exc}); re-run "
                                "`phenoseq evaluate`, or delete it to draw the report without its figures") from exc
    return BenchmarkResult(metrics=metrics, arrays=arrays)


def default_split(metrics: dict) -> str:
    """WE ``test`` when evaluated, else the first split."""
    return "test" if "test" in metrics["splits"] else next(iter(metrics["splits"]))


def _get(d: dict, *path):
    for key in path:
        if not isinstance(d, dict) or key not in d:
            return None
        d = d[key]
    return d


def well_rows(metrics: dict, split: str | None = None) -> list[dict]:
    """One row per method and the real replicate: the well-level figures of ``split`` and their scaled scores."""
    split = split or default_split(metrics)
    rows = []
    for method in [*metrics["methods"], REPLICATE]:
        w = _get(metrics, "wells", method, split)
        if w is None:
            continue
        s = _get(metrics, "scaled", method, split) or {}
        rows.append({
            "method": method,
            "split": split,
            "pearson_genes": _get(w, "pearson_genes", "median"),
            "pearson_latent": _get(w, "pearson_latent", "median"),
            "pearson_genes_control": _get(w, "pearson_genes_control", "median"),
            "rank": _get(w, "rank", "mean"),
            "top1": _get(w, "rank", "top1"),
            "chance": _get(w, "rank", "chance_mean"),
            "energy_ratio": _get(w, "energy_ratio", "median"),
            "energy_ratio_centred": _get(w, "energy_ratio_centred", "median"),
            "moa": _get(w, "moa", "top1"),
            "n_wells": _get(w, "rank", "n"),
            "scaled": {k: v["scaled"] for k, v in s.items()},
        })
    return rows


def identification_rows(metrics: dict, split: str | None = None) -> list[dict]:
    """One row per method: accuracies and gaps of the identification benchmark on ``split`` (empty when absent)."""
    ident = metrics.get("identification")
    split = split or default_split(metrics)
    if not ident or split not in ident["splits"]:
        return []
    acc = ident["accuracy"]

    def a(method: str, modality: str, profile: str):
        return _get(acc, method, modality, split, profile, "balanced_accuracy")

    rows = []
    for method in metrics["methods"]:
        gap = ident["gap"][method][split]
        rows.append({
            "method": method,
            "split": split,
            "multi_imaging": a(REFERENCE, "imaging", "multi"),
            "multi_real": a(REFERENCE, "imaging+real", "multi"),
            "multi_synthetic": a(method, "imaging+synthetic", "multi"),
            "gap_matched": gap["matched"]["value"],
            "gap_matched_ci": gap["matched"]["ci"],
            "single_imaging": a(REFERENCE, "imaging", "single"),
            "single_pooled": a(REFERENCE, "imaging+pooled", "single"),
            "single_pooled_real": a(REFERENCE, "imaging+pooled+real", "single"),
            "single_pooled_synthetic": a(method, "imaging+pooled+synthetic", "single"),
            "gap_vs_pooled": gap["vs_pooled"]["value"],
            "gap_vs_pooled_ci": gap["vs_pooled"]["ci"],
            "gap_vs_imaging": gap["vs_imaging"]["value"],
            "gap_vs_imaging_ci": gap["vs_imaging"]["ci"],
        })
    return rows
