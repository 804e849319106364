"""The one scoring workflow: every mode (single-cell, bulk), protocol (seen, unseen compounds) and method.

:func:`evaluate` generates what is missing (from the imaging of the wells only), then scores every method
and the real-replicate reference by the same code:

* well-level figures (:mod:`phenoseq.evaluate.wells`) on every held-out split, both modes;
* energy ratio to the replicate floor, localisation and per-gene correlation (single-cell mode);
* treatment identification with the matched-morphology control and matched-context sets (single-cell mode,
  splits whose treatments have training wells: :mod:`phenoseq.evaluate.benchmark`);
* scaled scores between the training-mean baseline and the real replicate (:mod:`phenoseq.evaluate.scaled`).

``metrics.json`` layout (``format: "phenoseq-metrics"``, ``version: 2``)::

    format, version, mode ("single-cell" | "bulk"), protocol ("seen" | "unseen"), methods, treatments,
    splits {split: {label, n_wells}}, config, settings {method: uns["phenoseq"]},
    wells[method | "replicate"][split][metric] = summary   (metrics in phenoseq.evaluate.wells; single-cell
                                                            mode adds energy_ratio, energy_ratio_centred)
    scaled[method][split][metric] = {value, baseline, ceiling, scaled}
    identification (single-cell, seen splits) = {
        accuracy[method | "reference"][modality][split][profile] = {balanced_accuracy, ci, n_wells, n_profiles},
        gap[method][split][matched | vs_pooled | vs_imaging] = {value, ci, added, ceiling_added}}
    fidelity[method][split] = {localisation, gene_pearson_median, n_genes}   (single-cell)
    embedding = {split, sources, explained_variance}                         (single-cell)
    unseen = {n_folds, folds: [[treatment, ...], ...]}                       (unseen protocol)

Added for the report's figures and :mod:`phenoseq.pl` (all optional: results without them still load and
render, with a note in place of the figure)::

    mean_change = {split, space ("genes" | "latent"), wells: [...], features: [...], methods: [...]}
        the bounded sample (wells.ChangeSample: at most 48 wells, 200 features) whose changes from the training
        mean are the arrays mean_change_real and mean_change__<method>, (n_wells, n_features) float32
    treatment_info = {well_treatment {well: treatment}, controls [treatment, ...],
                      morphology_effect {treatment: x}      (1 = as far from the control wells as a control well;
                                                             absent without two control wells),
                      morphology_visible {treatment: bool}} (only when the data mark it: wells.VISIBLE_KEY)
    history[method] = [{epoch, train_loss, val_loss}, ...]   (generators with a ``history``, e.g. PhenoSeq)
    trust[method] = interval coverage and width beside the training-mean interval's, Spearman(confidence,
                    −error), OOD AUROC / recall / false-flag rate   (generators with calibrated well-level
                                                                     output: layout in phenoseq.evaluate.trust)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import anndata as ad
import numpy as np

from phenoseq import progress as _progress
from phenoseq.errors import PhenoseqError
from phenoseq.evaluate import benchmark as bench
from phenoseq.evaluate import wells as W
from phenoseq.evaluate.contexts import ContextSets
from phenoseq.evaluate.inputs import check_synthetic, covered_splits
from phenoseq.evaluate.jsonable import jsonable
from phenoseq.evaluate.scaled import BASELINE, scaled_scores
from phenoseq.evaluate.trust import evaluate_trust
from phenoseq.generate.baselines import TrainingMeanBaseline
from phenoseq.io.screen import UNSEEN, PairedScreen
from phenoseq.rna.space import RNASpace

FORMAT = "phenoseq-metrics"
VERSION = 2
SINGLE_CELL, BULK = "single-cell", "bulk"


@dataclass
class BenchmarkResult:
    """``metrics``: the JSON-able results (layout in the module docstring); ``arrays``: confusion matrices,
    embedding coordinates and the sampled mean changes the report draws; ``synthetic``: the cells evaluated
    (not saved)."""

    metrics: dict
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    synthetic: dict[str, ad.AnnData] = field(default_factory=dict, repr=False)


def _same_space(a: RNASpace, b: RNASpace) -> bool:
    """Same space if what each would save is the same (works for PCA and embedding spaces alike)."""
    if a is b:
        return True
    (ta, ma), (tb, mb) = a.state(), b.state()
    return ma == mb and ta.keys() == tb.keys() and all(np.allclose(ta[k], tb[k]) for k in ta)


def mode_of(screen: PairedScreen) -> str:
    """``"bulk"`` when the RNA side holds one normalised profile per well, else ``"single-cell"``."""
    return BULK if screen.rna_kind == "expression" else SINGLE_CELL


def held_out_splits(screen: PairedScreen, config: bench.BenchmarkConfig) -> list[str]:
    """The splits scored: the configured test splits present in the screen, and ``unseen`` when it has wells."""
    splits = [s for s in config.test_splits if screen.wells_in(s)]
    if screen.wells_in(UNSEEN) and UNSEEN not in splits:
        splits.append(UNSEEN)
    return splits


def evaluate(
    screen: PairedScreen,
    rna_space: RNASpace,
    generators: dict | None = None,
    synthetic: dict[str, ad.AnnData] | None = None,
    config: bench.BenchmarkConfig | None = None,
    moa_key: str | None = None,
    identification: bool = True,
    progress: _progress.Progress | None = None,
) -> BenchmarkResult:
    """Score methods on the held-out splits of ``screen``.

    Parameters
    ----------
    screen
        The paired screen; its RNA of held-out wells is used for scoring only.
    rna_space
        The space every method is scored in (the model's); generators must share it.
    generators
        Method name → object with ``generate(imaging, cells_per_well, seed, progress)`` and ``rna_space``
        (:class:`phenoseq.generate.baselines.Generator`). Each is given the imaging of the scored wells only;
        in single-cell mode it also generates for the matched-context sets.
    synthetic
        Method name → synthetic cells already generated (e.g. read from a file); scored as given, without
        matched-context sets unless the same name is also a generator. The training-mean baseline is added
        when absent: scaled scores are measured from it.
    moa_key
        ``obs`` column of the RNA data naming each treatment's mechanism of action (adds the MoA figure).
    identification
        Run the treatment-identification benchmark (single-cell mode, splits with seen treatments).
    """
    config = config or bench.BenchmarkConfig()
    generators, synthetic = dict(generators or {}), dict(synthetic or {})
    if not generators and not synthetic:
        raise PhenoseqError("nothing to evaluate: give generators and/or synthetic cells")
    reserved = {bench.REFERENCE, W.REPLICATE}
    if reserved & (set(generators) | set(synthetic)):
        raise PhenoseqError(f"method names {sorted(reserved)} are reserved; name the method otherwise")
    if BASELINE not in generators and BASELINE not in synthetic:
        # Scaled scores are measured from the training mean, so it is always scored.
        generators[BASELINE] = TrainingMeanBaseline(screen, rna_space)
    spaces = [g.rna_space for g in generators.values()]
    if not all(_same_space(rna_space, s) for s in spaces):
        raise PhenoseqError("the generators use different RNA spaces; evaluate methods that share the model's RNA space")
    mode = mode_of(screen)
    splits = held_out_splits(screen, config)
    if not splits:
        raise PhenoseqError(f"the screen has no wells in the held-out splits {list(config.test_splits)}; nothing to evaluate")
    seen_splits = [s for s in splits if s != UNSEEN]
    run_identification = identification and mode == SINGLE_CELL and bool(seen_splits)
    k = screen.keys
    wells_needed = [w for s in splits for w in screen.wells_in(s)]
    if run_identification:
        wells_needed = screen.wells_in("train") + wells_needed
    # A copy of the imaging cells only: generators never hold the screen's RNA of these wells.
    imaging = screen.subset("imaging", wells_needed).copy()
    for name, g in generators.items():
        if name not in synthetic:
            synthetic[name] = g.generate(imaging, cells_per_well=config.cells_per_well, seed=config.seed,
                                         progress=progress)
    methods = list(synthetic)
    if mode == SINGLE_CELL:
        covered = {name: check_synthetic(syn, screen, rna_space, name, need_training=run_identification)
                   for name, syn in synthetic.items()}
        splits = covered_splits(screen, covered, tuple(splits))
        seen_splits = [s for s in splits if s != UNSEEN]
    else:
        for name, syn in synthetic.items():
            _check_bulk(syn, screen, rna_space, name, splits)

    origins = W.Origins.of(screen, rna_space)
    moa = W.moa_reference(screen, rna_space, moa_key, origins) if moa_key else None
    scored = sorted(set(wells_needed) - (set(screen.wells_in("train")) if run_identification else set()))
    replicate_of = W.replicate_wells(screen, scored)
    real = W.real_profiles(screen, rna_space, scored)
    wells_metrics: dict = {m: {} for m in [*methods, W.REPLICATE]}
    figure_split = "test" if "test" in splits else splits[0]  # the split the report's cell-level figures show
    change_sample = None
    for split in _progress.get(progress).track(splits, "well-level scores"):
        ws = sorted(screen.wells_in(split))
        groups = W.ranking_groups(screen, ws)
        real_s = real.take(ws)
        if split == figure_split:
            change_sample = W.ChangeSample.choose(split, real_s, origins, rna_space)
        for m in methods:
            pred = W.synthetic_profiles(synthetic[m], rna_space, k.sample, ws)
            wells_metrics[m][split] = W.score_wells(pred, real_s, origins, groups, moa)
            if split == figure_split:
                change_sample.add(m, pred)
        with_rep = [w for w in ws if w in replicate_of]
        if with_rep:
            rep = W.real_profiles(screen, rna_space, [replicate_of[w] for w in with_rep])
            rep.wells = with_rep
            wells_metrics[W.REPLICATE][split] = W.score_wells(rep, real_s.take(with_rep), origins,
                                                            W.ranking_groups(screen, with_rep), moa)

    metrics: dict = {
        "format": FORMAT, "version": VERSION, "mode": mode,
        "protocol": UNSEEN if splits == [UNSEEN] else "seen",
        "methods": methods,
        "treatments": sorted(screen.wells[k.treatment].astype(str).unique().tolist()),
        "splits": {s: {"label": bench.SPLIT_LABELS.get(s, s), "n_wells": len(screen.wells_in(s))} for s in splits},
        "config": config.to_dict() | {"moa_key": moa_key},
        "settings": {m: jsonable(dict(synthetic[m].uns.get("phenoseq", {}))) for m in methods},
        "treatment_info": W.treatment_info(screen),
    }
    history = {name: _history(g) for name, g in generators.items() if name in methods}
    if any(history.values()):
        metrics["history"] = {name: h for name, h in history.items() if h}
    metrics["mean_change"], figure_arrays = change_sample.export()
    arrays: dict[str, np.ndarray] = {}
    if mode == SINGLE_CELL:
        contexts, sets = None, {}
        if run_identification and generators:
            contexts = ContextSets.draw(screen.imaging, k.sample, screen.wells_in("train")
                                        + [w for s in seen_splits for w in screen.wells_in(s)],
                                        config.cells_per_set, config.sets_per_well, config.seed)
            set_imaging = contexts.imaging(screen.imaging, k.sample)
            for name, g in generators.items():
                sets[name] = g.generate(set_imaging, cells_per_well=config.cells_per_set, seed=config.seed,
                                        progress=progress)
        data = bench.CellData(screen, rna_space, synthetic, config, contexts, sets)
        metrics["fidelity"] = {m: {} for m in methods}
        for m in methods:
            for split in splits:
                for metric, ratios in bench.energy_ratios(data, m, split, replicate_of).items():
                    wells_metrics[m][split][metric] = W.summary(ratios)
                metrics["fidelity"][m][split] = bench.localisation_and_genes(data, m, split)
        for split in splits:
            if split in wells_metrics[W.REPLICATE]:
                ones = {w: 1.0 for w in wells_metrics[W.REPLICATE][split]["rank"]["per_well"]}
                wells_metrics[W.REPLICATE][split]["energy_ratio"] = W.summary(ones)
                wells_metrics[W.REPLICATE][split]["energy_ratio_centred"] = W.summary(ones)
        if run_identification:
            accuracy, gap, arrays = bench.identification(data, methods, seen_splits, progress)
            metrics["identification"] = {"accuracy": accuracy, "gap": gap, "splits": seen_splits,
                                         "matched_methods": sorted(sets)}
        metrics["embedding"], emb_arrays = bench.embedding(data, methods, figure_split)
        arrays.update(emb_arrays)
    arrays.update(figure_arrays)
    trust = {name: evaluate_trust(screen, rna_space, g, synthetic[name], splits, config.cells_per_well, config.seed,
                                  progress) for name, g in generators.items() if name in methods}
    if any(trust.values()):
        metrics["trust"] = {name: t for name, t in trust.items() if t}
    metrics["wells"] = wells_metrics
    metrics["scaled"] = scaled_scores(wells_metrics, methods)
    return BenchmarkResult(metrics=metrics, arrays=arrays, synthetic=synthetic)


def _history(generator) -> list[dict]:
    """A generator's per-epoch training record (``epoch``, ``train_loss``, ``val_loss``) as plain JSON; empty for
    generators that are fitted rather than trained by epochs (no ``history`` attribute)."""
    records = getattr(generator, "history", None)
    if not isinstance(records, (list, tuple)):
        return []
    return [jsonable(dict(r)) for r in records if isinstance(r, dict)]


def _check_bulk(syn: ad.AnnData, screen: PairedScreen, rna_space: RNASpace, name: str, splits: list[str]) -> None:
    """The synthetic-cell checks, then every held-out sample of every split must have profiles."""
    from phenoseq.io.validate import preview

    have = check_synthetic(syn, screen, rna_space, name, need_training=False)
    for split in splits:
        missing = sorted(set(screen.wells_in(split)) - have)
        if missing:
            raise PhenoseqError(
                f"{name}: no synthetic profiles for held-out samples {preview(missing)} of split {split!r}; generate "
                "for every sample of the held-out splits (e.g. `phenoseq generate` on the whole imaging file).")
