"""Is a generator's trust honest? Interval coverage, confidence against realised error, the OOD flag.

For a generator that writes well-level output with intervals (:mod:`phenoseq.generate.well_output`, e.g.
PhenoSeq), every scored well gets a record: the fraction of its features whose real well mean lies in the
interval (``coverage``), the mean interval width, the RMS error of the predicted well mean, the confidence
and the OOD score and flag. Beside it sits the **training-mean baseline interval**: the training mean ± a
split-conformal quantile of the validation wells' deviations from it, per feature: what a user gets with
no model at all. An interval only helps if it is narrower than that one at the coverage asked for.

HE wells come from another round than the validation wells the intervals are calibrated on, so they are not
exchangeable with them and their coverage may fall short; they are reported, not hidden (``exchangeable``).

``metrics["trust"][method]`` layout::

    level, calibration_wells {seen, unseen} (of one model), n_models (unseen protocol: one per fold),
    splits {split: {coverage, width, baseline_coverage, baseline_width, spearman, flag_rate, n_wells, exchangeable,
                    by_morphology {visible | silent: the same figures},     (when the data mark it)
                    per_well {well: {coverage, width, baseline_coverage, baseline_width, error, confidence,
                                     ood_score, ood, visible}}}},
    ood {negatives (split), auroc, false_flag_rate, recall, recall_visible, n_positive, n_negative,
         n_visible, per_well {well: {score, flag, positive, visible}}}

``spearman`` is between confidence and −error (1: the most confident wells are the most accurate). In the OOD
entry the positives are wells of treatments without training wells (the unseen-compound protocol) and the
negatives held-out wells of training treatments from the same round (the ``test`` split; ``negatives`` None
when there are none, e.g. when the test wells trained the methods).
"""

from __future__ import annotations

import anndata as ad
import numpy as np
from scipy.stats import rankdata, spearmanr

from phenoseq import progress as _progress
from phenoseq.evaluate import wells as W
from phenoseq.generate.calibrate import DEFAULT_LEVEL, conformal_quantile
from phenoseq.io.screen import UNSEEN, PairedScreen
from phenoseq.rna.space import RNASpace

EXCHANGEABLE = ("test", "unseen")  # splits drawn like the validation wells (HE: another round)


def baseline_interval(val_real: np.ndarray, training_mean: np.ndarray, level: float) -> np.ndarray:
    """``(G,)`` half-width of the training-mean baseline's interval: per-feature scale (mean absolute deviation
    of the validation wells ``(n, G)`` from the training mean) times the conformal quantile of the scaled
    deviations."""
    dev = np.abs(np.asarray(val_real, np.float64) - training_mean)
    scale = np.maximum(dev.mean(axis=0), 1e-6)
    return conformal_quantile((dev / scale).ravel(), level) * scale


def well_records(wells: ad.AnnData, real: np.ndarray, training_mean: np.ndarray,
                 baseline_half: np.ndarray | None, visible: dict[str, bool | None] | None = None) -> dict[str, dict]:
    """Per-well record (module docstring) of well-level output ``wells`` against the real well means ``real``
    ``(n_wells, G)``, in the row order of ``wells``; ``visible``: well → its treatment changes morphology."""
    pred, lower, upper = (np.asarray(a, np.float64) for a in (wells.X, wells.layers["lower"], wells.layers["upper"]))
    inside = (real >= lower) & (real <= upper)
    error = np.sqrt(((real - pred) ** 2).mean(axis=1))
    obs = wells.obs
    out = {}
    for i, w in enumerate(wells.obs_names):
        rec = {"coverage": float(inside[i].mean()), "width": float((upper[i] - lower[i]).mean()),
               "error": float(error[i]), "confidence": float(obs["phenoseq_confidence"].iloc[i]),
               "ood_score": float(obs["phenoseq_ood_score"].iloc[i]), "ood": bool(obs["phenoseq_ood"].iloc[i])}
        if visible and visible.get(str(w)) is not None:
            rec["visible"] = bool(visible[str(w)])
        if baseline_half is not None:
            rec["baseline_coverage"] = float((np.abs(real[i] - training_mean) <= baseline_half).mean())
            rec["baseline_width"] = float(2 * baseline_half.mean())
        out[str(w)] = rec
    return out


def summarise_split(per_well: dict[str, dict], split: str) -> dict:
    """Pooled figures of one split's well records (also for records merged across folds). When the records
    say whether each well's treatment visibly changes morphology (``visible``), the figures are also given
    for each kind (``by_morphology``): no confidence read from imaging can see an effect that leaves
    morphology unchanged, so the two kinds are reported apart."""
    out = _figures(list(per_well.values()))
    kinds = {"visible": [r for r in per_well.values() if r.get("visible") is True],
             "silent": [r for r in per_well.values() if r.get("visible") is False]}
    if any(kinds.values()):
        out["by_morphology"] = {k: _figures(v) for k, v in kinds.items() if v}
    return out | {"exchangeable": split in EXCHANGEABLE, "per_well": per_well}


def _figures(recs: list[dict]) -> dict:
    def mean(key: str) -> float | None:
        values = [r[key] for r in recs if key in r]
        return float(np.mean(values)) if values else None

    conf = np.array([r["confidence"] for r in recs])
    err = np.array([r["error"] for r in recs])
    rho = None
    if len(recs) >= 3 and np.ptp(conf) > 0 and np.ptp(err) > 0:
        rho = float(spearmanr(conf, -err)[0])
    return {"coverage": mean("coverage"), "width": mean("width"), "baseline_coverage": mean("baseline_coverage"),
            "baseline_width": mean("baseline_width"), "spearman": rho, "flag_rate": mean("ood"), "n_wells": len(recs)}


def auroc(positive: np.ndarray, negative: np.ndarray) -> float | None:
    """Probability that a positive scores above a negative (ties count half); None without both."""
    if len(positive) == 0 or len(negative) == 0:
        return None
    ranks = rankdata(np.r_[positive, negative])
    u = ranks[: len(positive)].sum() - len(positive) * (len(positive) + 1) / 2
    return float(u / (len(positive) * len(negative)))


def summarise_ood(per_well: dict[str, dict], negatives: str | None) -> dict:
    """AUROC of the OOD score and the flag's recall and false-flag rate from per-well ``{score, flag,
    positive, visible}`` records (``visible``: the treatment's morphology is known to change, or None)."""
    pos = [r for r in per_well.values() if r["positive"]]
    neg = [r for r in per_well.values() if not r["positive"]]
    vis = [r for r in pos if r.get("visible")]

    def rate(rs: list[dict]) -> float | None:
        return float(np.mean([r["flag"] for r in rs])) if rs else None

    return {"negatives": negatives, "auroc": auroc(np.array([r["score"] for r in pos]), np.array([r["score"] for r in neg])),
            "false_flag_rate": rate(neg), "recall": rate(pos), "recall_visible": rate(vis),
            "n_positive": len(pos), "n_negative": len(neg), "n_visible": len(vis), "per_well": per_well}


def ood_records(wells: ad.AnnData, positive: bool, visible: dict[str, bool], treatment_of: dict[str, str]) -> dict:
    """``{well: {score, flag, positive, visible}}`` of well-level output ``wells``."""
    out = {}
    for w, score, flag in zip(wells.obs_names, wells.obs["phenoseq_ood_score"], wells.obs["phenoseq_ood"]):
        v = visible.get(treatment_of.get(str(w), ""))
        out[str(w)] = {"score": float(score), "flag": bool(flag), "positive": positive,
                       "visible": None if v is None else bool(v)}
    return out


def merge(parts: list[dict]) -> dict:
    """One trust entry from the entries of the folds of the unseen protocol. Unseen wells are disjoint across
    folds; a ``test`` well is scored by every fold's model and kept once per fold (as ``well@fold<i>``)."""
    first = parts[0]
    out = {"level": first["level"], "splits": {}, "n_models": len(parts),
           "calibration_wells": dict(first["calibration_wells"])}  # each fold's model: the same split sizes
    for split in first["splits"]:
        out["splits"][split] = summarise_split(_pooled([p["splits"].get(split, {}).get("per_well", {})
                                                        for p in parts]), split)
    if first.get("ood"):
        out["ood"] = summarise_ood(_pooled([p["ood"]["per_well"] for p in parts]), first["ood"]["negatives"])
    return out


def _pooled(per_fold: list[dict[str, dict]]) -> dict[str, dict]:
    seen: dict[str, int] = {}
    for records in per_fold:
        for w in records:
            seen[w] = seen.get(w, 0) + 1
    return {(w if seen[w] == 1 else f"{w}@fold{i}"): r for i, records in enumerate(per_fold) for w, r in records.items()}


def evaluate_trust(screen: PairedScreen, space: RNASpace, generator, synthetic: ad.AnnData, splits: list[str],
                   cells_per_well: int, seed: int = 0, progress: _progress.Progress | None = None) -> dict | None:
    """The trust entry (module docstring) of a generator with well-level intervals (``wells`` and a fitted
    ``calibration``), or None for one without. ``synthetic`` holds its cells for the wells of ``splits``; in the
    unseen-compound protocol the generator also generates for the ``test`` wells (held-out wells of training
    treatments), the negatives of the OOD flag and the seen-compound coverage of the same model (when the test
    wells joined training instead, ``evaluate_unseen(train_on_tests=True)``, the flag has no negatives)."""
    if getattr(generator, "calibration", None) is None or not callable(getattr(generator, "wells", None)):
        return None
    k = screen.keys
    level = DEFAULT_LEVEL
    genes = W.has_genes(space)

    def real_of(ws: list[str]) -> np.ndarray:
        profiles = W.real_profiles(screen, space, ws)
        return profiles.genes if genes else profiles.latent

    training_mean = real_of(sorted(screen.wells_in("train"))).mean(axis=0)
    val = sorted(screen.wells_in("val"))
    baseline_half = baseline_interval(real_of(val), training_mean, level) if val else None
    splits = list(splits)
    if UNSEEN in splits and "test" not in splits and screen.wells_in("test"):
        test = sorted(screen.wells_in("test"))
        extra = generator.generate(screen.subset("imaging", test).copy(), cells_per_well=cells_per_well, seed=seed,
                                   progress=progress)
        synthetic = ad.concat([synthetic, extra], join="inner", merge="first", uns_merge="first")
        splits.append("test")
    samples = synthetic.obs[k.sample].astype(str)
    info = W.treatment_info(screen)
    visible, treatment_of = info.get("morphology_visible", {}), info["well_treatment"]
    out = {"level": level, "calibration_wells": dict(generator.calibration.n_wells), "splits": {}}
    ood: dict[str, dict] = {}
    for split in splits:
        ws = sorted(screen.wells_in(split))
        wells = generator.wells(synthetic[samples.isin(ws).to_numpy()], level=level)
        wells = wells[ws]
        well_visible = {w: visible.get(treatment_of.get(w, "")) for w in ws}
        out["splits"][split] = summarise_split(well_records(wells, real_of(ws), training_mean, baseline_half,
                                                            well_visible), split)
        if split in (UNSEEN, "test"):
            ood |= ood_records(wells, split == UNSEEN, visible, treatment_of)
    if ood:
        out["ood"] = summarise_ood(ood, "test" if not all(r["positive"] for r in ood.values()) else None)
    return out
