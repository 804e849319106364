"""Why an identification gap is never reported alone: classifier-free guidance on the default simulated screen.

Trains the ``cpu`` preset once, then evaluates it at several guidance scales (each scale a method, so each
generates for the wells and for the matched-context sets) and prints the identification tables and the
well-level figures (energy ratio included) of the WE test split. Guidance pushes each well towards its
treatment's prototype: the paper-style gap rises while the synthetic cells move away from real ones.

    python benchmarks/bench_guidance.py [--scales 1 1.5 2] [--seed 0]
"""

from __future__ import annotations

import argparse


class Guided:
    """The model as a method at one guidance scale."""

    def __init__(self, model, guidance: float) -> None:
        self.model, self.guidance = model, guidance
        self.name, self.rna_space = f"guidance_{guidance:g}", model.rna_space

    def generate(self, imaging, cells_per_well, seed=0, progress=None):
        return self.model.generate(imaging, cells_per_well=cells_per_well, seed=seed, guidance=self.guidance,
                                   progress=progress)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", type=float, nargs="+", default=[1.0, 1.5, 2.0])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from rich.console import Console

    from phenoseq import PhenoSeq
    from phenoseq.evaluate import BenchmarkConfig, evaluate
    from phenoseq.io import PairedScreen
    from phenoseq.report.tables import identification_table, well_table
    from phenoseq.simulate import SimulationConfig, simulate_screen

    screen = PairedScreen(*simulate_screen(SimulationConfig(seed=args.seed)))
    model = PhenoSeq(screen, preset="cpu", seed=args.seed)
    model.train()
    methods = {g.name: g for g in (Guided(model, s) for s in args.scales)}
    metrics = evaluate(screen, model.rna_space, methods, config=BenchmarkConfig(seed=args.seed, test_splits=("test",))).metrics
    console = Console(width=160)
    console.print(identification_table(metrics, "test"))
    console.print(well_table(metrics, "test"))


if __name__ == "__main__":
    main()
