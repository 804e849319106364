"""Where the unseen-compound energy ratio is lost: ridge beside two oracles that each fix one half of it.

The energy ratio of a well's synthetic cells mixes two errors: the well mean and the shape of the cells around
it. Two oracles, which read real RNA of the held-out compound and are not methods, separate them (unseen
protocol of :func:`phenoseq.evaluate.evaluate_unseen`, default screen, baselines only, so ~2–3 min a seed):

* **ridge + true shape**: ridge's well mean, with the deviations of the real cells of another replicate well of
  the same compound (not the scored well, nor the replicate that sets its floor) around their own mean;
* **true mean + ridge's shape**: that other replicate's real mean, with ridge's resampled training residuals.

If the first oracle barely beats ridge and the second nearly reaches a replicate, a generator can only win
the energy ratio by predicting a better well mean.

    python benchmarks/bench_energy_oracles.py [--seeds 0 1 2] [--folds 3]
"""

from __future__ import annotations

import argparse

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--folds", type=int, default=3)
    args = parser.parse_args()

    from rich.console import Console
    from rich.table import Table

    from phenoseq.evaluate import BenchmarkConfig, evaluate_unseen
    from phenoseq.generate.baselines import RidgeBaseline, TrainingMeanBaseline
    from phenoseq.generate.output import synthetic_adata, well_metadata
    from phenoseq.generate.seeds import well_rng, well_seed
    from phenoseq.io import PairedScreen
    from phenoseq.rna.space import RNASpace
    from phenoseq.simulate import SimulationConfig, simulate_screen

    class Oracle:
        """Ridge with its mean (``true_mean``) or its shape replaced by those of another real replicate well of the
        compound (latents of every well of the screen: ``cells``)."""

        def __init__(self, name: str, true_mean: bool, held: PairedScreen, space: RNASpace, ridge: RidgeBaseline,
                     cells: dict[str, np.ndarray], same: dict[str, list[str]]) -> None:
            self.name, self.true_mean, self.rna_space = name, true_mean, space
            self._held, self._ridge, self._cells, self._same = held, ridge, cells, same
            self._residuals = np.concatenate([cells[w] - cells[w].mean(axis=0) for w in held.wells_in("train")])

        def _other(self, well: str) -> np.ndarray:
            # Two places on in sorted order: the scored well's floor is the next one (evaluate.wells.replicate_wells).
            same = self._same[well]
            if len(same) < 3:
                raise ValueError(f"{well}: the oracles need 3 wells of its compound, it has {len(same)}")
            return self._cells[same[(same.index(well) + 2) % len(same)]]

        def generate(self, imaging, cells_per_well: int, seed: int = 0, progress=None):
            names, centres = self._ridge.centres(imaging)
            latent = []
            for name, centre in zip(names, centres):
                rng = well_rng(seed, name)
                other = self._other(name)
                pool = self._residuals if self.true_mean else other - other.mean(axis=0)
                draw = pool[rng.choice(len(pool), size=cells_per_well, replace=cells_per_well > len(pool))]
                latent.append((other.mean(axis=0) if self.true_mean else centre) + draw - draw.mean(axis=0))
            samples = [n for n in names for _ in range(cells_per_well)]
            return synthetic_adata(np.concatenate(latent), samples, well_metadata(imaging, self._held.keys),
                                   self._held.keys, seeds=np.array([well_seed(seed, s) for s in samples]),
                                   settings={"model": self.name}, decode=self.rna_space.decode,
                                   genes=self.rna_space.genes)

    console = Console(width=160)
    rows: dict[str, list[tuple[float, float, float]]] = {}
    for seed in args.seeds:
        screen = PairedScreen(*simulate_screen(SimulationConfig(seed=seed)))

        k = screen.keys
        treatment = screen.wells[k.treatment].astype(str)
        same = {w: sorted(treatment.index[treatment == t]) for w, t in treatment.items()}
        samples = screen.rnaseq.obs[k.sample].astype(str).to_numpy()

        def fit(held: PairedScreen, seed: int = seed, screen: PairedScreen = screen, same: dict = same,
                samples: np.ndarray = samples) -> dict:
            space = RNASpace.fit(held.subset("rnaseq", held.wells_in("train")), n_latent=50, seed=seed)
            latent = space.transform(screen.rnaseq).astype(np.float64)
            cells = {w: latent[samples == w] for w in same}
            ridge = RidgeBaseline(held, space)
            return {"ridge": ridge, "training_mean": TrainingMeanBaseline(held, space),
                    **{name: Oracle(name, true_mean, held, space, ridge, cells, same)
                       for name, true_mean in (("ridge + true shape", False), ("true mean + ridge's shape", True))}}

        wells = evaluate_unseen(screen, fit, args.folds, BenchmarkConfig(seed=seed)).metrics["wells"]
        for method, split in wells.items():
            u = split["unseen"]
            rows.setdefault(method, []).append((u["pearson_genes"]["median"], u["energy_ratio"]["median"],
                                                u["energy_ratio_centred"]["median"]))
        console.print(f"seed {seed}: " + ", ".join(f"{m} {v[-1][1]:.2f}" for m, v in rows.items()))
    table = Table(title=f"unseen compounds, seeds {args.seeds}: mean ± sd over seeds")
    for col in ("method", "r (genes)", "energy ratio", "energy (centred)"):
        table.add_column(col, justify="left" if col == "method" else "right")
    for method, values in rows.items():
        v = np.array(values)
        table.add_row(method, *(f"{m:.2f} ± {s:.2f}" for m, s in zip(v.mean(axis=0), v.std(axis=0))))
    console.print(table)


if __name__ == "__main__":
    main()
