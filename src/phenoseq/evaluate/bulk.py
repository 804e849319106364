"""Bulk (well-level) evaluation: does the generated expression profile of a held-out sample match its real one?

In bulk mode every sample (well) has a single real expression profile (L1000 landmark genes, or well
means of a single-cell screen). For each held-out sample of a split (WE ``test``, HE ``test_he``):

* generated profile = mean of the sample's synthetic cells' decoded expression (``X`` over
  ``rna_space.genes``);
* real profile = ``rna_space.expression`` of the sample's RNA rows (their mean when a sample has several).

Figures per method and split
----------------------------
``pearson``
    Per-sample Pearson correlation between the generated and the real profile, both **centred by the
    training samples' mean profile** (the "delta" profile: what is specific to this sample).
``pearson_raw``
    The same on uncentred profiles, as often quoted in the literature. It is close to 1 for any
    plausible generator (even one that outputs the training mean for every sample), because every
    profile shares the baseline expression level of each gene; read it as a sanity check only.
``rank``
    Identification: the held-out real (centred) profiles of the split are ranked by correlation with a
    sample's generated (centred) profile; the rank of the true sample (1 = best; ties share the average
    rank). Reported as mean and median rank, top-1 and top-5 fractions, and chance = ``(n + 1) / 2``
    mean rank for ``n`` held-out samples. Centring is essential here too: uncentred, all profiles
    correlate ~1 with each other and the ranking is decided by noise in the shared baseline.

A profile with no variance after centring (e.g. a generator that returns the training mean) has
correlation 0 with everything: it carries no sample-specific information.

``reference[split]`` holds the same Pearson figures for the real profiles pushed through the RNA space
(project then decode): the ceiling for any generator that works in that space.

``metrics.json`` layout (JSON, ``mode: "bulk"``)::

    format, mode, methods, genes (count), splits {split: {label, n_samples, samples}},
    centring {n_training_samples}, settings {method: uns["phenoseq"]},
    results[method][split] = {
        pearson: {median, iqr: [q25, q75], mean, per_sample {sample: r}},
        pearson_raw: {median, iqr, mean, per_sample},
        rank: {mean, median, top1, top5, chance_mean, n_samples, per_sample {sample: rank}}},
    reference[split] = {pearson: {...}, pearson_raw: {...}}
"""

from __future__ import annotations

import json
from pathlib import Path

import anndata as ad
import numpy as np

from phenoseq.errors import PhenoseqError
from phenoseq.evaluate.jsonable import jsonable
from phenoseq.groups import group_means
from phenoseq.io.files import atomic_path
from phenoseq.io.screen import PairedScreen
from phenoseq.io.validate import preview
from phenoseq.rna.space import RNASpace

BULK_FORMAT = "phenoseq-bulk-benchmark"
METRICS_FILE = "metrics.json"
SPLIT_LABELS = {"test": "WE", "test_he": "HE"}


def real_profiles(screen: PairedScreen, rna_space: RNASpace, samples: list[str]) -> np.ndarray:
    """``(len(samples), G)`` real expression of each sample over ``rna_space.genes`` (mean of its RNA rows)."""
    rna = screen.subset("rnaseq", samples)
    labels = rna.obs[screen.keys.sample].astype(str).to_numpy()
    return group_means(rna_space.expression(rna), labels, samples)[1]


def _synthetic_expression(syn: ad.AnnData, rna_space: RNASpace, name: str) -> np.ndarray:
    """``(n_cells, G)`` decoded expression of ``syn`` in the order of ``rna_space.genes``."""
    if syn.n_vars == 0:
        raise PhenoseqError(
            f"{name}: the synthetic cells carry no decoded expression (X has 0 columns; the model works in an "
            "embedding space); bulk evaluation compares expression profiles and needs a model with an RNA space."
        )
    genes = syn.var_names
    missing = [g for g in rna_space.genes if g not in set(genes)]
    if missing:
        raise PhenoseqError(
            f"{name}: {len(missing)} of the model's {len(rna_space.genes)} genes are absent from the synthetic "
            f"cells' var_names (e.g. {missing[:5]}); the cells were made by a different model. Regenerate them "
            "with the model passed to --model."
        )
    X = syn.X.toarray() if hasattr(syn.X, "toarray") else np.asarray(syn.X)
    return np.asarray(X, dtype=np.float64)[:, genes.get_indexer(rna_space.genes)]


def _check_coverage(syn: ad.AnnData, screen: PairedScreen, name: str, split: str, samples: list[str]) -> None:
    k = screen.keys
    if k.sample not in syn.obs.columns:
        raise PhenoseqError(f"{name}: obs has no {k.sample!r} column naming each synthetic cell's sample.")
    missing = set(samples) - set(syn.obs[k.sample].astype(str))
    if missing:
        raise PhenoseqError(
            f"{name}: no synthetic cells for held-out samples {preview(sorted(missing))} of split {split!r}; generate for "
            "every sample of the held-out splits (e.g. `phenoseq generate` on the whole imaging file), or "
            "evaluate fewer splits (--split)."
        )


def _row_correlation(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """``(n_a, n_b)`` Pearson correlation between rows of ``A`` and rows of ``B``; 0 for a constant row."""
    A = A - A.mean(axis=1, keepdims=True)
    B = B - B.mean(axis=1, keepdims=True)
    na, nb = np.linalg.norm(A, axis=1), np.linalg.norm(B, axis=1)
    # A constant profile has no direction: define its correlation as 0 (no sample-specific information)
    # rather than NaN, which JSON cannot hold and which would silently drop the sample from the medians.
    tiny = 1e-12 * max(float(na.max(initial=0.0)), float(nb.max(initial=0.0)), 1e-300)
    na = np.where(na > tiny, na, np.inf)
    nb = np.where(nb > tiny, nb, np.inf)
    return np.clip((A @ B.T) / na[:, None] / nb[None, :], -1.0, 1.0)


def _summary(values: np.ndarray, samples: list[str]) -> dict:
    q25, q75 = np.percentile(values, [25, 75])
    return {"median": float(np.median(values)), "iqr": [float(q25), float(q75)], "mean": float(values.mean()),
            "per_sample": {s: float(v) for s, v in zip(samples, values)}}


def _ranks(corr: np.ndarray) -> np.ndarray:
    """Rank (1 = best) of the diagonal entry within each row of a square correlation matrix; ties averaged."""
    own = np.diag(corr)[:, None]
    # Exact float ties are resolved by a tolerance so that a generated profile equal to two real profiles
    # does not win or lose by rounding: both share the average rank.
    tol = 1e-9
    higher = (corr > own + tol).sum(axis=1)
    tied = (np.abs(corr - own) <= tol).sum(axis=1) - 1
    return 1.0 + higher + tied / 2.0


def _rank_summary(ranks: np.ndarray, samples: list[str]) -> dict:
    n = len(ranks)
    return {"mean": float(ranks.mean()), "median": float(np.median(ranks)),
            "top1": float(np.mean(ranks <= 1.0)), "top5": float(np.mean(ranks <= 5.0)),
            "chance_mean": (n + 1) / 2.0, "n_samples": n,
            "per_sample": {s: float(r) for s, r in zip(samples, ranks)}}


def score_profiles(generated: np.ndarray, real: np.ndarray, baseline: np.ndarray, samples: list[str]) -> dict:
    """Pearson and identification figures of ``generated`` vs ``real`` profiles, both ``(n, G)``, row i = sample i.

    ``baseline`` ``(G,)`` is the training mean profile subtracted before the centred figures.
    """
    centred = _row_correlation(generated - baseline, real - baseline)
    raw = np.array([_row_correlation(g[None], r[None])[0, 0] for g, r in zip(generated, real)])
    return {"pearson": _summary(np.diag(centred), samples), "pearson_raw": _summary(raw, samples),
            "rank": _rank_summary(_ranks(centred), samples)}


def evaluate_bulk(
    screen: PairedScreen,
    synthetic: dict[str, ad.AnnData],
    rna_space: RNASpace,
    splits: tuple[str, ...] = ("test", "test_he"),
) -> dict:
    """Score generated well-level profiles of the held-out samples against their real profiles.

    Parameters
    ----------
    screen
        Paired screen whose RNA side holds one (normalised) expression profile per sample
        (``rna_kind="expression"``); several rows of a sample are averaged.
    synthetic
        Method name → synthetic cells in the output contract (:mod:`phenoseq.generate.output`); each must
        cover every sample of every evaluated split.
    rna_space
        The model's RNA space: its genes define the profiles, and the real profiles go through its
        ``expression``.
    splits
        Held-out splits to score; those with no samples in the screen are skipped.

    Returns
    -------
    The JSON-able metrics described in the module docstring.
    """
    if not synthetic:
        raise PhenoseqError("nothing to evaluate: no synthetic set given")
    k = screen.keys
    present = {s: sorted(screen.wells_in(s)) for s in splits if screen.wells_in(s)}
    if not present:
        raise PhenoseqError(f"the screen has no samples in the held-out splits {list(splits)}; nothing to evaluate.")
    train = sorted(screen.wells_in("train"))
    if not train:
        raise PhenoseqError("the screen has no training samples; the centring profile needs them.")
    # Validate every set before any work, so bad input fails fast and nothing is written.
    for name, syn in synthetic.items():
        for split, samples in present.items():
            _check_coverage(syn, screen, name, split, samples)
    baseline = real_profiles(screen, rna_space, train).mean(axis=0)
    real = {split: real_profiles(screen, rna_space, samples) for split, samples in present.items()}
    results: dict = {}
    for name, syn in synthetic.items():
        X = _synthetic_expression(syn, rna_space, name)
        labels = syn.obs[k.sample].astype(str).to_numpy()
        keep = np.isin(labels, [s for samples in present.values() for s in samples])
        results[name] = {}
        for split, samples in present.items():
            generated = group_means(X[keep], labels[keep], samples)[1]
            results[name][split] = score_profiles(generated, real[split], baseline, samples)
    reference = {}
    for split, samples in present.items():
        reconstructed = rna_space.decode(rna_space.project(real[split].astype(np.float32))).astype(np.float64)
        scored = score_profiles(reconstructed, real[split], baseline, samples)
        reference[split] = {"pearson": scored["pearson"], "pearson_raw": scored["pearson_raw"]}
    return {
        "format": BULK_FORMAT,
        "mode": "bulk",
        "methods": list(synthetic),
        "genes": len(rna_space.genes),
        "splits": {s: {"label": SPLIT_LABELS.get(s, s), "n_samples": len(v), "samples": v} for s, v in present.items()},
        "centring": {"n_training_samples": len(train)},
        "settings": {m: jsonable(dict(synthetic[m].uns.get("phenoseq", {}))) for m in synthetic},
        "results": results,
        "reference": reference,
    }


def write_bulk_metrics(metrics: dict, out_dir: str | Path) -> Path:
    """Write ``metrics`` (from :func:`evaluate_bulk`) as ``out_dir/metrics.json``, atomically; return its path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    text = json.dumps(metrics, indent=1, allow_nan=False)  # serialise first: a failure leaves nothing behind
    with atomic_path(out_dir / METRICS_FILE) as tmp:
        tmp.write_text(text)
    return out_dir / METRICS_FILE


def headline_rows(metrics: dict, split: str) -> list[dict]:
    """One row per method (and the RNA-space reference) of ``split``: the figures the CLI table prints."""
    rows = []
    for method in metrics["methods"]:
        r = metrics["results"][method][split]
        rows.append({"method": method, "pearson": r["pearson"]["median"], "pearson_iqr": r["pearson"]["iqr"],
                     "pearson_raw": r["pearson_raw"]["median"], "mean_rank": r["rank"]["mean"],
                     "median_rank": r["rank"]["median"], "top1": r["rank"]["top1"], "top5": r["rank"]["top5"],
                     "chance": r["rank"]["chance_mean"]})
    return rows
