"""Real data, bulk mode: predict L1000 profiles of unseen compounds from their Cell Painting profiles (CMEA dev set).

Data: ``../shared/data/real/cmea_dev`` (``--data``): 81 compounds, one consensus Cell Painting profile (812
CellProfiler features, U2OS) and one consensus L1000 profile (978 landmark genes) each, joined by ``compound``.
No replicates and no DMSO rows, so every compound is one "well" of replicate "1" in the training split
(``ScreenKeys(splits={"train": ["1"]})``) and the protocol is compound-level K-fold cross-validation
(:func:`phenoseq.evaluate.evaluate_unseen`): each fold's compounds leave training in both modalities, every
method is fitted on the rest (~65 compounds with 5 folds) and predicts the held-out compounds from imaging alone.
The seed sets the fold assignment and the model's seed.

Methods: the diffusion model (``phenoseq``) and every baseline of ``standard_baselines`` (training mean, ridge,
nearest well, shuffled imaging fed to the model), all in the model's RNA space (PCA of the fold's training
profiles). Two references, scored on the same folds but in a full-rank RNA space (all ``n_train - 1`` PCs, i.e.
genes, so nothing is lost to the model's small space): ``ridge@fullrank`` (ridge from standardised morphology
to every gene; the strongest simple reference) and ``nearest_well@fullrank`` (the real profile of the training
compound with the closest morphology). ``space ceiling`` is an oracle, not a method: the real held-out profile
projected onto the model's RNA space, i.e. the best median Pearson any method in that space can reach.

Figures per method, pooled over folds: median over held-out compounds of the Pearson correlation between the
predicted and the real change from the training mean across genes (``r genes``; the training mean scores 0);
the mean and median rank of the true compound among the fold's held-out compounds when they are ordered by
correlation with the predicted change (1 = best; chance = (n + 1) / 2), top-1 and top-5. Scaled scores need a
real replicate as the ceiling; there is none here, so they are n/a.

With one profile per compound there is no within-well spread for the network to learn: phenoseq's prediction is
its anchor (``phenoseq.model.anchor``: a reduced-rank ridge in the model's RNA space, rank, penalty and
nearest-well blend chosen by compound-grouped cross-validation on the fold's training compounds; no validation
split, so no memory), and its network learns zero deviations. ``--no-anchor`` runs the unanchored diffusion model.

phenoseq bulk settings (a ~65-profile training set; chosen from training-loss behaviour and runtime, not tuned on
the held-out scores): ``preset="cpu"`` with ``rna_kind="expression"``, ``n_latent=16`` (RNA PCA on the training
profiles; the space ceiling shows what that costs), ``dim=64`` (half the preset's width: few profiles to fit),
``precision="fp32"`` (faster than bf16 autocast at this batch size), ``batch_size = 2 × n_train`` with
``batch_cells_per_well=2`` (every training profile twice per step, at two noise levels), 8 steps per epoch (the
trainer's floor), ``max_epochs=100`` (800 steps, ~25–37 s per fold on 2 shared cores; no validation split, so it
runs all epochs and keeps the final EMA weights), 100 synthetic profiles per compound averaged into its prediction
(``--samples``), the preset's sampler (DPM++2M, 12 steps, guidance 1).

    python benchmarks/bench_cmea.py [--seeds 0 1 2] [--folds 5] [--max-epochs 100] [--n-latent 16] [--dim 64]
                                    [--samples 100] [--baselines-only] [--no-anchor] [--quick] [--data DIR] [--out DIR]

The default run (3 seeds × 5 folds) takes ~8 min on 2 cores. ``--quick``: one seed, 3 folds, 30 epochs (a smoke
run, ~45 s). Nothing is written unless ``--out DIR`` is given (``DIR/seed<N>/metrics.json`` and
``DIR/seed<N>_fullrank/metrics.json``).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real" / "cmea_dev"
FIGURES = (("r_genes", "r genes (median)"), ("rank_mean", "mean rank"), ("rank_median", "median rank"),
           ("chance", "chance"), ("top1", "top-1"), ("top5", "top-5"))


def read_screen(data: Path):
    from phenoseq.io import PairedScreen, ScreenKeys
    from phenoseq.io.readers import read_paired_tables

    imaging, expression = read_paired_tables(data / "morphology.csv.gz", data / "l1000.csv.gz", id_column="compound")
    return PairedScreen(imaging, expression, keys=ScreenKeys(splits={"train": ["1"]}), rna_kind="expression",
                        sources=(str(data / "morphology.csv.gz"), str(data / "l1000.csv.gz")))


def figures(metrics: dict, suffix: str = "") -> dict[str, dict[str, float]]:
    """Method → the table's figures, from the ``wells[method]["unseen"]`` summaries."""
    out = {}
    for method in metrics["methods"]:
        w = metrics["wells"][method]["unseen"]
        rank = w["rank"]
        out[method + suffix] = {"r_genes": w["pearson_genes"]["median"], "rank_mean": rank["mean"],
                                "rank_median": rank["median"], "chance": rank["chance_mean"], "top1": rank["top1"],
                                "top5": rank["top5"], "n": rank["n"]}
    return out


def space_ceiling(screen, space, wells: list[str]) -> list[float]:
    """Per held-out compound: Pearson of its real change and that change projected onto ``space`` (an oracle)."""
    from phenoseq.evaluate.wells import Origins, real_profiles, row_correlation

    origin = Origins.of(screen, space).genes
    real = real_profiles(screen, space, wells)
    projected = space.decode(real.latent)
    return [float(row_correlation(p[None] - origin, r[None] - origin)[0, 0]) for p, r in zip(projected, real.genes)]


def table(title: str, rows: dict[str, dict], sd: dict[str, dict] | None = None, notes: list[str] = ()):
    from rich.table import Table

    t = Table(title=title, caption="\n".join(notes) or None, caption_justify="left")
    t.add_column("method")
    for _, label in FIGURES:
        t.add_column(label, justify="right")
    t.add_column("n", justify="right")
    t.add_column("scaled", justify="right")
    for method, f in rows.items():
        def cell(key: str) -> str:
            digits = 3 if key in ("r_genes", "top1", "top5") else 2
            text = f"{f[key]:.{digits}f}"
            return text + (f" ± {sd[method][key]:.{digits}f}" if sd is not None else "")
        t.add_row(method, *[cell(k) for k, _ in FIGURES], str(f["n"]), "n/a")
    return t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="fold assignment and model seeds")
    parser.add_argument("--folds", type=int, default=5, help="compound folds (5: ~16 held-out compounds per fold)")
    parser.add_argument("--max-epochs", type=int, default=100, help="epochs of 8 steps each (no early stopping)")
    parser.add_argument("--n-latent", type=int, default=16, help="RNA PCA size of the model's space")
    parser.add_argument("--dim", type=int, default=64, help="denoiser width")
    parser.add_argument("--samples", type=int, default=100, help="synthetic profiles averaged per compound")
    parser.add_argument("--baselines-only", action="store_true", help="skip the diffusion model")
    parser.add_argument("--no-anchor", action="store_true", help="the diffusion model without the well-mean anchor")
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 seed, 3 folds, 30 epochs")
    parser.add_argument("--data", type=Path, default=DATA, help="folder with morphology.csv.gz and l1000.csv.gz")
    parser.add_argument("--out", type=Path, default=None, help="write metrics.json per seed into DIR/seed<N>")
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.folds, args.max_epochs = args.seeds[:1], 3, 30

    from rich.console import Console

    from phenoseq.evaluate import BenchmarkConfig, evaluate_unseen, write_results
    from phenoseq.generate.baselines import NearestWellBaseline, RidgeBaseline, standard_baselines
    from phenoseq.io.screen import UNSEEN
    from phenoseq.rna.space import RNASpace

    console = Console(width=170)
    start = time.perf_counter()
    screen = read_screen(args.data)
    console.print(f"{args.data}: {screen.summary()['wells']} compounds, {screen.imaging.n_vars} features, "
                  f"{screen.rnaseq.n_vars} genes; {args.folds}-fold compound CV, seeds {args.seeds}")
    per_seed: list[dict[str, dict]] = []
    for seed in args.seeds:
        config = BenchmarkConfig(seed=seed, cells_per_well=args.samples)
        train_seconds: list[float] = []
        ceiling: list[float] = []

        def fit(held, seed: int = seed) -> dict:
            n_train = len(held.wells_in("train"))
            if args.baselines_only:
                space = RNASpace.fit(held.subset("rnaseq", held.wells_in("train")), args.n_latent,
                                     kind="expression", seed=seed)
                generators = standard_baselines(held, space)
            else:
                from phenoseq import PhenoSeq

                t = time.perf_counter()
                model = PhenoSeq(held, preset="cpu", seed=seed, rna_kind="expression", n_latent=args.n_latent,
                                 dim=args.dim, precision="fp32", batch_size=2 * n_train, batch_cells_per_well=2,
                                 max_epochs=args.max_epochs, anchor=not args.no_anchor)
                model.train()
                train_seconds.append(time.perf_counter() - t)
                space = model.rna_space
                generators = standard_baselines(held, space, model)
            # Oracle figure only (not given to any method): how much of the held-out change the space can hold.
            ceiling.extend(space_ceiling(held, space, sorted(held.wells_in(UNSEEN))))
            return generators

        def fit_fullrank(held, seed: int = seed) -> dict:
            rna = held.subset("rnaseq", held.wells_in("train"))
            space = RNASpace.fit(rna, n_latent=rna.n_obs, kind="expression", seed=seed)  # capped at n_train - 1
            return {"ridge": RidgeBaseline(held, space), "nearest_well": NearestWellBaseline(held, space)}

        t = time.perf_counter()
        result = evaluate_unseen(screen, fit, args.folds, config)
        seconds = time.perf_counter() - t
        reference = evaluate_unseen(screen, fit_fullrank, args.folds, config)
        rows = figures(result.metrics)
        rows.update({m: f for m, f in figures(reference.metrics, "@fullrank").items()
                     if not m.startswith("training_mean")})
        per_seed.append(rows)
        folds = result.metrics["unseen"]["folds"]
        notes = [f"{len(folds)} folds of {[len(f) for f in folds]} held-out compounds; ranks among the fold's held-out "
                 "compounds; r genes = median per-compound Pearson of predicted vs real change from the training mean",
                 f"space ceiling (oracle: real held-out profile projected onto the model's {args.n_latent}-PC space): "
                 f"median r genes {np.median(ceiling):.3f}",
                 "scaled scores: n/a (no replicate profiles, so no real-replicate ceiling)"]
        if train_seconds:
            notes.append(f"phenoseq training: {np.mean(train_seconds):.1f} s per fold (mean of {len(train_seconds)}); "
                         f"whole seed {seconds:.0f} s")
        console.print(table(f"seed {seed}: unseen compounds (CMEA dev, bulk)", rows, notes=notes))
        if args.out is not None:
            console.print(f"wrote {write_results(result, args.out / f'seed{seed}')}, "
                          f"{write_results(reference, args.out / f'seed{seed}_fullrank')}")
    if len(per_seed) > 1:
        methods = list(per_seed[0])
        mean = {m: {k: float(np.mean([r[m][k] for r in per_seed])) for k in per_seed[0][m]} for m in methods}
        sd = {m: {k: float(np.std([r[m][k] for r in per_seed], ddof=1)) for k in per_seed[0][m]} for m in methods}
        for m in methods:
            mean[m]["n"] = per_seed[0][m]["n"]
        console.print(table(f"mean ± sd over seeds {args.seeds} ({args.folds}-fold compound CV)", mean, sd,
                            notes=["sd across seeds (different fold assignments and model seeds)",
                                   "scaled scores: n/a (no replicate profiles)"]))
    console.print(f"total: {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
