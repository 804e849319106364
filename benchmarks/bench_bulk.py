"""Bulk (well-level) mode on simulated screens: the diffusion model beside every baseline, seen and unseen compounds.

RNA is aggregated to one log-normalised mean profile per well (pseudo-bulk, like L1000 or the well means of a
single-cell screen); imaging is one mean profile per well (``--imaging wells``, default) or the single cells
(``--imaging cells``). The ``cpu`` preset is trained in bulk mode and every method is scored by
:func:`phenoseq.evaluate.evaluate` on the held-out WE and HE wells (seen compounds), and with ``--unseen-folds K``
also by the compound-level K-fold protocol. Prints a table per split and seed, then mean ± sd over seeds.

Why ``--batch-size 56``: with one RNA profile per well the preset's batch of 512 would only repeat each of the
28 training profiles ~18 times per step; 2 per well is enough.

    python benchmarks/bench_bulk.py [--seeds 0] [--imaging wells|cells] [--n-latent 16] [--max-epochs 200]
                                    [--batch-size 56] [--cells-per-well 20] [--unseen-folds 0]
"""

from __future__ import annotations

import argparse
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--imaging", choices=("wells", "cells"), default="wells",
                        help="condition on single imaging cells or on one mean imaging profile per well")
    parser.add_argument("--n-latent", type=int, default=16, help="RNA latent size (< 28 training wells)")
    parser.add_argument("--max-epochs", type=int, default=200, help="the cpu preset's 200 by default")
    parser.add_argument("--batch-size", type=int, default=56, help="RNA rows per step (2 per training well)")
    parser.add_argument("--cells-per-well", type=int, default=20, help="synthetic profiles averaged per well")
    parser.add_argument("--unseen-folds", type=int, default=0, help="also run the unseen-compound protocol")
    args = parser.parse_args()

    from rich.console import Console

    from phenoseq import PhenoSeq
    from phenoseq.evaluate import BenchmarkConfig, evaluate, evaluate_unseen
    from phenoseq.generate.baselines import standard_baselines
    from phenoseq.io import PairedScreen
    from phenoseq.io.readers import aggregate_wells
    from phenoseq.report.tables import seeds_table, well_table
    from phenoseq.rna import log_normalise
    from phenoseq.simulate import SimulationConfig, simulate_screen

    console = Console(width=160)
    runs: dict[str, list[dict]] = {}
    for seed in args.seeds:
        imaging, rnaseq = simulate_screen(SimulationConfig(seed=seed))
        rnaseq.X = log_normalise(rnaseq.X)  # normalise each cell before averaging: a pseudo-bulk
        expression = aggregate_wells(rnaseq)
        if args.imaging == "wells":
            imaging = aggregate_wells(imaging)
        screen = PairedScreen(imaging, expression, rna_kind="expression")
        config = BenchmarkConfig(seed=seed, cells_per_well=args.cells_per_well)

        def fit(held: PairedScreen, seed: int = seed) -> dict:
            model = PhenoSeq(held, preset="cpu", rna_kind="expression", n_latent=args.n_latent, seed=seed,
                             batch_size=args.batch_size)
            model.train(max_epochs=args.max_epochs)
            return standard_baselines(held, model.rna_space, model)

        t = time.perf_counter()
        generators = fit(screen)
        seen = evaluate(screen, generators["phenoseq"].rna_space, generators, config=config)
        console.rule(f"seed {seed}: seen compounds ({time.perf_counter() - t:.0f} s)")
        for split in seen.metrics["splits"]:
            console.print(well_table(seen.metrics, split))
            runs.setdefault(split, []).append(seen.metrics)
        if args.unseen_folds:
            t = time.perf_counter()
            unseen = evaluate_unseen(screen, fit, args.unseen_folds, config)
            console.rule(f"seed {seed}: unseen compounds, {args.unseen_folds} folds ({time.perf_counter() - t:.0f} s)")
            console.print(well_table(unseen.metrics, "unseen"))
            runs.setdefault("unseen", []).append(unseen.metrics)
    for split, per_seed in runs.items():
        console.print(seeds_table(per_seed, split))


if __name__ == "__main__":
    main()
