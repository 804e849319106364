"""How close synthetic cells are to the real cells of the same test wells.

* **localisation**: fraction of treatments whose synthetic centroid lies nearest the real centroid of the
  right treatment (latent space, test wells of one split).
* **energy ratio**: energy distance between a well's synthetic and real cells, divided by the *replicate
  floor*, the energy distance between the real cells of another replicate well of the same treatment and
  the well's real cells. 1 means "as close as a replicate well"; a collapsed generator that emits one
  prototype per treatment identifies treatments well yet has a large ratio. The **centred ratio** is the same
  with the synthetic and the replicate cells each moved to the real well's mean: the shape of the
  distribution alone, a diagnostic of how much of the ratio is the error in the well mean.
* **gene correlation**: per gene, Pearson correlation across test wells of the well-mean expression
  (synthetic decoded vs real), summarised by the median over genes.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.distance import cdist

from phenoseq.evaluate.profiles import CellTable
from phenoseq.generate.seeds import well_rng


def energy_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Energy distance ``2E|A−B| − E|A−A'| − E|B−B'|`` between samples ``(n, d)`` and ``(m, d)``.

    V-statistic form: a sample against itself gives exactly 0. Its small positive bias for two samples of
    one distribution depends on the sample sizes, so compare distances computed at equal sizes.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return float(2.0 * cdist(a, b).mean() - cdist(a, a).mean() - cdist(b, b).mean())


def localisation(synthetic: CellTable, real: CellTable, treatment_of: dict[str, str]) -> float:
    """Fraction of treatments whose synthetic centroid's nearest real centroid is the same treatment.

    Centroids pool the cells of all the tables' wells of a treatment; only treatments present in both count.
    """
    def centroids(table: CellTable) -> dict[str, np.ndarray]:
        labels = np.array([treatment_of[w] for w in table.wells])
        return {t: table.X[labels == t].mean(axis=0) for t in sorted(set(labels.tolist()))}

    syn, ref = centroids(synthetic), centroids(real)
    shared = [t for t in syn if t in ref]
    names = list(ref)
    ref_matrix = np.stack([ref[t] for t in names])
    nearest = np.argmin(cdist(np.stack([syn[t] for t in shared]), ref_matrix), axis=1)
    return float(np.mean([names[j] == t for t, j in zip(shared, nearest)]))


def energy_ratios(synthetic: CellTable, real: CellTable, reference: CellTable, reference_of: dict[str, str],
                  max_cells: int, seed: int) -> dict[str, dict[str, float]]:
    """Per test well: ``{"synthetic": E(syn, real), "floor": E(ref, real), "ratio": synthetic / floor,
    "centred_ratio"}``, the last with syn and ref each shifted onto the real cells' mean (module docstring).

    ``reference_of`` maps a test well to its replicate well in ``reference``. All three samples are cut to
    one common size (at most ``max_cells``) so the V-statistic biases match.
    """
    syn_g, real_g, ref_g = synthetic.groups(), real.groups(), reference.groups()
    out = {}
    for well, ref_well in reference_of.items():
        if well not in syn_g or well not in real_g or ref_well not in ref_g:
            continue
        m = min(max_cells, len(syn_g[well]), len(real_g[well]), len(ref_g[ref_well]))
        rng = well_rng(seed, well, "energy")
        pick = [t.X[rng.choice(g, size=m, replace=False)] for t, g in
                ((synthetic, syn_g[well]), (real, real_g[well]), (reference, ref_g[ref_well]))]
        d_syn = energy_distance(pick[0], pick[1])
        floor = energy_distance(pick[2], pick[1])
        centre = pick[1].mean(axis=0)
        c_syn, c_floor = (energy_distance(p - p.mean(axis=0) + centre, pick[1]) for p in (pick[0], pick[2]))
        out[well] = {"synthetic": d_syn, "floor": floor, "ratio": d_syn / floor if floor > 0 else float("nan"),
                     "centred_ratio": c_syn / c_floor if c_floor > 0 else float("nan")}
    return out


def gene_correlation(synthetic_means: np.ndarray, real_means: np.ndarray) -> np.ndarray:
    """Per gene, Pearson correlation across wells of ``(n_wells, G)`` well means; NaN for constant genes."""
    s = synthetic_means - synthetic_means.mean(axis=0)
    r = real_means - real_means.mean(axis=0)
    denom = np.sqrt((s**2).sum(axis=0) * (r**2).sum(axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, (s * r).sum(axis=0) / np.where(denom > 0, denom, 1.0), np.nan)
