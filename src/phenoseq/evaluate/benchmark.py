"""The treatment-identification benchmark and fidelity of every method, on the test splits of a screen.

Protocol (PhenoSeq on scGeneScope): a standardised logistic regression is trained on profiles of the
*training* wells and scored on profiles of the *test* wells (WE = ``test``, HE = ``test_he``) by balanced
accuracy over treatments, with 95% CIs from resampling test wells. Modalities:

==================== ============================================ ============================================
modality             trained on (training wells)                  tested on (test wells)
==================== ============================================ ============================================
imaging              imaging cells                                imaging cells
real_rna             real RNA cells in the RNA space              real RNA cells
imaging+real         imaging cell ⊕ random real RNA cell           the same (the ceiling)
synthetic_rna        synthetic cells                              synthetic cells
real_to_synthetic    real RNA cells (the real_rna classifier)     synthetic cells
imaging+synthetic    imaging cell ⊕ random synthetic cell          the same
==================== ============================================ ============================================

Headline: **gap recovered** = (imaging+synthetic − imaging) / (imaging+real − imaging).

No RNA of a test well reaches a classifier's training data: training profiles come from training wells
only, and synthetic cells of test wells come from a generator that saw those wells' imaging only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import anndata as ad
import numpy as np

from phenoseq import progress as _progress
from phenoseq.errors import PhenoseqError
from phenoseq.evaluate import bootstrap, fidelity
from phenoseq.evaluate.identification import (
    WellPredictions,
    fit_classifier,
    predict_wells,
)
from phenoseq.evaluate.inputs import check_synthetic, covered_splits
from phenoseq.evaluate.jsonable import jsonable
from phenoseq.evaluate.profiles import (
    CellTable,
    multi_profiles,
    paired,
    single_profiles,
)
from phenoseq.generate.output import LATENT_KEY
from phenoseq.generate.seeds import well_seed
from phenoseq.io.screen import PairedScreen
from phenoseq.rna.space import RNASpace

SPLIT_LABELS = {"test": "WE", "test_he": "HE"}
REFERENCE = "reference"
REFERENCE_MODALITIES = ("imaging", "real_rna", "imaging+real")
SYNTHETIC_MODALITIES = ("synthetic_rna", "real_to_synthetic", "imaging+synthetic")
PROFILES = ("single", "multi")


@dataclass
class BenchmarkConfig:
    """Settings of one benchmark run; the defaults evaluate the default simulated screen in seconds.

    ``max_cells_per_well`` caps single-cell profiles per well (training and test); ``cells_per_set`` is N of
    the multi-cell profiles and ``sets_per_well`` how many are drawn per well; ``max_iter`` caps the
    logistic regression's iterations (speed over the last fraction of a percent); ``fidelity_cells`` caps the
    cells per side of each energy distance; ``embedding_cells`` the cells per well and source in the 2-D map.
    """

    max_cells_per_well: int = 100
    cells_per_set: int = 10
    sets_per_well: int = 20
    n_boot: int = 1000
    max_iter: int = 250
    fidelity_cells: int = 200
    embedding_cells: int = 30
    test_splits: tuple[str, ...] = ("test", "test_he")
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("max_cells_per_well", "cells_per_set", "sets_per_well", "n_boot", "max_iter",
                     "fidelity_cells", "embedding_cells"):
            if int(getattr(self, name)) < 1:
                raise PhenoseqError(f"BenchmarkConfig.{name} must be at least 1, got {getattr(self, name)}")
        self.test_splits = tuple(self.test_splits)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["test_splits"] = list(self.test_splits)
        return d


@dataclass
class BenchmarkResult:
    """``metrics``: the JSON-able results (layout in :mod:`phenoseq.evaluate.metrics`); ``arrays``: the
    confusion matrices and embedding coordinates the report draws; ``synthetic``: the cells evaluated
    (not saved with the results)."""

    metrics: dict
    arrays: dict[str, np.ndarray]
    synthetic: dict[str, ad.AnnData] = field(default_factory=dict, repr=False)


def confusion_key(method: str, modality: str, split: str, profile: str) -> str:
    """Name of a confusion matrix in :attr:`BenchmarkResult.arrays`."""
    return f"confusion__{method}__{modality}__{split}__{profile}"


class _Data:
    """Cell tables of one screen, built once and shared by every method and classifier."""

    def __init__(self, screen: PairedScreen, rna_space: RNASpace, synthetic: dict[str, ad.AnnData]) -> None:
        self.screen, self.rna_space, self.synthetic = screen, rna_space, synthetic
        self._cache: dict[tuple, CellTable] = {}

    def table(self, source: str, split: str) -> CellTable:
        """``source``: ``imaging``, ``real`` or ``syn:<method>``; cells of the screen's wells in ``split``."""
        key = (source, split)
        if key not in self._cache:
            self._cache[key] = self._build(source, self.screen.wells_in(split))
        return self._cache[key]

    def _build(self, source: str, wells: list[str]) -> CellTable:
        k = self.screen.keys
        if source == "imaging":
            cells = self.screen.subset("imaging", wells)
            return CellTable(np.asarray(cells.X), cells.obs[k.sample].astype(str).to_numpy())
        if source == "real":
            cells = self.screen.subset("rnaseq", wells)
            return CellTable(self.rna_space.transform(cells), cells.obs[k.sample].astype(str).to_numpy())
        syn = self.synthetic[source.removeprefix("syn:")]
        mask = syn.obs[k.sample].astype(str).isin(wells).to_numpy()
        return CellTable(np.asarray(syn.obsm[LATENT_KEY])[mask], syn.obs[k.sample].astype(str).to_numpy()[mask])

    def features(self, modality: str, split: str, method: str | None) -> CellTable:
        """Cell-level features of a modality (concatenations paired at random within wells)."""
        if modality == "imaging":
            return self.table("imaging", split)
        if modality == "real_rna":
            return self.table("real", split)
        if modality == "synthetic_rna":
            return self.table(f"syn:{method}", split)
        if modality in ("imaging+real", "imaging+synthetic"):
            rna = "real" if modality == "imaging+real" else f"syn:{method}"
            key = (modality, method, split)
            if key not in self._cache:
                self._cache[key] = paired(self.table("imaging", split), self.table(rna, split), seed=0,
                                          purpose=f"{modality}:{method}:{split}")
            return self._cache[key]
        raise KeyError(modality)


def _profiles(table: CellTable, profile: str, config: BenchmarkConfig, purpose: str) -> CellTable:
    if profile == "single":
        return single_profiles(table, config.max_cells_per_well, config.seed, purpose)
    return multi_profiles(table, config.cells_per_set, config.sets_per_well, config.seed, purpose)


def _accuracy_entry(pred: WellPredictions, draws: np.ndarray) -> tuple[dict, np.ndarray]:
    boot = pred.balanced_accuracy(draws)
    entry = {
        "balanced_accuracy": float(pred.balanced_accuracy()),
        "ci": bootstrap.interval(boot),
        "n_wells": len(pred.wells),
        "n_profiles": pred.n_profiles,
    }
    return entry, boot


def _same_space(a: RNASpace, b: RNASpace) -> bool:
    """Same space if what each would save is the same (works for PCA and embedding spaces alike)."""
    if a is b:
        return True
    (ta, ma), (tb, mb) = a.state(), b.state()
    return ma == mb and ta.keys() == tb.keys() and all(np.allclose(ta[k], tb[k]) for k in ta)


def evaluate_generators(
    screen: PairedScreen,
    generators: dict[str, object],
    cells_per_well: int = 100,
    config: BenchmarkConfig | None = None,
    progress: _progress.Progress | None = None,
) -> BenchmarkResult:
    """Generate synthetic cells for the training and test wells from their imaging only, then evaluate.

    ``generators``: method name → object with ``generate(imaging_adata, cells_per_well, seed, progress)``
    and ``rna_space`` (all methods must share one RNA space so they are scored in the same space).
    """
    config = config or BenchmarkConfig()
    if not generators:
        raise PhenoseqError("no generator to evaluate")
    spaces = [g.rna_space for g in generators.values()]
    if not all(_same_space(spaces[0], s) for s in spaces[1:]):
        raise PhenoseqError("the generators use different RNA spaces; evaluate methods that share the model's RNA space")
    wells = screen.wells_in("train") + [w for s in config.test_splits for w in screen.wells_in(s)]
    # A copy of the imaging cells only: the generator never holds the screen's RNA of these wells.
    imaging = screen.subset("imaging", wells).copy()
    synthetic = {name: g.generate(imaging, cells_per_well=cells_per_well, seed=config.seed, progress=progress)
                 for name, g in generators.items()}
    return evaluate_synthetic(screen, synthetic, spaces[0], config, progress)


def evaluate_synthetic(
    screen: PairedScreen,
    synthetic: dict[str, ad.AnnData],
    rna_space: RNASpace,
    config: BenchmarkConfig | None = None,
    progress: _progress.Progress | None = None,
) -> BenchmarkResult:
    """Score synthetic cells (method name → AnnData in the output contract) on ``screen``'s test splits.

    Returns a :class:`BenchmarkResult`; ``metrics`` holds ``accuracy[method][modality][split][profile]``
    (method ``"reference"`` for imaging, real_rna and imaging+real), ``gap_recovered[method][split][profile]``
    and ``fidelity[method][split]``.
    """
    config = config or BenchmarkConfig()
    if not synthetic:
        raise PhenoseqError("no synthetic cells to evaluate")
    if REFERENCE in synthetic:
        raise PhenoseqError(f"{REFERENCE!r} is reserved for the real-data modalities; name the method otherwise")
    covered = {name: check_synthetic(syn, screen, rna_space, name) for name, syn in synthetic.items()}
    splits = covered_splits(screen, covered, config.test_splits)
    k = screen.keys
    treatments = sorted(screen.wells[k.treatment].astype(str).unique().tolist())
    code = {t: i for i, t in enumerate(treatments)}
    treatment_of = {w: code[t] for w, t in screen.wells[k.treatment].astype(str).items()}
    data = _Data(screen, rna_space, synthetic)
    methods = list(synthetic)
    draws = {s: bootstrap.well_draws(len(screen.wells_in(s)), config.n_boot, well_seed(config.seed, s, "bootstrap"))
             for s in splits}

    accuracy: dict = {m: {} for m in [REFERENCE, *methods]}
    boots: dict[tuple, np.ndarray] = {}
    arrays: dict[str, np.ndarray] = {}

    def record(method: str, modality: str, pred: WellPredictions, split: str, profile: str) -> None:
        entry, boot = _accuracy_entry(pred, draws[split])
        accuracy[method].setdefault(modality, {}).setdefault(split, {})[profile] = entry
        boots[(method, modality, split, profile)] = boot
        arrays[confusion_key(method, modality, split, profile)] = pred.confusion()

    jobs = [(None, m) for m in REFERENCE_MODALITIES] + [(x, m) for x in methods for m in ("synthetic_rna", "imaging+synthetic")]
    with _progress.get(progress).task("treatment identification", total=len(jobs) * len(PROFILES)) as bar:
        for profile in PROFILES:
            for method, modality in jobs:
                purpose = f"{modality}:{method}:{profile}"
                train = _profiles(data.features(modality, "train", method), profile, config, purpose + ":train")
                clf = fit_classifier(train, treatment_of, seed=config.seed, max_iter=config.max_iter)
                for split in splits:
                    test = _profiles(data.features(modality, split, method), profile, config, f"{purpose}:{split}")
                    record(method or REFERENCE, modality, predict_wells(clf, test, treatment_of, len(treatments)),
                           split, profile)
                    if modality == "real_rna":
                        # real_to_synthetic reuses the real-RNA classifier on every method's synthetic test cells.
                        for m in methods:
                            syn = _profiles(data.features("synthetic_rna", split, m), profile, config,
                                            f"real_to_synthetic:{m}:{profile}:{split}")
                            record(m, "real_to_synthetic", predict_wells(clf, syn, treatment_of, len(treatments)),
                                   split, profile)
                bar.update(1, info=f"{method or REFERENCE} {modality} ({profile})")

    gap = {m: {s: {p: _gap_entry(accuracy, boots, m, s, p) for p in PROFILES} for s in splits} for m in methods}
    fid = _fidelity(data, methods, splits, config, progress)
    embedding, emb_arrays = _embedding(data, methods, splits, config)
    arrays.update(emb_arrays)
    metrics = {
        "format": "phenoseq-benchmark",
        "version": 1,
        "methods": methods,
        "treatments": treatments,
        "splits": {s: {"label": SPLIT_LABELS.get(s, s), "n_wells": len(screen.wells_in(s))} for s in splits},
        "modalities": {"reference": list(REFERENCE_MODALITIES), "synthetic": list(SYNTHETIC_MODALITIES)},
        "profiles": list(PROFILES),
        "config": config.to_dict(),
        "settings": {m: jsonable(synthetic[m].uns.get("phenoseq", {})) for m in methods},
        "accuracy": accuracy,
        "gap_recovered": gap,
        "fidelity": fid,
        "embedding": embedding,
    }
    return BenchmarkResult(metrics=metrics, arrays=arrays, synthetic=synthetic)


def _gap_entry(accuracy: dict, boots: dict, method: str, split: str, profile: str) -> dict:
    point = bootstrap.gap_recovered(
        accuracy[REFERENCE]["imaging"][split][profile]["balanced_accuracy"],
        accuracy[method]["imaging+synthetic"][split][profile]["balanced_accuracy"],
        accuracy[REFERENCE]["imaging+real"][split][profile]["balanced_accuracy"],
    )
    boot = bootstrap.gap_recovered(
        boots[(REFERENCE, "imaging", split, profile)],
        boots[(method, "imaging+synthetic", split, profile)],
        boots[(REFERENCE, "imaging+real", split, profile)],
    )
    value = float(point)
    return {"value": value if np.isfinite(value) else None, "ci": bootstrap.interval(boot)}


def _fidelity(data: _Data, methods: list[str], splits: list[str], config: BenchmarkConfig,
              progress: _progress.Progress | None) -> dict:
    screen, space = data.screen, data.rna_space
    k = screen.keys
    treatment = screen.wells[k.treatment].astype(str).to_dict()
    # The replicate floor compares each test well with the validation well of its treatment (a training
    # well where there is no validation well): real cells the generator's training could have seen.
    reference_well: dict[str, str] = {}
    for split in ("train", "val"):
        for w in screen.wells_in(split):
            reference_well[treatment[w]] = w
    reference = [data.table("real", s) for s in ("train", "val") if screen.wells_in(s)]
    reference_table = CellTable(np.concatenate([t.X for t in reference]), np.concatenate([t.wells for t in reference]))
    out: dict = {m: {} for m in methods}
    steps = [(m, s) for s in splits for m in methods]
    # Spaces without genes (a provided embedding) have no per-gene figure.
    has_genes = space.decode is not None
    real_expression = {s: _real_expression_means(screen, space, s) for s in splits} if has_genes else {}
    for method, split in _progress.get(progress).track(steps, "fidelity"):
        syn, real = data.table(f"syn:{method}", split), data.table("real", split)
        wells = screen.wells_in(split)
        ratios = fidelity.energy_ratios(syn, real, reference_table, {w: reference_well[treatment[w]] for w in wells},
                                        config.fidelity_cells, config.seed)
        values = np.array([r["ratio"] for r in ratios.values()])
        corr = np.array([])
        if has_genes:
            wells_real, real_means = real_expression[split]
            synthetic_means = _synthetic_expression_means(data.synthetic[method], space, k.sample, wells_real)
            corr = fidelity.gene_correlation(synthetic_means, real_means)
        out[method][split] = {
            "localisation": fidelity.localisation(syn, real, treatment),
            "energy_ratio_median": _finite_median(values),
            "energy_ratio_iqr": _finite_quantiles(values, (25, 75)),
            "energy_ratio_per_well": {w: _none_if_nan(r["ratio"]) for w, r in ratios.items()},
            "gene_pearson_median": _finite_median(corr),
            "n_genes": int(np.isfinite(corr).sum()),
        }
    return out


def _real_expression_means(screen: PairedScreen, space: RNASpace, split: str) -> tuple[list[str], np.ndarray]:
    """(sorted wells, ``(n_wells, G)`` mean log-normalised expression of their real cells)."""
    wells = sorted(screen.wells_in(split))
    cells = screen.subset("rnaseq", wells)
    expr = space.expression(cells)
    return wells, CellTable(expr, cells.obs[screen.keys.sample].astype(str).to_numpy()).well_means(wells)


def _synthetic_expression_means(syn: ad.AnnData, space: RNASpace, sample_key: str, wells: list[str]) -> np.ndarray:
    """``(n_wells, G)`` mean decoded expression of the synthetic cells of ``wells``."""
    mask = syn.obs[sample_key].astype(str).isin(wells).to_numpy()
    labels = syn.obs[sample_key].astype(str).to_numpy()[mask]
    if syn.n_vars == len(space.genes) and syn.var_names.tolist() == space.genes:
        X = syn.X[mask]
        X = X.toarray() if hasattr(X, "toarray") else np.asarray(X)
    else:  # X absent or over other genes (e.g. a file saved without it): decode the latents
        X = space.decode(np.asarray(syn.obsm[LATENT_KEY])[mask])
    return CellTable(X, labels).well_means(wells)


def _embedding(data: _Data, methods: list[str], splits: list[str], config: BenchmarkConfig) -> tuple[dict, dict]:
    """PCA (fitted on real cells) of real and synthetic latents of one test split, subsampled per well."""
    from sklearn.decomposition import PCA

    from phenoseq.generate.seeds import well_rng

    split = "test" if "test" in splits else splits[0]
    sources = ["real", *methods]
    tables = [data.table("real", split)] + [data.table(f"syn:{m}", split) for m in methods]
    X, wells, src = [], [], []
    for i, table in enumerate(tables):
        for well, rows in table.groups().items():
            n = min(config.embedding_cells, len(rows))
            pick = well_rng(config.seed, well, f"embedding:{sources[i]}").choice(rows, size=n, replace=False)
            X.append(table.X[pick])
            wells.append(np.full(n, well))
            src.append(np.full(n, i))
    X, wells, src = np.concatenate(X), np.concatenate(wells), np.concatenate(src)
    pca = PCA(n_components=2, random_state=config.seed).fit(X[src == 0])
    treatments = sorted(data.screen.wells[data.screen.keys.treatment].astype(str).unique().tolist())
    code = {t: i for i, t in enumerate(treatments)}
    treatment = data.screen.wells[data.screen.keys.treatment].astype(str)
    meta = {"split": split, "sources": sources, "explained_variance": [float(v) for v in pca.explained_variance_ratio_]}
    arrays = {
        "embedding_xy": pca.transform(X).astype(np.float32),
        "embedding_treatment": np.array([code[treatment[w]] for w in wells], dtype=np.int32),
        "embedding_source": src.astype(np.int32),
    }
    return meta, arrays


def _finite_median(values: np.ndarray) -> float | None:
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    return float(np.median(values)) if values.size else None


def _finite_quantiles(values: np.ndarray, qs: tuple[float, float]) -> list[float | None]:
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    return [float(v) for v in np.percentile(values, qs)] if values.size else [None, None]


def _none_if_nan(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None
