"""``phenoseq demo``: simulate a screen, train the diffusion model, run every baseline, evaluate, report.

It sits above the pipeline's stages (it combines model, generate, evaluate and report), like the CLI.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from phenoseq import progress as _progress
from phenoseq.errors import PhenoseqError
from phenoseq.evaluate import BenchmarkConfig, BenchmarkResult, evaluate, write_results
from phenoseq.io.files import check_destination, write_h5ad

if TYPE_CHECKING:
    from phenoseq.simulate import SimulationConfig

DEMO_CELLS_PER_WELL = 100
OUTPUTS = ("model", "synthetic.h5ad", "synthetic.wells.h5ad", "metrics.json", "arrays.npz", "report.html")


@dataclass
class DemoResult:
    """Where the demo wrote its outputs, the evaluation result, and seconds spent per stage."""

    out_dir: Path
    metrics_path: Path
    report_path: Path
    result: BenchmarkResult
    timings: dict[str, float] = field(default_factory=dict)


def run_demo(out_dir: str | Path, seed: int = 0, progress: _progress.Progress | None = None,
             with_model: bool = True, cells_per_well: int = DEMO_CELLS_PER_WELL,
             simulation: "SimulationConfig | None" = None, overwrite: bool = False) -> DemoResult:
    """Run the whole pipeline on the default simulated screen and write it all into ``out_dir``.

    Writes ``metrics.json``, ``arrays.npz`` and ``report.html``; with the diffusion model (``with_model``) also
    ``model/`` (the trained model) and ``synthetic.h5ad`` (its cells for every well). ``with_model=False``
    compares the baselines alone, in an RNA space fitted on training cells. ``simulation`` replaces the
    default screen (its seed is then the config's own). Outputs of an earlier run in ``out_dir`` are
    replaced only with ``overwrite``.
    """
    from phenoseq.generate.baselines import standard_baselines
    from phenoseq.io.screen import PairedScreen
    from phenoseq.report.html import render_report
    from phenoseq.simulate import SimulationConfig, simulate_screen

    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise PhenoseqError(f"--out {out_dir} is a file; give a folder for the demo's outputs")
    check_destination(out_dir, overwrite=True, option="--out", folder=True)
    existing = [name for name in OUTPUTS if (out_dir / name).exists()]
    if existing and not overwrite:
        raise PhenoseqError(f"{out_dir} already holds {existing} from an earlier run; choose another --out or pass "
                            "--overwrite to replace them")
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[stage] = round(now - clock, 2)
        clock = now

    with _progress.get(progress).task("simulating the default screen", total=None):
        imaging, rnaseq = simulate_screen(simulation or SimulationConfig(seed=seed))
        screen = PairedScreen(imaging, rnaseq)
    lap("simulate")
    model = None
    if with_model:
        import shutil

        from phenoseq.phenoseq import PhenoSeq

        model = PhenoSeq(screen, preset="cpu", seed=seed)
        model.train(progress=progress)
        if (out_dir / "model").exists():
            shutil.rmtree(out_dir / "model")  # only reached with overwrite
        model.save(out_dir / "model")
        rna_space = model.rna_space
        lap("train")
    else:
        from phenoseq.rna.space import RNASpace

        rna_space = RNASpace.fit(screen.subset("rnaseq", screen.wells_in("train")), n_latent=50, seed=seed)
    generators = standard_baselines(screen, rna_space, model)
    config = BenchmarkConfig(seed=seed, cells_per_well=cells_per_well)
    result = evaluate(screen, rna_space, generators, config=config, moa_key="MoA", progress=progress)
    if model is not None:
        syn = result.synthetic[model.name]
        write_h5ad(syn, out_dir / "synthetic.h5ad")
        write_h5ad(model.wells(syn), out_dir / "synthetic.wells.h5ad")
    metrics_path = write_results(result, out_dir)
    lap("generate+evaluate")
    report_path = render_report(result, out_dir)
    lap("report")
    return DemoResult(out_dir, metrics_path, report_path, result, timings)
