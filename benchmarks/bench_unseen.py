"""The unseen-compound protocol on simulated screens: compound-level K-fold, the diffusion model beside every baseline.

For each seed (simulator, fold assignment and model): the 27 non-control compounds of the default screen are
split into ``--folds`` folds; for each fold every well of its compounds (all replicates, both modalities) leaves
training (the other compounds' test wells join it, as in :func:`phenoseq.evaluate.evaluate_unseen`; with
``--train-split-only`` they do not), ``PhenoSeq(preset="cpu")`` and every baseline (training mean, control, ridge, nearest well, shuffled
imaging) are fitted on what remains (DMSO always stays), and they generate for the held-out wells from their
imaging alone (:func:`phenoseq.evaluate.evaluate_unseen`). Prints each seed's table, then mean ± sd over seeds.

    python benchmarks/bench_unseen.py [--seeds 0 1 2] [--folds 3] [--baselines-only] [--train-split-only] [--no-anchor] [--max-epochs N] [--out DIR]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--folds", type=int, default=3, help="compound folds (3: 9 held-out compounds per fold)")
    parser.add_argument("--baselines-only", action="store_true", help="skip the diffusion model")
    parser.add_argument("--train-split-only", action="store_true",
                        help="fit on the training split alone (the protocol before the test wells joined training)")
    parser.add_argument("--no-anchor", action="store_true", help="the diffusion model without the well-mean anchor")
    parser.add_argument("--max-epochs", type=int, default=None, help="cap the model's epochs (default: the preset's)")
    parser.add_argument("--out", type=Path, default=None, help="write metrics.json per seed into DIR/seed<N>")
    args = parser.parse_args()

    from rich.console import Console

    from phenoseq.evaluate import BenchmarkConfig, evaluate_unseen, write_results
    from phenoseq.generate.baselines import standard_baselines
    from phenoseq.io import PairedScreen
    from phenoseq.progress import RichProgress
    from phenoseq.report.tables import seeds_table, well_table
    from phenoseq.rna.space import RNASpace
    from phenoseq.simulate import SimulationConfig, simulate_screen

    console = Console(width=160)
    progress = RichProgress()
    per_seed = []
    for seed in args.seeds:
        screen = PairedScreen(*simulate_screen(SimulationConfig(seed=seed)))

        def fit(held: PairedScreen, seed: int = seed) -> dict:
            if args.baselines_only:
                space = RNASpace.fit(held.subset("rnaseq", held.wells_in("train")), n_latent=50, seed=seed)
                return standard_baselines(held, space)
            from phenoseq import PhenoSeq

            model = PhenoSeq(held, preset="cpu", seed=seed, anchor=not args.no_anchor)
            model.train(progress=progress, max_epochs=args.max_epochs)
            return standard_baselines(held, model.rna_space, model)

        t = time.perf_counter()
        result = evaluate_unseen(screen, fit, args.folds, BenchmarkConfig(seed=seed), moa_key="MoA", progress=progress,
                                 train_on_tests=not args.train_split_only)
        console.rule(f"seed {seed}: folds {result.metrics['unseen']['folds']}")
        console.print(well_table(result.metrics, "unseen"))
        console.print(f"seconds: {time.perf_counter() - t:.0f}")
        if args.out is not None:
            console.print(f"wrote {write_results(result, args.out / f'seed{seed}')}")
        per_seed.append(result.metrics)
    console.print(seeds_table(per_seed, "unseen"))


if __name__ == "__main__":
    main()
