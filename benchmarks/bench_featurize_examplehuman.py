"""Compare ``phenoseq featurize`` with CellProfiler on its ExampleHuman field (512×512, 3 channels).

CellProfiler 4.0.6 (pipeline in the output's Experiment.csv: Minimum Cross-Entropy nuclei threshold,
intensity declumping, Propagation cells on ``cellbody``) found 289 nuclei/cells. We run the default
featurizer, match our nuclei to CellProfiler's by centroid (nearest neighbour within ``MAX_DISTANCE`` px,
each CellProfiler nucleus used once), and report correlations of matched per-nucleus features.
CellProfiler divides uint8 intensities by 255, as phenoseq does, so intensities compare directly.

Run from the repository root::

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
# (our feature, CellProfiler table, its column)
COMPARED = [
    ("Nuclei_AreaShape_Area", "Nuclei", "AreaShape_Area"),
    ("Nuclei_Intensity_MeanIntensity_DNA", "Nuclei", "Intensity_MeanIntensity_DNA"),
    ("Nuclei_Intensity_IntegratedIntensity_DNA", "Nuclei", "Intensity_IntegratedIntensity_DNA"),
    ("Nuclei_AreaShape_Eccentricity", "Nuclei", "AreaShape_Eccentricity"),
    ("Nuclei_Intensity_MeanIntensity_PH3", "Nuclei", "Intensity_MeanIntensity_PH3"),
    ("Cells_AreaShape_Area", "Cells", "AreaShape_Area"),
]


def match(ours_xy: np.ndarray, theirs_xy: np.ndarray, max_distance: float = MAX_DISTANCE) -> tuple:
    """Indices (ours, theirs) of mutual nearest neighbours closer than ``max_distance`` pixels."""
    d, j = cKDTree(theirs_xy).query(ours_xy)
    _, back = cKDTree(ours_xy).query(theirs_xy)
    i = np.arange(len(ours_xy))
    keep = (d <= max_distance) & (back[j] == i)
    return i[keep], j[keep]


def run(real: Path = REAL) -> dict:
    """Featurize ExampleHuman and compare with CellProfiler; returns the figures printed by ``main``."""
    from phenoseq.featurize import featurize_directory

    images = real / "cellprofiler_examples" / "ExampleHuman"
    cp_dir = real / "cytotable" / "ExampleHuman_cellprofiler_output"
    t0 = time.perf_counter()
    adata = featurize_directory(images, pattern=PATTERN, channels=CHANNELS)
    seconds = time.perf_counter() - t0
    tables = {name: pd.read_csv(cp_dir / f"{name}.csv") for name in ("Nuclei", "Cells")}
    ours_xy = adata.obs[["Nuclei_Location_Center_X", "Nuclei_Location_Center_Y"]].to_numpy(float)
    theirs_xy = tables["Nuclei"][["Location_Center_X", "Location_Center_Y"]].to_numpy(float)
    i, j = match(ours_xy, theirs_xy)
    result = {
        "cells_found": adata.n_obs,
        "cellprofiler_cells": len(theirs_xy),
        "matched": len(i),
        "matched_fraction_of_cellprofiler": len(i) / len(theirs_xy),
        "matched_fraction_of_ours": len(i) / adata.n_obs,
        "seconds": seconds,
        "correlations": {},
    }
    df = adata.to_df()
    for ours, table, col in COMPARED:
        # CellProfiler's Cells and Nuclei tables share ObjectNumber, so row j of both is one cell.
        a, b = df[ours].to_numpy()[i], tables[table][col].to_numpy()[j]
        result["correlations"][ours] = {
            "pearson": float(stats.pearsonr(a, b)[0]),
            "spearman": float(stats.spearmanr(a, b)[0]),
            "median_ratio": float(np.median(a / b)),
        }
    return result


def main() -> None:
    real = Path(sys.argv[1]) if len(sys.argv) > 1 else REAL
    if not real.is_dir():
        sys.exit(f"real data not found at {real}")
    r = run(real)
    found, theirs = r["cells_found"], r["cellprofiler_cells"]
    print(f"cells found:            {found}")
    print(f"CellProfiler cells:     {theirs}  (ours/theirs = {found / theirs:.3f})")
    print(
        f"matched (≤{MAX_DISTANCE:g} px):       {r['matched']}  = {r['matched_fraction_of_cellprofiler']:.3f} of "
        f"CellProfiler's, {r['matched_fraction_of_ours']:.3f} of ours"
    )
    print(f"{'feature':45s} {'pearson':>8s} {'spearman':>9s} {'median ours/CP':>15s}")
    for name, c in r["correlations"].items():
        print(f"{name:45s} {c['pearson']:8.3f} {c['spearman']:9.3f} {c['median_ratio']:15.3f}")
    print(f"seconds (featurize, 1 field, 3 channels): {r['seconds']:.2f}")


if __name__ == "__main__":
    main()
