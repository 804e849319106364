"""``phenoseq demo``: simulate a screen, train the diffusion model, generate, run baselines, evaluate, report."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from phenoseq import progress as _progress
from phenoseq.evaluate.benchmark import BenchmarkConfig, BenchmarkResult, evaluate_synthetic
from phenoseq.evaluate.metrics import write_results
from phenoseq.io.files import write_h5ad

if TYPE_CHECKING:
    from phenoseq.simulate import SimulationConfig

DEMO_CELLS_PER_WELL = 100


@dataclass
class DemoResult:
    """Where the demo wrote its outputs, the benchmark result, and seconds spent per stage."""

    out_dir: Path
    metrics_path: Path
    report_path: Path
    result: BenchmarkResult
    timings: dict[str, float] = field(default_factory=dict)


def run_demo(out_dir: str | Path, seed: int = 0, progress: _progress.Progress | None = None,
             with_model: bool = True, cells_per_well: int = DEMO_CELLS_PER_WELL,
             simulation: "SimulationConfig | None" = None) -> DemoResult:
    """Run the whole pipeline on the default simulated screen and write it all into ``out_dir``.

    Writes ``metrics.json``, ``arrays.npz`` and ``report.html``; with the diffusion model
    (``with_model=True``) also ``model/`` (the trained model) and ``synthetic.h5ad`` (its cells for every
    well). ``with_model=False`` compares the baselines alone, in an RNA space fitted on training cells.
``simulation`` replaces the default screen (its seed is then the config's own).
    """
    from phenoseq.generate.baselines import NearestWellBaseline, RidgeBaseline
    from phenoseq.io.screen import PairedScreen
    from phenoseq.report.html import render_report
    from phenoseq.simulate import SimulationConfig, simulate_screen

    out_dir = Path(out_dir)
    bar = _progress.get(progress)
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[stage] = round(now - clock, 2)
        clock = now

    with bar.task("simulating the default screen", total=None):
        imaging, rnaseq = simulate_screen(simulation or SimulationConfig(seed=seed))
        screen = PairedScreen(imaging, rnaseq)
    lap("simulate")
    # Every method generates from the imaging of the wells alone: the screen's RNA stays out of generation.
    imaging_only = screen.imaging.copy()
    synthetic = {}
    if with_model:
        from phenoseq.model.phenoseq import PhenoSeq

        model = PhenoSeq(screen, preset="cpu", seed=seed)
        model.train(progress=progress)
        model.save(out_dir / "model")
        lap("train")
        synthetic["phenoseq"] = model.generate(imaging_only, cells_per_well=cells_per_well, seed=seed, progress=progress)
        write_h5ad(synthetic["phenoseq"], out_dir / "synthetic.h5ad")
        lap("generate")
        rna_space = model.rna_space
    else:
        from phenoseq.rna.space import RNASpace

        rna_space = RNASpace.fit(screen.subset("rnaseq", screen.wells_in("train")), n_latent=50, seed=seed)
    for baseline in (RidgeBaseline(screen, rna_space), NearestWellBaseline(screen, rna_space)):
        synthetic[baseline.name] = baseline.generate(imaging_only, cells_per_well=cells_per_well, seed=seed,
                                                     progress=progress)
    lap("baselines")
    result = evaluate_synthetic(screen, synthetic, rna_space, BenchmarkConfig(seed=seed), progress)
    metrics_path = write_results(result, out_dir)
    lap("evaluate")
    report_path = render_report(result, out_dir)
    lap("report")
    return DemoResult(out_dir, metrics_path, report_path, result, timings)
