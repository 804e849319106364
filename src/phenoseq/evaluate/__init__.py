"""Benchmarks of generated cells: treatment identification with bootstrap CIs, fidelity, the demo.

``benchmark`` orchestrates; ``profiles`` builds single- and multi-cell profiles, ``identification`` fits the
treatment classifiers, ``bootstrap`` resamples test wells, ``fidelity`` compares synthetic with real cells,
``metrics`` reads and writes ``metrics.json``.
"""

from phenoseq.evaluate.benchmark import BenchmarkConfig, BenchmarkResult, evaluate_generators, evaluate_synthetic
from phenoseq.evaluate.metrics import headline_rows, read_results, write_results

__all__ = [
    "BenchmarkConfig",
    "BenchmarkResult",
    "evaluate_generators",
    "evaluate_synthetic",
    "headline_rows",
    "read_results",
    "write_results",
]
