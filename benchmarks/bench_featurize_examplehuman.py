"""Compare ``phenoseq featurize`` with CellProfiler on its ExampleHuman field (512×512, 3 channels), per
backend (``phenoseq``, and ``cp-measure`` when installed) and feature family.

References:

* shape and intensity — CellProfiler 4.0.6's own output (pipeline in Experiment.csv: minimum cross-entropy
  nuclei threshold, intensity declumping, Propagation cells on ``cellbody``; 289 nuclei/cells). It has its
  own segmentation, so our nuclei are matched to its by centroid (mutual nearest neighbours within
  ``MAX_DISTANCE`` px) and r measures features *and* segmentation together. CellProfiler divides uint8
  intensities by 255, as phenoseq does, so intensities compare directly.
* texture and radial distribution — that pipeline measured neither, so the reference is CellProfiler's
  MeasureTexture / MeasureObjectIntensityDistribution code (via cp-measure) on *our* objects: r measures
  the feature definitions alone. For the cp-measure backend it is the reference itself (shown as "ref").
  Texture is averaged over CellProfiler's four directions to compare with phenoseq's 4-angle mean.

"scale" is the median of ours / reference over matched cells (1 = same units). Run from the repository
root::

    python benchmarks/bench_featurize_examplehuman.py [path/to/shared/data/real]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats
from scipy.spatial import cKDTree

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"
MAX_DISTANCE = 4.0
PATTERN = "{plate}_{well}f{site}d{channel}.tif"
CHANNELS = {"DNA": "0", "PH3": "1", "cellbody": "2"}
SHAPE = (
    "Area", "Perimeter", "FormFactor", "Eccentricity", "Solidity", "Extent", "MajorAxisLength",
    "MinorAxisLength", "EquivalentDiameter", "Compactness", "MaxFeretDiameter", "MeanRadius", "Zernike_2_0",
)  # fmt: skip
INTENSITY = (
    "IntegratedIntensity", "MeanIntensity", "StdIntensity", "MinIntensity", "MaxIntensity", "MedianIntensity",
    "LowerQuartileIntensity", "UpperQuartileIntensity", "MADIntensity", "MassDisplacement", "MeanIntensityEdge",
)  # fmt: skip
TEXTURE = ("AngularSecondMoment", "Contrast", "Correlation", "Variance", "InverseDifferenceMoment", "Entropy")
BACKENDS = ("phenoseq", "cp-measure")


def comparisons() -> list[tuple[str, str, str, str, str | None]]:
    """(family, label, phenoseq column, cp-measure column, CellProfiler ``table.column`` or None). A ``*``
    in a column name matches any text and the matches are averaged (texture's four directions)."""
    rows = []
    for comp in ("Nuclei", "Cells"):
        rows += [("shape", f"{comp} {f}", *[f"{comp}_AreaShape_{f}"] * 2, f"{comp}.AreaShape_{f}") for f in SHAPE]
    for comp, ch in (("Nuclei", "DNA"), ("Nuclei", "PH3"), ("Cells", "DNA")):
        feats = INTENSITY if (comp, ch) == ("Nuclei", "DNA") else ("MeanIntensity", "IntegratedIntensity")
        rows += [
            ("intensity", f"{comp} {f} {ch}", *[f"{comp}_Intensity_{f}_{ch}"] * 2, f"{comp}.Intensity_{f}_{ch}")
            for f in feats
        ]
    for comp, ch in (("Nuclei", "DNA"), ("Cells", "cellbody")):
        rows += [
            ("texture", f"{comp} {f} {ch}", f"{comp}_TexturePhenoseq_{f}_{ch}_3", f"{comp}_Texture_{f}_{ch}_3_*_256", None)
            for f in TEXTURE
        ]
    for kind in ("FracAtD", "MeanFrac"):
        rows += [
            ("radial", f"Nuclei {kind} DNA {k}of4", *[f"Nuclei_RadialDistribution_{kind}_DNA_{k}of4"] * 2, None)
            for k in (1, 4)
        ]
    return rows


def match(ours_xy: np.ndarray, theirs_xy: np.ndarray, max_distance: float = MAX_DISTANCE) -> tuple:
    """Indices (ours, theirs) of mutual nearest neighbours closer than ``max_distance`` pixels."""
    d, j = cKDTree(theirs_xy).query(ours_xy)
    _, back = cKDTree(ours_xy).query(theirs_xy)
    i = np.arange(len(ours_xy))
    keep = (d <= max_distance) & (back[j] == i)
    return i[keep], j[keep]


def column(df: pd.DataFrame, pattern: str) -> np.ndarray | None:
    """The column named ``pattern``; a ``*`` matches any text and matched columns are averaged (the
    texture directions); None when nothing matches."""
    if "*" not in pattern:
        return df[pattern].to_numpy(float) if pattern in df else None
    head, tail = pattern.split("*", 1)
    cols = [c for c in df.columns if c.startswith(head) and c.endswith(tail)]
    return df[cols].to_numpy(float).mean(axis=1) if cols else None


def agreement(a: np.ndarray, b: np.ndarray) -> dict:
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok], b[ok]
    if len(a) < 3 or a.std() == 0 or b.std() == 0:
        return {"pearson": float("nan"), "scale": float("nan"), "n": len(a)}
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = a / b
    ratio = ratio[np.isfinite(ratio)]
    scale = float(np.median(ratio)) if len(ratio) else float("nan")
    return {"pearson": float(stats.pearsonr(a, b)[0]), "scale": scale, "n": len(a)}


def run(real: Path = REAL) -> dict:
    """Featurize ExampleHuman with each available backend and compare; returns what ``main`` prints.

    ``rows[k][column]`` is an :func:`agreement` (or None where a side is missing) for the columns of
    :data:`COLUMNS`."""
    from phenoseq.errors import PhenoseqError
    from phenoseq.featurize import FeaturizeOptions, featurize_directory

    images = real / "cellprofiler_examples" / "ExampleHuman"
    cp_dir = real / "cytotable" / "ExampleHuman_cellprofiler_output"
    tables = {name: pd.read_csv(cp_dir / f"{name}.csv") for name in ("Nuclei", "Cells")}
    theirs_xy = tables["Nuclei"][["Location_Center_X", "Location_Center_Y"]].to_numpy(float)
    frames: dict[str, pd.DataFrame] = {}
    result: dict = {"backends": {}, "skipped": {}, "cellprofiler_cells": len(theirs_xy)}
    i = j = np.zeros(0, int)
    for backend in BACKENDS:
        t0 = time.perf_counter()
        try:
            options = FeaturizeOptions(backend=backend)
            adata = featurize_directory(images, pattern=PATTERN, channels=CHANNELS, options=options)
        except PhenoseqError as exc:  # cp-measure not installed
            result["skipped"][backend] = str(exc).split(";")[0]
            continue
        seconds = time.perf_counter() - t0
        ours_xy = adata.obs[["Nuclei_Location_Center_X", "Nuclei_Location_Center_Y"]].to_numpy(float)
        i, j = match(ours_xy, theirs_xy)  # one segmentation for both backends, so one matching
        frames[backend] = adata.to_df()
        result["backends"][backend] = {
            "cells_found": adata.n_obs, "n_features": adata.n_vars, "matched": len(i), "seconds": seconds,
        }  # fmt: skip
    pheno, cpm = frames.get("phenoseq"), frames.get("cp-measure")
    rows = []
    for family, label, ours, theirs_col, cp_ref in comparisons():
        a = column(pheno, ours) if pheno is not None else None
        c = column(cpm, theirs_col) if cpm is not None else None
        table, col = cp_ref.split(".", 1) if cp_ref else ("", "")
        ref = tables[table][col].to_numpy(float)[j] if cp_ref and col in tables[table] else None
        rows.append(
            {
                "family": family,
                "feature": label,
                "phenoseq_vs_cp": agreement(a[i], ref) if a is not None and ref is not None else None,
                "cpmeasure_vs_cp": agreement(c[i], ref) if c is not None and ref is not None else None,
                "phenoseq_vs_cpmeasure": agreement(a, c) if a is not None and c is not None else None,
            }
        )
    result["rows"] = rows
    return result


COLUMNS = {  # key in rows → column title
    "phenoseq_vs_cp": "phenoseq vs CP",
    "cpmeasure_vs_cp": "cp-measure vs CP",
    "phenoseq_vs_cpmeasure": "phenoseq vs cpm",
}


def _cell(c: dict | None) -> str:
    return f" {'—':>7s} {'':>7s}" if c is None else f" {c['pearson']:7.3f} {c['scale']:7.3g}"


def _family_summary(rows: list[dict], family: str, key: str) -> str:
    vals = [r[key] for r in rows if r["family"] == family and r[key] and np.isfinite(r[key]["pearson"])]
    if not vals:
        return f" {'—':>7s} {'':>7s}"
    return _cell({"pearson": np.median([v["pearson"] for v in vals]), "scale": np.median([v["scale"] for v in vals])})


def main() -> None:
    real = Path(sys.argv[1]) if len(sys.argv) > 1 else REAL
    if not real.is_dir():
        sys.exit(f"real data not found at {real}")
    r = run(real)
    theirs = r["cellprofiler_cells"]
    for backend, b in r["backends"].items():
        print(
            f"{backend:10s}: {b['cells_found']} cells ({theirs} in CellProfiler), {b['matched']} matched "
            f"≤{MAX_DISTANCE:g} px ({b['matched'] / theirs:.3f} of CellProfiler's), {b['n_features']} features, "
            f"{b['seconds']:.1f} s"
        )
    for backend, why in r["skipped"].items():
        print(f"{backend:10s}: skipped — {why}")
    print(
        "\nr = Pearson, scale = median ours/reference. 'vs CP': CellProfiler's own ExampleHuman output on matched\n"
        "nuclei (segmentation and definitions together; that pipeline measured no texture or radial distribution).\n"
        "'phenoseq vs cpm': both backends on the same objects, so definitions alone (cpm = CellProfiler's code)."
    )
    print(f"\n{'':48s}" + "".join(f" {t:>15s}" for t in COLUMNS.values()))
    print(f"{'family':9s} {'feature':38s}" + f" {'r':>7s} {'scale':>7s}" * len(COLUMNS))
    for row in r["rows"]:
        print(f"{row['family']:9s} {row['feature']:38s}" + "".join(_cell(row[k]) for k in COLUMNS))
    print("\nmedian over each family's features:")
    for family in dict.fromkeys(row["family"] for row in r["rows"]):
        print(f"{family:48s}" + "".join(_family_summary(r["rows"], family, k) for k in COLUMNS))


if __name__ == "__main__":
    main()
