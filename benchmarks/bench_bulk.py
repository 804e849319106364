"""Bulk (well-level) mode on the default simulated screen: the diffusion model against ridge.

RNA is aggregated to one log-normalised mean profile per well (pseudo-bulk, like L1000 or well means of a
single-cell screen); imaging is either one mean profile per well (``--imaging wells``, default) or the single
cells (``--imaging cells``). The ``cpu`` preset is trained in bulk mode on the 28 training wells, generates for
the held-out wells (WE ``test``, HE ``test_he``) from their imaging only, and both it and the ridge baseline are
scored by :func:`phenoseq.evaluate.bulk.evaluate_bulk`: per-sample Pearson of centred profiles and the rank of
the true sample among the split's real profiles. Prints a table per split and the time of each stage.

Why ``--batch-size 56``: with one RNA profile per well the preset's batch of 512 would only repeat each of the
28 training profiles ~18 times per step; 2 per well is enough. ``--time-limit`` (seconds, best weights kept)
bounds the run on a busy machine at the price of determinism; by default only ``--max-epochs`` bounds it.

    python benchmarks/bench_bulk.py [--imaging wells|cells] [--n-latent 16] [--max-epochs 200] [--batch-size 56]
                                    [--time-limit 0] [--cells-per-well 20] [--seed 0] [--out DIR]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--imaging", choices=("wells", "cells"), default="wells",
                        help="condition on single imaging cells or on one mean imaging profile per well")
    parser.add_argument("--n-latent", type=int, default=16, help="RNA latent size (< 28 training wells)")
    parser.add_argument("--max-epochs", type=int, default=200, help="the cpu preset's 200 by default")
    parser.add_argument("--batch-size", type=int, default=56, help="RNA rows per step (2 per training well)")
    parser.add_argument("--time-limit", type=float, default=0.0, help="training seconds; 0 = no limit")
    parser.add_argument("--cells-per-well", type=int, default=20, help="synthetic profiles averaged per well")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="also write metrics.json into this folder")
    args = parser.parse_args()

    from phenoseq import PhenoSeq
    from phenoseq.cli.commands_evaluate import print_bulk_headline
    from phenoseq.cli.console import console
    from phenoseq.evaluate.bulk import evaluate_bulk, write_bulk_metrics
    from phenoseq.generate.baselines import RidgeBaseline
    from phenoseq.io import PairedScreen
    from phenoseq.io.readers import aggregate_wells
    from phenoseq.rna import log_normalise
    from phenoseq.simulate import SimulationConfig, simulate_screen

    times: dict[str, float] = {}
    t = time.perf_counter()
    imaging, rnaseq = simulate_screen(SimulationConfig(seed=args.seed))
    # Normalise each cell before averaging, as a pseudo-bulk of log-normalised single cells.
    rnaseq.X = log_normalise(rnaseq.X)
    expression = aggregate_wells(rnaseq)
    if args.imaging == "wells":
        imaging = aggregate_wells(imaging)
    screen = PairedScreen(imaging, expression, rna_kind="expression")
    times["simulate"] = time.perf_counter() - t

    t = time.perf_counter()
    overrides = {"batch_size": args.batch_size, "time_limit": args.time_limit or None}
    model = PhenoSeq(screen, preset="cpu", rna_input="expression", n_latent=args.n_latent, seed=args.seed,
                     **overrides)
    model.train(max_epochs=args.max_epochs)
    times["train"] = time.perf_counter() - t

    held_out = screen.wells_in("test") + screen.wells_in("test_he")
    # The generators see the held-out wells' imaging only.
    imaging_held_out = screen.subset("imaging", held_out).copy()
    t = time.perf_counter()
    synthetic = {"phenoseq-diffusion": model.generate(imaging_held_out, cells_per_well=args.cells_per_well,
                                                      seed=args.seed)}
    times["generate"] = time.perf_counter() - t
    t = time.perf_counter()
    ridge = RidgeBaseline(screen, model.rna_space)
    synthetic["ridge"] = ridge.generate(imaging_held_out, args.cells_per_well, seed=args.seed)
    metrics = evaluate_bulk(screen, synthetic, model.rna_space)
    times["ridge+evaluate"] = time.perf_counter() - t

    s = model.trainer.state
    console.print(f"{len(screen.wells_in('train'))} training wells, imaging = {args.imaging} "
                  f"({screen.imaging.n_obs} rows), {metrics['genes']} genes, RNA latent {model.rna_space.n_latent}; "
                  f"trained {s.epoch} epochs (best val loss {s.best_val:.4f} at epoch {s.best_epoch}); "
                  f"ridge alpha {ridge.alpha:g}")
    print_bulk_headline(metrics)
    console.print("seconds per stage: " + ", ".join(f"{k} {v:.1f}" for k, v in times.items()))
    if args.out is not None:
        console.print(f"wrote {write_bulk_metrics(metrics, args.out)}")


if __name__ == "__main__":
    main()
