"""The unseen-compound protocol: compound-level K-fold cross-validation.

The product's main use is molecular data for compounds that were imaged but never sequenced. To measure it,
the non-control treatments are split into ``n_folds`` folds. For each fold, every well of its treatments
(all replicates, both modalities) leaves training (:meth:`PairedScreen.hold_out`); the methods are fitted on
what is left — controls such as DMSO always stay — and generate for the held-out wells from their imaging
alone. With the held-out compounds as the test, the other compounds' test wells (WE, HE) are paired data a
user would train on, so by default they join the training split (``train_on_tests``): every experimental round
then has RNA in training, as it would in a screen whose sequenced and imaging-only compounds share plates. Each held-out well is scored once, by :func:`phenoseq.evaluate.workflow.evaluate` on its fold, and the
folds' per-well figures are pooled (ranks are among the held-out wells of the same fold and replicate).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np

from phenoseq import progress as _progress
from phenoseq.errors import PhenoseqError
from phenoseq.evaluate import trust
from phenoseq.evaluate import wells as W
from phenoseq.evaluate.benchmark import BenchmarkConfig
from phenoseq.evaluate.scaled import scaled_scores
from phenoseq.evaluate.workflow import BenchmarkResult, evaluate
from phenoseq.generate.seeds import well_seed
from phenoseq.io.screen import CONTROL, UNSEEN, PairedScreen

Fit = Callable[[PairedScreen], dict]  # a screen with held-out wells -> method name -> fitted generator


def compound_folds(screen: PairedScreen, n_folds: int, seed: int = 0) -> list[list[str]]:
    """The non-control treatments in ``n_folds`` random folds of (nearly) equal size."""
    k = screen.keys
    w = screen.wells
    treatments = sorted(w.loc[w[k.group].astype(str) != CONTROL, k.treatment].astype(str).unique().tolist())
    if not 2 <= n_folds <= len(treatments):
        raise PhenoseqError(f"--folds must be between 2 and the number of non-control treatments "
                            f"({len(treatments)}), got {n_folds}")
    order = np.random.default_rng(well_seed(seed, "", "compound-folds")).permutation(len(treatments))
    return [sorted(treatments[i] for i in part) for part in np.array_split(order, n_folds)]


def evaluate_unseen(screen: PairedScreen, fit: Fit, n_folds: int = 3, config: BenchmarkConfig | None = None,
                    moa_key: str | None = None, progress: _progress.Progress | None = None,
                    train_on_tests: bool = True) -> BenchmarkResult:
    """Fit the methods once per fold (``fit(held_out_screen)``), generate for the held-out wells, score them.
    ``train_on_tests``: the other compounds' test wells join training (module docstring; False: the training
    split alone, as in the seen-treatment protocol).

    ``fit`` returns method name → generator, all sharing one RNA space fitted on that fold's training wells
    (e.g. :func:`phenoseq.generate.standard.standard_generators`). Returns the merged result, whose metrics
    have the usual layout with the single split ``"unseen"`` and an ``unseen`` entry listing the folds.
    """
    config = replace(config or BenchmarkConfig(), test_splits=())
    folds = compound_folds(screen, n_folds, config.seed)
    results = []
    bar = _progress.get(progress)
    with bar.task("unseen-compound folds", total=len(folds)) as task:
        for i, fold in enumerate(folds):
            held = screen.hold_out(fold, train_on_tests=train_on_tests)
            generators = fit(held)
            space = next(iter(generators.values())).rna_space
            results.append(evaluate(held, space, generators, config=config, moa_key=moa_key, identification=False))
            task.update(1, info=f"fold {i + 1}: {len(held.wells_in(UNSEEN))} held-out wells")
    metrics = dict(results[0].metrics)
    methods = metrics["methods"]
    metrics["wells"] = {m: {UNSEEN: W.merge([r.metrics["wells"][m][UNSEEN] for r in results])}
                        for m in [*methods, W.REPLICATE] if all(UNSEEN in r.metrics["wells"].get(m, {}) for r in results)}
    metrics["scaled"] = scaled_scores(metrics["wells"], methods)
    metrics["splits"] = {UNSEEN: {"label": "unseen compounds", "n_wells": sum(r.metrics["splits"][UNSEEN]["n_wells"]
                                                                         for r in results)}}
    if "fidelity" in metrics:
        metrics["fidelity"] = {m: {UNSEEN: _mean_fidelity([r.metrics["fidelity"][m][UNSEEN] for r in results])}
                               for m in methods}
    if all("trust" in r.metrics for r in results):
        metrics["trust"] = {m: trust.merge([r.metrics["trust"][m] for r in results])
                            for m in metrics["trust"] if all(m in r.metrics["trust"] for r in results)}
    # Both hold one fold's cells and features, which the merged result has no arrays for.
    metrics.pop("embedding", None)
    metrics.pop("mean_change", None)
    metrics["protocol"] = UNSEEN
    metrics["unseen"] = {"n_folds": n_folds, "folds": folds, "train_on_tests": bool(train_on_tests)}
    synthetic = {f"{m}@fold{i}": s for i, r in enumerate(results) for m, s in r.synthetic.items()}
    return BenchmarkResult(metrics=metrics, arrays={}, synthetic=synthetic)


def _mean_fidelity(parts: list[dict]) -> dict:
    out = {}
    for key in parts[0]:
        values = [p[key] for p in parts if p[key] is not None]
        out[key] = float(np.mean(values)) if values else None
    out["n_genes"] = int(parts[0]["n_genes"])
    return out
