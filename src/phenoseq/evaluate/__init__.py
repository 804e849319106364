"""Benchmarks of generated cells, one workflow for every mode: :func:`evaluate` (held-out wells of seen
treatments) and :func:`evaluate_unseen` (compound-level cross-validation).

``workflow`` orchestrates; ``wells`` scores well-level profiles (every mode); ``benchmark`` runs treatment
identification with the matched-morphology control and matched-context sets (single-cell mode);
``contexts`` draws those sets; ``scaled`` places figures between the training mean and a real replicate;
``unseen`` holds out compounds; ``metrics`` reads and writes ``metrics.json``.
"""

from phenoseq.evaluate.benchmark import BenchmarkConfig
from phenoseq.evaluate.metrics import identification_rows, read_results, well_rows, write_results
from phenoseq.evaluate.unseen import compound_folds, evaluate_unseen
from phenoseq.evaluate.workflow import BenchmarkResult, evaluate

__all__ = [
    "BenchmarkConfig",
    "BenchmarkResult",
    "compound_folds",
    "evaluate",
    "evaluate_unseen",
    "identification_rows",
    "read_results",
    "well_rows",
    "write_results",
]
