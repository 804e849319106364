"""Full benchmark on the default simulated screen: the diffusion model and both baselines.

Trains ``PhenoSeq(screen, preset="cpu")``, generates for every well from imaging, runs the ridge and
nearest-well baselines, evaluates everything (both test splits, single- and multi-cell profiles) and prints
the headline tables and the time of each stage. Outputs (model, cells, metrics, report) go to ``--out``.

    python benchmarks/bench_benchmark.py [--out DIR] [--seed 0] [--baselines-only]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: a temporary folder)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--baselines-only", action="store_true", help="skip the diffusion model")
    args = parser.parse_args()

    from phenoseq.cli.commands_evaluate import print_headline
    from phenoseq.cli.console import console
    from phenoseq.evaluate.demo import run_demo
    from phenoseq.progress import RichProgress

    out = args.out or Path(tempfile.mkdtemp(prefix="phenoseq-bench-"))
    start = time.perf_counter()
    result = run_demo(out, seed=args.seed, progress=RichProgress(), with_model=not args.baselines_only)
    total = time.perf_counter() - start
    metrics = result.result.metrics
    for split in metrics["splits"]:
        for profile in metrics["profiles"]:
            print_headline(metrics, split, profile)
    console.print("seconds per stage: " + ", ".join(f"{k} {v:.1f}" for k, v in result.timings.items())
                  + f"; total {total:.1f}")
    console.print(f"report: {result.report_path}")


if __name__ == "__main__":
    main()
