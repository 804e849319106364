"""Calibration of the default simulated screen against the scGeneScope benchmark.

Single-profile treatment identification with the benchmark's own standardised logistic regression, trained
on replicate 3 and tested on replicate 4 (WE): imaging alone should reach roughly 0.2–0.35 balanced accuracy
and real RNA roughly 0.4–0.55 (scGeneScope: imaging 0.27, imaging + real RNA 0.43). Also prints the time the
default screen takes to simulate (target < 30 s). Shown with every cell of a well, and with the 100 cells per
well that ``phenoseq evaluate`` uses by default.

    python benchmarks/bench_calibration.py [--seed 0]
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from phenoseq.evaluate.identification import fit_classifier, predict_wells
    from phenoseq.evaluate.profiles import CellTable, single_profiles
    from phenoseq.io import PairedScreen
    from phenoseq.rna import RNASpace
    from phenoseq.simulate import SimulationConfig, simulate_screen

    start = time.perf_counter()
    imaging, rnaseq = simulate_screen(SimulationConfig(seed=args.seed))
    seconds = time.perf_counter() - start
    screen = PairedScreen(imaging, rnaseq)
    print(f"simulated {imaging.n_obs} imaging cells × {imaging.n_vars} features and {rnaseq.n_obs} RNA cells × "
          f"{rnaseq.n_vars} genes in {seconds:.1f} s")

    k = screen.keys
    treatments = sorted(screen.wells[k.treatment].unique())
    treatment_of = {w: treatments.index(t) for w, t in screen.wells[k.treatment].items()}
    train, test = screen.wells_in("train"), screen.wells_in("test")
    space = RNASpace.fit(screen.subset("rnaseq", train), n_latent=50, seed=args.seed)

    def table(modality: str, wells: list[str]) -> CellTable:
        adata = screen.subset(modality, wells)
        X = adata.X if modality == "imaging" else space.transform(adata)
        return CellTable(np.asarray(X), adata.obs[k.sample].astype(str).to_numpy())

    print(f"{'modality':<10} {'all cells':>10} {'100/well':>10}   (balanced accuracy, 28 treatments, chance 0.036)")
    for modality, label in (("imaging", "imaging"), ("rnaseq", "real RNA")):
        tr, te = table(modality, train), table(modality, test)
        scores = []
        for cap in (None, 100):
            a = tr if cap is None else single_profiles(tr, cap, args.seed, "train")
            b = te if cap is None else single_profiles(te, cap, args.seed, "test")
            clf = fit_classifier(a, treatment_of, seed=args.seed)
            scores.append(float(predict_wells(clf, b, treatment_of, len(treatments)).balanced_accuracy()))
        print(f"{label:<10} {scores[0]:>10.3f} {scores[1]:>10.3f}")


if __name__ == "__main__":
    main()
