"""Treatment identification, with the controls that keep it honest, and the fidelity of synthetic cells.

Protocol (PhenoSeq on scGeneScope): a standardised logistic regression is trained on profiles of the
*training* wells and scored on profiles of the *test* wells by balanced accuracy over treatments, with 95%
CIs from resampling test wells.

Single-cell profiles (``profile="single"``), one imaging cell each:

=============================  ==========================================================================
modality                       profile
=============================  ==========================================================================
imaging                        an imaging cell
real_rna / synthetic_rna       an RNA cell (real, or synthetic of the method)
real_to_synthetic              synthetic cells scored by the classifier trained on real RNA cells
imaging+real / +synthetic      the imaging cell ⊕ a random RNA cell of its well
imaging+pooled                 the imaging cell ⊕ the mean morphology of a random set of ``pooled_context``
                               cells of its well: the **matched-morphology control**
imaging+pooled+real / +syn.    the same ⊕ an RNA cell
=============================  ==========================================================================

Matched-context multi-cell profiles (``profile="multi"``, the headline): random sets of ``cells_per_set``
imaging cells per well (:mod:`phenoseq.evaluate.contexts`); a set's synthetic cells are generated from that
set's imaging only; imaging = set mean, imaging+real = set mean ⊕ mean of as many real RNA cells,
imaging+synthetic = set mean ⊕ mean of the set's synthetic cells.

Gaps (``gap[method][split][name]``, each ``{value, ci, added, ceiling_added}``):

* ``matched`` (headline): multi-profile (imaging+synthetic − imaging) / (imaging+real − imaging);
* ``vs_pooled``: single-profile, against the matched-morphology control;
* ``vs_imaging``: single-profile against a single imaging cell, as published ("paper-style"): inflated by
  the pooled morphology every synthetic cell carries, kept for comparison with published numbers.

No RNA of a test well reaches a classifier's training data, and synthetic cells of test wells come from a
generator that saw those wells' imaging only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import anndata as ad
import numpy as np

from phenoseq import progress as _progress
from phenoseq.errors import PhenoseqError
from phenoseq.evaluate import bootstrap, fidelity
from phenoseq.evaluate.contexts import ContextSets
from phenoseq.evaluate.identification import WellPredictions, fit_classifier, predict_wells
from phenoseq.evaluate.profiles import CellTable, paired, pooled, sample_rows, single_profiles
from phenoseq.generate.output import LATENT_KEY
from phenoseq.generate.seeds import well_rng, well_seed
from phenoseq.io.screen import PairedScreen
from phenoseq.rna.space import RNASpace

SPLIT_LABELS = {"test": "WE", "test_he": "HE", "unseen": "unseen compounds"}
REFERENCE = "reference"
MODALITIES = {
    "single": {"reference": ("imaging", "real_rna", "imaging+real", "imaging+pooled", "imaging+pooled+real"),
               "method": ("synthetic_rna", "real_to_synthetic", "imaging+synthetic", "imaging+pooled+synthetic")},
    "multi": {"reference": ("imaging", "real_rna", "imaging+real"),
              "method": ("synthetic_rna", "real_to_synthetic", "imaging+synthetic")},
}
# gap name -> (profile, floor modality, candidate modality with "{rna}" for real/synthetic)
GAPS = {
    "matched": ("multi", "imaging", "imaging+{rna}"),
    "vs_pooled": ("single", "imaging+pooled", "imaging+pooled+{rna}"),
    "vs_imaging": ("single", "imaging", "imaging+{rna}"),
}


@dataclass
class BenchmarkConfig:
    """Settings of one benchmark run; the defaults evaluate the default simulated screen in about a minute.

    ``max_cells_per_well`` caps single-cell profiles per well; ``pooled_context`` is the size of the imaging
    set pooled into the matched-morphology control (the diffusion model's context size); ``cells_per_set``
    and ``sets_per_well`` define the matched-context sets; ``max_iter`` caps the logistic regression's
    iterations; ``fidelity_cells`` caps the cells per side of each energy distance; ``embedding_cells`` the
    cells per well and source in the 2-D map; ``cells_per_well`` is what generators make per well.
    """

    max_cells_per_well: int = 100
    pooled_context: int = 64
    cells_per_set: int = 10
    sets_per_well: int = 20
    n_boot: int = 1000
    max_iter: int = 250
    fidelity_cells: int = 200
    embedding_cells: int = 30
    cells_per_well: int = 100
    test_splits: tuple[str, ...] = ("test", "test_he")
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("max_cells_per_well", "pooled_context", "cells_per_set", "sets_per_well", "n_boot",
                     "max_iter", "fidelity_cells", "embedding_cells", "cells_per_well"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise PhenoseqError(f"BenchmarkConfig.{name} must be a whole number of at least 1, got {value!r}")
        self.test_splits = tuple(self.test_splits)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["test_splits"] = list(self.test_splits)
        return d


def confusion_key(method: str, modality: str, split: str, profile: str) -> str:
    """Name of a confusion matrix in the result's arrays."""
    return f"confusion__{method}__{modality}__{split}__{profile}"


class CellData:
    """Cell tables of one screen, built once and shared by every method and classifier.

    ``synthetic``: method → per-well synthetic cells; ``sets``: method → cells generated per context set
    (:class:`ContextSets` ``contexts``); methods without sets get no matched-context profiles.
    """

    def __init__(self, screen: PairedScreen, rna_space: RNASpace, synthetic: dict[str, ad.AnnData],
                 config: BenchmarkConfig, contexts: ContextSets | None = None,
                 sets: dict[str, ad.AnnData] | None = None) -> None:
        self.screen, self.rna_space, self.synthetic, self.config = screen, rna_space, synthetic, config
        self.contexts, self.sets = contexts, sets or {}
        self._cache: dict[tuple, CellTable] = {}

    def _cached(self, key: tuple, build):
        if key not in self._cache:
            self._cache[key] = build()
        return self._cache[key]

    def table(self, source: str, split: str) -> CellTable:
        """``source``: ``imaging``, ``real`` or ``syn:<method>``; cells of the screen's wells in ``split``."""
        return self._cached(("table", source, split), lambda: self._build(source, self.screen.wells_in(split)))

    def _build(self, source: str, wells: list[str]) -> CellTable:
        k = self.screen.keys
        if source == "imaging":
            cells = self.screen.subset("imaging", wells)
            return CellTable(np.asarray(cells.X), cells.obs[k.sample].astype(str).to_numpy())
        if source == "real":
            cells = self.screen.subset("rnaseq", wells)
            return CellTable(self.rna_space.transform(cells), cells.obs[k.sample].astype(str).to_numpy())
        syn = self.synthetic[source.removeprefix("syn:")]
        labels = syn.obs[k.sample].astype(str).to_numpy()
        mask = np.isin(labels, wells)
        return CellTable(np.asarray(syn.obsm[LATENT_KEY])[mask], labels[mask])

    def single(self, modality: str, split: str, method: str | None) -> CellTable:
        """Single-cell profiles: at most ``max_cells_per_well`` imaging cells per well, with what is joined to them."""
        c = self.config
        img = self.table("imaging", split)
        rows = self._rows(split)
        if modality == "real_rna":
            return single_profiles(self.table("real", split), c.max_cells_per_well, c.seed, f"real:{split}")
        if modality == "synthetic_rna":
            return single_profiles(self.table(f"syn:{method}", split), c.max_cells_per_well, c.seed,
                                   f"syn:{method}:{split}")
        base: CellTable
        if modality.startswith("imaging+pooled"):
            base = self._cached(("pooled", split), lambda: pooled(img, rows, c.pooled_context, c.seed, split))
        else:
            base = CellTable(img.X[rows], img.wells[rows])
        if modality in ("imaging", "imaging+pooled"):
            return base
        rna = "real" if modality.endswith("+real") else f"syn:{method}"
        return self._cached(("pair", modality, method, split),
                            lambda: paired(base, self.table(rna, split), seed=c.seed, purpose=f"{modality}:{method}:{split}"))

    def _rows(self, split: str) -> np.ndarray:
        """The imaging rows of ``split`` that single-cell profiles use (every imaging modality the same rows)."""
        return self._cached(("rows", split), lambda: sample_rows(self.table("imaging", split),
                                                                 self.config.max_cells_per_well, self.config.seed,
                                                                 f"imaging:{split}"))

    def multi(self, modality: str, split: str, method: str | None) -> CellTable:
        """Matched-context set profiles of the wells of ``split`` (see the module docstring)."""
        if self.contexts is None:
            raise PhenoseqError("matched-context profiles need context sets and generators")
        keep = np.isin(self.contexts.wells, self.screen.wells_in(split))

        def part(source: str) -> CellTable:
            t = self._cached(("sets", source), lambda: self._set_means(source))
            return CellTable(t.X[keep], t.wells[keep])

        if modality in ("imaging", "real_rna", "synthetic_rna"):
            return part({"imaging": "imaging", "real_rna": "real"}.get(modality, method))
        rna = part("real" if modality == "imaging+real" else method)
        img = part("imaging")
        return CellTable(np.concatenate([img.X, rna.X], axis=1), img.wells)

    def _set_means(self, source: str) -> CellTable:
        """Profiles of every context set: ``imaging``, ``real`` or a method's synthetic cells."""
        ctx = self.contexts
        if source == "imaging":
            return ctx.imaging_means(np.asarray(self.screen.imaging.X, dtype=np.float32))
        if source == "real":
            return ctx.real_means(self._build("real", sorted(set(ctx.wells.tolist()))), self.config.seed)
        return ctx.synthetic_means(self.sets[source], self.screen.keys.sample)


def _accuracy_entry(pred: WellPredictions, draws: np.ndarray) -> tuple[dict, np.ndarray]:
    boot = pred.balanced_accuracy(draws)
    entry = {"balanced_accuracy": float(pred.balanced_accuracy()), "ci": bootstrap.interval(boot),
             "n_wells": len(pred.wells), "n_profiles": pred.n_profiles}
    return entry, boot


def identification(data: CellData, methods: list[str], splits: list[str],
                   progress: _progress.Progress | None = None) -> tuple[dict, dict, dict[str, np.ndarray]]:
    """Fit and score every classifier; return ``(accuracy, gap, confusion arrays)`` (layout in the module doc).

    Methods without context sets (``data.sets``) get single-cell figures only.
    """
    screen, config = data.screen, data.config
    k = screen.keys
    treatments = sorted(screen.wells[k.treatment].astype(str).unique().tolist())
    code = {t: i for i, t in enumerate(treatments)}
    treatment_of = {w: code[t] for w, t in screen.wells[k.treatment].astype(str).items()}
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

    jobs = []
    for profile, mods in MODALITIES.items():
        with_sets = [m for m in methods if profile == "single" or m in data.sets]
        if profile == "multi" and data.contexts is None:
            continue
        jobs += [(profile, None, m) for m in mods["reference"]]
        jobs += [(profile, x, m) for x in with_sets for m in mods["method"] if m != "real_to_synthetic"]
    with _progress.get(progress).task("treatment identification", total=len(jobs)) as bar:
        for profile, method, modality in jobs:
            build = data.single if profile == "single" else data.multi
            train = build(modality, "train", method)
            clf = fit_classifier(train, treatment_of, seed=config.seed, max_iter=config.max_iter)
            for split in splits:
                test = build(modality, split, method)
                record(method or REFERENCE, modality, predict_wells(clf, test, treatment_of, len(treatments)),
                       split, profile)
                if modality == "real_rna":
                    # real_to_synthetic reuses the real-RNA classifier on every method's synthetic test profiles.
                    for m in methods:
                        if profile == "single" or m in data.sets:
                            syn = build("synthetic_rna", split, m)
                            record(m, "real_to_synthetic", predict_wells(clf, syn, treatment_of, len(treatments)),
                                   split, profile)
            bar.update(1, info=f"{method or REFERENCE} {modality} ({profile})")

    gap = {m: {s: {name: _gap_entry(accuracy, boots, m, s, spec) for name, spec in GAPS.items()} for s in splits}
           for m in methods}
    return accuracy, gap, arrays


def _gap_entry(accuracy: dict, boots: dict, method: str, split: str, spec: tuple[str, str, str]) -> dict:
    profile, floor, candidate = spec
    keys = [(REFERENCE, floor), (method, candidate.format(rna="synthetic")), (REFERENCE, candidate.format(rna="real"))]
    try:
        values = [accuracy[m][mod][split][profile]["balanced_accuracy"] for m, mod in keys]
    except KeyError:
        return {"value": None, "ci": [None, None], "added": None, "ceiling_added": None}
    point = float(bootstrap.gap_recovered(*values))
    boot = bootstrap.gap_recovered(*(boots[(m, mod, split, profile)] for m, mod in keys))
    return {"value": point if np.isfinite(point) else None, "ci": bootstrap.interval(boot),
            "added": values[1] - values[0], "ceiling_added": values[2] - values[0]}


def energy_ratios(data: CellData, method: str, split: str, reference_of: dict[str, str]) -> dict[str, dict[str, float]]:
    """Per well of ``split``: energy distance of the method's synthetic cells to the well's real cells, divided
    by that of the real cells of its replicate well (``reference_of``) — 1 is replicate-like —, as
    ``{"energy_ratio": {well: ratio}, "energy_ratio_centred": {well: ratio}}`` (the second with both samples
    moved onto the real well's mean: :mod:`phenoseq.evaluate.fidelity`)."""
    screen = data.screen
    wells = screen.wells_in(split)
    refs = sorted(set(reference_of[w] for w in wells if w in reference_of))
    real_refs = data._cached(("refs", split), lambda: data._build("real", refs))
    ratios = fidelity.energy_ratios(data.table(f"syn:{method}", split), data.table("real", split), real_refs,
                                    {w: reference_of[w] for w in wells if w in reference_of},
                                    data.config.fidelity_cells, data.config.seed)
    return {metric: {w: r[key] for w, r in ratios.items() if np.isfinite(r[key])}
            for metric, key in (("energy_ratio", "ratio"), ("energy_ratio_centred", "centred_ratio"))}


def localisation_and_genes(data: CellData, method: str, split: str) -> dict:
    """Localisation (latent) and the median per-gene correlation across the split's wells (gene spaces only)."""
    from phenoseq.evaluate.wells import real_profiles, synthetic_profiles

    treatment = data.screen.wells[data.screen.keys.treatment].astype(str).to_dict()
    out = {"localisation": fidelity.localisation(data.table(f"syn:{method}", split), data.table("real", split),
                                                 treatment)}
    wells = sorted(data.screen.wells_in(split))
    real = data._cached(("real-profiles", split), lambda: real_profiles(data.screen, data.rna_space, wells))
    if real.genes is None:
        out.update(gene_pearson_median=None, n_genes=0)
        return out
    syn = synthetic_profiles(data.synthetic[method], data.rna_space, data.screen.keys.sample, wells)
    corr = fidelity.gene_correlation(syn.genes, real.genes)
    corr = corr[np.isfinite(corr)]
    out.update(gene_pearson_median=float(np.median(corr)) if corr.size else None, n_genes=int(corr.size))
    return out


def embedding(data: CellData, methods: list[str], split: str) -> tuple[dict, dict]:
    """PCA (fitted on real cells) of real and synthetic latents of one split, subsampled per well."""
    from sklearn.decomposition import PCA

    config = data.config
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
    treatment = data.screen.wells[data.screen.keys.treatment].astype(str)
    treatments = sorted(treatment.unique().tolist())
    code = {t: i for i, t in enumerate(treatments)}
    meta = {"split": split, "sources": sources, "explained_variance": [float(v) for v in pca.explained_variance_ratio_]}
    arrays = {
        "embedding_xy": pca.transform(X).astype(np.float32),
        "embedding_treatment": np.array([code[treatment[w]] for w in wells], dtype=np.int32),
        "embedding_source": src.astype(np.int32),
    }
    return meta, arrays
