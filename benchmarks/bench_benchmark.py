"""The honest benchmark on simulated screens, seen treatments: the diffusion model beside every baseline.

For each seed: simulate the default screen, train ``PhenoSeq(screen, preset="cpu")``, fit every baseline
(training mean, control, ridge, nearest well, shuffled imaging), and score all of them with
:func:`phenoseq.evaluate.evaluate` on the WE (``test``) and HE (``test_he``) splits: treatment identification
at matched context (headline), against the matched-morphology control and paper-style, plus the well-level
figures and scaled scores. Prints every table per seed, then mean ± sd over seeds of the key figures.

    python benchmarks/bench_benchmark.py [--seeds 0 1 2] [--baselines-only] [--no-anchor] [--out DIR]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="simulator, model and evaluation seeds")
    parser.add_argument("--baselines-only", action="store_true", help="skip the diffusion model")
    parser.add_argument("--no-anchor", action="store_true", help="the diffusion model without the well-mean anchor")
    parser.add_argument("--out", type=Path, default=None, help="write metrics.json per seed into DIR/seed<N>")
    args = parser.parse_args()

    from rich.console import Console

    from phenoseq.evaluate import BenchmarkConfig, evaluate, write_results
    from phenoseq.generate.baselines import standard_baselines
    from phenoseq.io import PairedScreen
    from phenoseq.progress import RichProgress
    from phenoseq.report.tables import print_results, seeds_table
    from phenoseq.rna.space import RNASpace
    from phenoseq.simulate import SimulationConfig, simulate_screen

    console = Console(width=160)
    progress = RichProgress()
    per_seed = []
    for seed in args.seeds:
        times = {}
        t = time.perf_counter()
        screen = PairedScreen(*simulate_screen(SimulationConfig(seed=seed)))
        model = None
        if args.baselines_only:
            space = RNASpace.fit(screen.subset("rnaseq", screen.wells_in("train")), n_latent=50, seed=seed)
        else:
            from phenoseq import PhenoSeq

            model = PhenoSeq(screen, preset="cpu", seed=seed, anchor=not args.no_anchor)
            model.train(progress=progress)
            space = model.rna_space
        times["simulate+train"] = time.perf_counter() - t
        t = time.perf_counter()
        result = evaluate(screen, space, standard_baselines(screen, space, model), config=BenchmarkConfig(seed=seed),
                          moa_key="MoA", progress=progress)
        times["generate+evaluate"] = time.perf_counter() - t
        console.rule(f"seed {seed}")
        print_results(result.metrics, console)
        console.print("seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in times.items()))
        if args.out is not None:
            console.print(f"wrote {write_results(result, args.out / f'seed{seed}')}")
        per_seed.append(result.metrics)
    for split in per_seed[0]["splits"]:
        console.print(seeds_table(per_seed, split))


if __name__ == "__main__":
    main()
