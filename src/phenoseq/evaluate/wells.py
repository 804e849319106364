"""Well-level figures, scored by the same code in every mode (single-cell and bulk, seen and unseen wells).

A method's prediction for a well is the mean of its synthetic cells (one profile in bulk mode), in the RNA
latent space and, when the space has genes, in gene space (decoded log-expression). The real profile is the
mean of the well's real RNA cells. Per held-out well:

``pearson_genes`` / ``pearson_latent``
    Pearson correlation of the predicted and the real **change from the training mean** (the mean profile of
    the training wells): what is specific to this well. A method that predicts the training mean has no
    change and scores 0.
``pearson_genes_control`` / ``pearson_latent_control``
    The same, with changes measured from the training **control** wells (e.g. DMSO), when there are any.
``rank``
    The held-out wells of one replicate (and split) are ranked by the correlation of their real change with
    the well's predicted change; the rank of the true well (1 = best, ties share the average rank), with
    top-1, top-5 and chance = ``(n + 1) / 2`` for ``n`` wells in the group.
``moa``
    With a mechanism-of-action column: whether the training treatment whose real mean change correlates best
    with the predicted change shares the well's MoA (the well's own treatment is never a candidate).

The **replicate** reference predicts each well by the real profile of another well of the same treatment
(a validation well, else a training well, else another held-out replicate): how well a real replicate
would do, the ``r`` of the scaled scores (:mod:`phenoseq.evaluate.scaled`).
"""

from __future__ import annotations

from dataclasses import dataclass

import anndata as ad
import numpy as np

from phenoseq.generate.output import LATENT_KEY
from phenoseq.groups import group_means
from phenoseq.io.screen import CONTROL, PairedScreen
from phenoseq.rna.space import RNASpace

REPLICATE = "replicate"
PEARSON_METRICS = ("pearson_genes", "pearson_latent", "pearson_genes_control", "pearson_latent_control")


@dataclass
class WellProfiles:
    """Mean profiles of wells: ``latent`` ``(n, d)``; ``genes`` ``(n, G)`` or ``None`` (a space without genes)."""

    wells: list[str]
    latent: np.ndarray
    genes: np.ndarray | None

    def take(self, wells: list[str]) -> "WellProfiles":
        idx = [self.wells.index(w) for w in wells]
        return WellProfiles(list(wells), self.latent[idx], None if self.genes is None else self.genes[idx])

    def mean(self) -> tuple[np.ndarray, np.ndarray | None]:
        return self.latent.mean(axis=0), None if self.genes is None else self.genes.mean(axis=0)


def has_genes(space: RNASpace) -> bool:
    return getattr(space, "decode", None) is not None and len(space.genes) > 0


def real_profiles(screen: PairedScreen, space: RNASpace, wells: list[str]) -> WellProfiles:
    """Mean latent (and expression) of the real RNA cells of each of ``wells`` (order kept)."""
    rna = screen.subset("rnaseq", wells)
    labels = rna.obs[screen.keys.sample].astype(str).to_numpy()
    latent = group_means(space.transform(rna), labels, wells)[1]
    genes = group_means(space.expression(rna), labels, wells)[1] if has_genes(space) else None
    return WellProfiles(list(wells), latent, genes)


def synthetic_profiles(syn: ad.AnnData, space: RNASpace, sample_key: str, wells: list[str]) -> WellProfiles:
    """Mean latent (and decoded expression) of the synthetic cells of each of ``wells`` (order kept)."""
    labels = syn.obs[sample_key].astype(str).to_numpy()
    mask = np.isin(labels, wells)
    latent = group_means(np.asarray(syn.obsm[LATENT_KEY])[mask], labels[mask], wells)[1]
    genes = None
    if has_genes(space):
        if syn.n_vars == len(space.genes) and syn.var_names.tolist() == list(space.genes):
            X = syn.X[mask]
            X = X.toarray() if hasattr(X, "toarray") else np.asarray(X)
        else:  # X over other genes or absent: decode the latents
            X = space.decode(np.asarray(syn.obsm[LATENT_KEY])[mask])
        genes = group_means(X, labels[mask], wells)[1]
    return WellProfiles(list(wells), latent, genes)


def row_correlation(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """``(n_a, n_b)`` Pearson correlation between rows of ``A`` and of ``B``; 0 for a constant row.

    A constant row has no direction: it carries no well-specific information, so its correlation is 0
    rather than NaN (which JSON cannot hold and which would drop the well from the medians).
    """
    A = np.asarray(A, dtype=np.float64)
    B = np.asarray(B, dtype=np.float64)
    A = A - A.mean(axis=1, keepdims=True)
    B = B - B.mean(axis=1, keepdims=True)
    na, nb = np.linalg.norm(A, axis=1), np.linalg.norm(B, axis=1)
    tiny = 1e-9 * max(float(na.max(initial=0.0)), float(nb.max(initial=0.0)), 1e-300)
    na = np.where(na > tiny, na, np.inf)
    nb = np.where(nb > tiny, nb, np.inf)
    return np.clip((A @ B.T) / na[:, None] / nb[None, :], -1.0, 1.0)


def ranks(corr: np.ndarray) -> np.ndarray:
    """Rank (1 = best) of the diagonal entry within each row of a square matrix; exact ties share the average."""
    own = np.diag(corr)[:, None]
    tol = 1e-9  # a prediction equal to two real profiles neither wins nor loses by rounding
    higher = (corr > own + tol).sum(axis=1)
    tied = (np.abs(corr - own) <= tol).sum(axis=1) - 1
    return 1.0 + higher + tied / 2.0


def summary(values: dict[str, float]) -> dict:
    """``{median, mean, iqr, n, per_well}`` of per-well values (NaN-free by construction)."""
    v = np.array(list(values.values()), dtype=np.float64)
    if v.size == 0:
        return {"median": None, "mean": None, "iqr": [None, None], "n": 0, "per_well": {}}
    q25, q75 = np.percentile(v, [25, 75])
    return {"median": float(np.median(v)), "mean": float(v.mean()), "iqr": [float(q25), float(q75)],
            "n": int(v.size), "per_well": {w: float(x) for w, x in values.items()}}


def rank_summary(per_well: dict[str, float], group_sizes: dict[str, int]) -> dict:
    """Mean/median rank, top-1/top-5 fractions and the chance mean rank over the wells' groups."""
    r = np.array(list(per_well.values()), dtype=np.float64)
    if r.size == 0:
        return {"mean": None, "median": None, "top1": None, "top5": None, "chance_mean": None, "n": 0, "per_well": {},
                "group_size": {}}
    chance = float(np.mean([(group_sizes[w] + 1) / 2.0 for w in per_well]))
    return {"mean": float(r.mean()), "median": float(np.median(r)), "top1": float(np.mean(r <= 1.0)),
            "top5": float(np.mean(r <= 5.0)), "chance_mean": chance, "n": int(r.size),
            "per_well": {w: float(x) for w, x in per_well.items()},
            "group_size": {w: int(group_sizes[w]) for w in per_well}}


def moa_summary(hits: dict[str, float]) -> dict:
    """:func:`summary` of per-well MoA hits (1 or 0), with ``top1`` = the fraction of hits."""
    return summary(hits) | {"top1": float(np.mean(list(hits.values()))) if hits else None}


def merge(parts: list[dict]) -> dict:
    """One summary per metric from summaries of disjoint sets of wells (the folds of the unseen protocol)."""
    out = {}
    for metric in parts[0]:
        per_well = {w: v for p in parts for w, v in p[metric]["per_well"].items()}
        if metric == "rank":
            sizes = {w: n for p in parts for w, n in p[metric]["group_size"].items()}
            out[metric] = rank_summary(per_well, sizes)
        elif metric == "moa":
            out[metric] = moa_summary(per_well)
        else:
            out[metric] = summary(per_well)
    return out


@dataclass
class Origins:
    """Where changes are measured from: training mean and (optional) control mean, latent and gene space."""

    latent: np.ndarray
    genes: np.ndarray | None
    control_latent: np.ndarray | None = None
    control_genes: np.ndarray | None = None

    @classmethod
    def of(cls, screen: PairedScreen, space: RNASpace) -> "Origins":
        """From the training wells of ``screen`` (each well weighs equally) and its training control wells."""
        train = real_profiles(screen, space, sorted(screen.wells_in("train")))
        latent, genes = train.mean()
        controls = sorted(screen.control_wells("train"))
        if not controls:
            return cls(latent, genes)
        c_latent, c_genes = train.take(controls).mean()
        return cls(latent, genes, c_latent, c_genes)


def score_wells(pred: WellProfiles, real: WellProfiles, origins: Origins, groups: dict[str, str],
                moa: "MoAReference | None" = None) -> dict:
    """Per-well figures of predicted vs real profiles (same wells, same order); layout in the module docstring.

    ``groups`` maps each well to its ranking group (its replicate and split): a well is ranked among the
    real profiles of the wells of its group.
    """
    out: dict = {}
    spaces = [("latent", pred.latent, real.latent, origins.latent, origins.control_latent)]
    if pred.genes is not None and real.genes is not None:
        spaces.insert(0, ("genes", pred.genes, real.genes, origins.genes, origins.control_genes))
    for space, p, r, origin, control in spaces:
        out[f"pearson_{space}"] = summary(_paired_pearson(changes(p, r, origin), r - origin, real.wells))
        if control is not None:
            out[f"pearson_{space}_control"] = summary(_paired_pearson(changes(p, r, control), r - control, real.wells))
    # Ranking uses gene space when there is one (what a user compares), else the latent.
    _, p, r, origin, _ = spaces[0]
    p_change = changes(p, r, origin)
    per_well, sizes = {}, {}
    for group in sorted(set(groups[w] for w in real.wells)):
        idx = [i for i, w in enumerate(real.wells) if groups[w] == group]
        rk = ranks(row_correlation(p_change[idx], r[idx] - origin))
        for i, value in zip(idx, rk):
            per_well[real.wells[i]] = float(value)
            sizes[real.wells[i]] = len(idx)
    out["rank"] = rank_summary(per_well, sizes)
    if moa is not None:
        out["moa"] = moa.score(p_change, real.wells)
    return out


def changes(pred: np.ndarray, real: np.ndarray, origin: np.ndarray) -> np.ndarray:
    """``pred − origin``, with rows set to exactly 0 where the predicted change is numerically nil (below 1e-6 of
    the typical real change): rounding noise around the origin must not read as a direction."""
    p = np.asarray(pred, dtype=np.float64) - origin
    scale = float(np.median(np.linalg.norm(np.asarray(real, dtype=np.float64) - origin, axis=1)))
    p[np.linalg.norm(p, axis=1) <= 1e-6 * scale] = 0.0
    return p


def _paired_pearson(p_change: np.ndarray, r_change: np.ndarray, wells: list[str]) -> dict[str, float]:
    values = np.array([row_correlation(a[None], b[None])[0, 0] for a, b in zip(p_change, r_change)])
    return dict(zip(wells, values.tolist()))


@dataclass
class MoAReference:
    """Real mean changes of the training treatments and their mechanism of action, for MoA retrieval."""

    treatments: list[str]
    changes: np.ndarray  # (n_treatments, D) in the space scored (genes when present)
    moa_of: dict[str, str]  # treatment -> MoA (training and scored treatments)
    treatment_of: dict[str, str]  # well -> treatment

    def score(self, predicted_changes: np.ndarray, wells: list[str]) -> dict:
        """Fraction of ``wells`` whose best-correlated training treatment (not their own) shares their MoA."""
        corr = row_correlation(predicted_changes, self.changes)
        hits = {}
        for i, w in enumerate(wells):
            own = self.treatment_of[w]
            c = np.where(np.array(self.treatments) == own, -np.inf, corr[i])
            hits[w] = float(self.moa_of.get(self.treatments[int(np.argmax(c))]) == self.moa_of.get(own))
        return moa_summary(hits)


def moa_reference(screen: PairedScreen, space: RNASpace, moa_key: str, origins: Origins) -> MoAReference:
    """Build the MoA retrieval reference from the training wells (``moa_key``: an ``obs`` column of the RNA file)."""
    from phenoseq.errors import PhenoseqError

    k = screen.keys
    obs = screen.rnaseq.obs
    if moa_key not in obs.columns:
        raise PhenoseqError(f"--moa-key {moa_key!r}: no such obs column in the RNA data (found {list(obs.columns)[:12]})")
    per_well = obs.groupby(k.sample, observed=True)[moa_key].first().astype(str)
    treatment_of = screen.wells[k.treatment].astype(str).to_dict()
    moa_of = {treatment_of[w]: per_well[w] for w in screen.wells.index if w in per_well.index}
    train = sorted(screen.wells_in("train"))
    profiles = real_profiles(screen, space, train)
    use_genes = profiles.genes is not None
    X = (profiles.genes if use_genes else profiles.latent) - (origins.genes if use_genes else origins.latent)
    treatments = sorted(set(treatment_of[w] for w in train))
    labels = np.array([treatment_of[w] for w in train])
    changes = np.stack([X[labels == t].mean(axis=0) for t in treatments])
    return MoAReference(treatments, changes, moa_of, treatment_of)


def replicate_wells(screen: PairedScreen, wells: list[str]) -> dict[str, str]:
    """For each well, a real replicate: another well of its treatment, preferring validation, then training
    wells, then other wells of its own split (next in sorted order). Wells without one are left out."""
    k = screen.keys
    w = screen.wells
    out = {}
    for well in wells:
        t = w.loc[well, k.treatment]
        same = w.index[(w[k.treatment] == t) & (w.index != well)]
        for split in ("val", "train"):
            candidates = sorted(same[w.loc[same, "split"] == split])
            if candidates:
                out[well] = candidates[0]
                break
        else:
            others = sorted(same)
            if others:
                later = [o for o in others if o > well]
                out[well] = (later or others)[0]
    return out


def ranking_groups(screen: PairedScreen, wells: list[str]) -> dict[str, str]:
    """Each well's ranking group: its split and replicate."""
    w = screen.wells
    return {x: f"{w.loc[x, 'split']}:{w.loc[x, screen.keys.replicate]}" for x in wells}


# ---- what the report's figures need beyond the summaries: a sample of the changes, the treatments ----

CHANGE_WELLS = 48  # wells kept per method for the predicted-vs-measured change scatter
CHANGE_FEATURES = 200  # genes (or latent dimensions) kept per well: the ones whose measured change varies most
VISIBLE_KEY = "morphology_visible"  # obs column (per treatment) saying whether its morphology changes


@dataclass
class ChangeSample:
    """Predicted and measured well-mean changes from the training mean for a bounded set of wells and features,
    so that ``arrays.npz`` stays small. ``rows``/``cols`` index the split's wells and the space's features."""

    split: str
    space: str  # "genes" or "latent"
    wells: list[str]
    features: list[str]
    rows: np.ndarray
    cols: np.ndarray
    origin: np.ndarray
    real_full: np.ndarray  # the split's real profiles, for the nil-change scale of :func:`changes`
    predicted: dict[str, np.ndarray]

    @classmethod
    def choose(cls, split: str, real: WellProfiles, origins: Origins, space: RNASpace,
               max_wells: int = CHANGE_WELLS, max_features: int = CHANGE_FEATURES) -> "ChangeSample":
        """Evenly spaced wells of ``real`` (sorted ids: spread over treatments, no randomness) and the features
        whose measured change varies most across them; gene space when there is one, as the scores use."""
        genes = real.genes is not None and origins.genes is not None
        X, origin = (real.genes, origins.genes) if genes else (real.latent, origins.latent)
        n = len(real.wells)
        rows = np.unique(np.linspace(0, n - 1, min(n, max_wells)).round().astype(int))
        spread = (X[rows] - origin).var(axis=0)
        cols = np.sort(np.argsort(-spread, kind="stable")[:max_features])
        names = list(space.genes) if genes else [f"latent {i + 1}" for i in range(X.shape[1])]
        return cls(split, "genes" if genes else "latent", [real.wells[i] for i in rows], [names[j] for j in cols],
                   rows, cols, origin, X, {})

    def add(self, name: str, profiles: WellProfiles) -> None:
        """Keep the change of ``profiles`` (the split's wells, same order as the real ones) under ``name``."""
        P = profiles.genes if self.space == "genes" else profiles.latent
        if P is not None:
            self.predicted[name] = changes(P, self.real_full, self.origin)[self.rows][:, self.cols]

    def export(self) -> tuple[dict, dict[str, np.ndarray]]:
        """The ``mean_change`` metrics entry and its arrays (float32)."""
        meta = {"split": self.split, "space": self.space, "wells": self.wells, "features": self.features,
                "methods": list(self.predicted)}
        arrays = {"mean_change_real": (self.real_full[self.rows] - self.origin)[:, self.cols].astype(np.float32)}
        arrays |= {f"mean_change__{m}": p.astype(np.float32) for m, p in self.predicted.items()}
        return meta, arrays


def treatment_info(screen: PairedScreen) -> dict:
    """Per well its treatment, per treatment how much it changes morphology and, when the data say so, whether
    its morphology is visible: what the per-treatment fidelity figure needs (``treatment_info`` in metrics).

    ``morphology_effect``: median over the treatment's wells of the distance between the well's mean imaging
    profile (features scaled by their spread over training cells) and the mean of the control wells, over the
    median such distance of a control well: 1 = no more different from the controls than a control well. It
    reads imaging only, which every method is given. Absent without two control wells. ``controls``: the
    control treatments (e.g. DMSO), which neither are nor lack a morphological effect.
    """
    k = screen.keys
    w = screen.wells
    wells = w.index.astype(str).tolist()
    treatment_of = dict(zip(wells, w[k.treatment].astype(str)))
    controls = [x for x, g in zip(wells, w[k.group].astype(str)) if g == CONTROL]
    out: dict = {"well_treatment": treatment_of, "controls": sorted({treatment_of[x] for x in controls})}
    if len(controls) >= 2:
        img = screen.imaging
        labels = img.obs[k.sample].astype(str).to_numpy()
        train = np.isin(labels, screen.wells_in("train"))
        scale = np.asarray(img.X[train]).std(axis=0)
        means = group_means(img.X, labels, wells)[1] / np.where(scale > 0, scale, 1.0)
        ctrl = np.isin(wells, controls)
        dist = np.linalg.norm(means - means[ctrl].mean(axis=0), axis=1)
        unit = float(np.median(dist[ctrl])) or 1.0
        per = {}
        for x, d in zip(wells, dist):
            per.setdefault(treatment_of[x], []).append(d / unit)
        out["morphology_effect"] = {t: float(np.median(v)) for t, v in sorted(per.items())}
    visible = _visible(screen, treatment_of)
    if visible:
        out["morphology_visible"] = visible
    return out


def _visible(screen: PairedScreen, treatment_of: dict[str, str]) -> dict[str, bool]:
    """Treatment → morphology visible, from an obs column :data:`VISIBLE_KEY` of either modality (e.g. a
    simulated screen's ground truth), else ``uns["simulation"]["moa_visible"]`` (MoA → flag) with a ``MoA`` column."""
    k = screen.keys
    for adata in (screen.imaging, screen.rnaseq):
        obs = adata.obs
        if VISIBLE_KEY in obs.columns:
            first = obs.groupby(k.sample, observed=True)[VISIBLE_KEY].first()
            return {treatment_of[s]: _truthy(v) for s, v in first.items() if s in treatment_of and not _isna(v)}
        moa_visible = (adata.uns.get("simulation") or {}).get("moa_visible")
        if moa_visible and "MoA" in obs.columns:
            moa_visible = {str(m): _truthy(v) for m, v in moa_visible.items()}
            moa = obs.groupby(k.sample, observed=True)["MoA"].first().astype(str)
            return {treatment_of[s]: moa_visible[m] for s, m in moa.items() if s in treatment_of and m in moa_visible}
    return {}


def _truthy(value) -> bool:
    """A flag read from a file: ``True``, ``1`` and the strings "true"/"1"/"yes" are true."""
    return str(value).strip().lower() in ("true", "1", "yes", "1.0")


def _isna(value) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))
