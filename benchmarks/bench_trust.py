"""Trust on simulated screens: interval coverage and width, confidence against error, the OOD flag.

For each seed the default screen is simulated and ``PhenoSeq(preset="cpu")`` trained twice over:
* **seen protocol**: on the screen's training split; scored on its WE (``test``) and HE (``test_he``) wells;
* **unseen protocol**: compound-level ``--folds``-fold hold-out (:func:`phenoseq.evaluate.evaluate_unseen`);
  scored on the held-out compounds' wells (``unseen``) and, as the OOD flag's negatives, the ``test`` wells of
  training compounds. So that those stay held out, the methods train on the training split alone
  (``train_on_tests=False``). With ``--train-on-tests`` the test wells join training, as in ``bench_unseen.py``:
  coverage and confidence of the unseen wells in that protocol, and no negatives for the OOD flag.
The intervals (90%), confidence and OOD threshold are the ones the model calibrates on its validation wells
at the end of training; nothing here is tuned on the scored wells. Beside the model's intervals: the
training-mean interval (training mean ± a conformal quantile of the validation wells' deviations from it).

    python benchmarks/bench_trust.py [--seeds 0 1 2] [--folds 3] [--max-epochs N] [--protocols seen unseen] [--train-on-tests] [--out DIR]
    python benchmarks/bench_trust.py --from DIR   # the tables again from the per-well records a run saved

After the unseen tables: where the unseen wells' errors come from (:func:`print_error_structure`).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

UNSEEN_ON_TESTS = "unseen-train-on-tests"  # the unseen protocol with the other compounds' test wells in training


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--max-epochs", type=int, default=None, help="cap the model's epochs (default: the preset's)")
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--train-on-tests", action="store_true",
                        help="unseen protocol: the other compounds' test wells join training (no OOD negatives)")
    parser.add_argument("--protocols", nargs="+", choices=["seen", "unseen"], default=["seen", "unseen"])
    parser.add_argument("--out", type=Path, default=None, help="write each run's trust entry as JSON into DIR")
    parser.add_argument("--from", dest="saved", type=Path, default=None,
                        help="print the tables from the JSON a run wrote with --out (summaries recomputed)")
    args = parser.parse_args()
    if args.saved is not None:
        return from_saved(args.saved, args.seeds)

    from rich.console import Console

    from phenoseq import PhenoSeq
    from phenoseq.evaluate import BenchmarkConfig, evaluate, evaluate_unseen
    from phenoseq.evaluate.jsonable import jsonable
    from phenoseq.evaluate.wells import treatment_info
    from phenoseq.io import PairedScreen
    from phenoseq.progress import RichProgress
    from phenoseq.report.tables import trust_seeds_table, trust_table
    from phenoseq.simulate import SimulationConfig, simulate_screen

    console = Console(width=170)
    progress = RichProgress()
    seen, unseen, unseen_runs = [], [], []
    unseen_name = UNSEEN_ON_TESTS if args.train_on_tests else "unseen"
    for seed in args.seeds:
        screen = PairedScreen(*simulate_screen(SimulationConfig(seed=seed)))
        config = BenchmarkConfig(seed=seed)

        def fit(held: PairedScreen, seed: int = seed) -> dict:
            model = PhenoSeq(held, preset=args.preset, seed=seed)
            model.train(progress=progress, max_epochs=args.max_epochs)
            return {"phenoseq": model}

        if "seen" in args.protocols:
            t = time.perf_counter()
            methods = fit(screen)
            seen.append(evaluate(screen, methods["phenoseq"].rna_space, methods, config=config,
                                 identification=False).metrics)
            console.rule(f"seed {seed}, seen protocol ({time.perf_counter() - t:.0f} s)")
            console.print(trust_table(seen[-1], "phenoseq"))
        if "unseen" in args.protocols:
            t = time.perf_counter()
            unseen.append(evaluate_unseen(screen, fit, args.folds, config, progress=progress,
                                          train_on_tests=args.train_on_tests).metrics)
            unseen_runs.append((seed, unseen[-1], treatment_info(screen)["well_treatment"]))
            console.rule(f"seed {seed}, {unseen_name} protocol ({time.perf_counter() - t:.0f} s)")
            console.print(trust_table(unseen[-1], "phenoseq"))
        if args.out is not None:
            args.out.mkdir(parents=True, exist_ok=True)
            for protocol, name, runs in (("seen", "seen", seen), ("unseen", unseen_name, unseen)):
                if protocol in args.protocols:
                    (args.out / f"trust_{name}_seed{seed}.json").write_text(json.dumps(jsonable(runs[-1]["trust"]), indent=1))
    if seen:
        console.print(trust_seeds_table(seen, "phenoseq", "seen protocol"))
    if unseen:
        console.print(trust_seeds_table(unseen, "phenoseq", f"{unseen_name} protocol ({args.folds}-fold compound hold-out)"))
        print_error_structure(console, unseen_runs)


def from_saved(directory: Path, seeds: list[int]) -> None:
    """Re-summarise saved per-well records with the current summaries (marking each well's treatment as visible
    or silent in morphology from the same simulated screen) and print the tables."""
    from rich.console import Console

    from phenoseq.evaluate.trust import summarise_split
    from phenoseq.evaluate.wells import treatment_info
    from phenoseq.io import PairedScreen
    from phenoseq.report.tables import trust_seeds_table, trust_table
    from phenoseq.simulate import SimulationConfig, simulate_screen

    console = Console(width=170)
    runs: dict[str, list[dict]] = {"seen": [], "unseen": [], UNSEEN_ON_TESTS: []}
    unseen_runs: list[tuple[int, dict, dict[str, str]]] = []
    for seed in seeds:
        info = treatment_info(PairedScreen(*simulate_screen(SimulationConfig(seed=seed))))
        visible = {w: info.get("morphology_visible", {}).get(t) for w, t in info["well_treatment"].items()}
        for protocol in runs:
            path = directory / f"trust_{protocol}_seed{seed}.json"
            if not path.exists():  # a run with --protocols saved only the other one
                continue
            trust = json.loads(path.read_text())
            for split, t in trust["phenoseq"]["splits"].items():
                for key, rec in t["per_well"].items():
                    if visible.get(key.split("@")[0]) is not None:
                        rec["visible"] = bool(visible[key.split("@")[0]])
                trust["phenoseq"]["splits"][split] = summarise_split(t["per_well"], split)
            metrics = {"trust": trust}
            runs[protocol].append(metrics)
            if protocol != "seen":
                unseen_runs.append((seed, metrics, info["well_treatment"]))
            console.rule(f"seed {seed}, {protocol} protocol")
            console.print(trust_table(metrics, "phenoseq"))
    if runs["seen"]:
        console.print(trust_seeds_table(runs["seen"], "phenoseq", "seen protocol"))
    for protocol in ("unseen", UNSEEN_ON_TESTS):
        if runs[protocol]:
            console.print(trust_seeds_table(runs[protocol], "phenoseq", f"{protocol} protocol (compound hold-out)"))
    if unseen_runs:
        print_error_structure(console, unseen_runs)


def print_error_structure(console, runs: list[tuple[int, dict, dict[str, str]]]) -> None:
    """Where the unseen wells' errors come from, per ``(seed, metrics, well -> treatment)`` run: Spearman(score, error) for the
    confidence (negated) and the OOD score, and for the **compound oracle**: each well's error predicted by the
    mean error of its compound's other held-out wells. The oracle knows the answers; it bounds what any
    per-compound confidence could reach, and shows how much of the error is the compound's rather than the
    well's. Compounds with a single held-out well have no oracle and are left out of it."""
    import numpy as np
    from scipy.stats import spearmanr

    for seed, metrics, of in runs:
        per_well = metrics["trust"]["phenoseq"]["splits"]["unseen"]["per_well"]
        wells = list(per_well)
        err = np.array([per_well[w]["error"] for w in wells])
        compound = np.array([of[w.split("@")[0]] for w in wells])
        others = [(compound == c) & (np.arange(len(wells)) != i) for i, c in enumerate(compound)]
        has = np.array([o.any() for o in others])
        oracle = np.array([err[o].mean() for o, h in zip(others, has) if h])
        rho = {"-confidence": spearmanr([-per_well[w]["confidence"] for w in wells], err)[0],
               "OOD score": spearmanr([per_well[w]["ood_score"] for w in wells], err)[0],
               "compound oracle": spearmanr(oracle, err[has])[0] if has.sum() > 2 else float("nan")}
        console.print(f"seed {seed}, unseen wells ({len(wells)}, {len(set(compound))} compounds): Spearman with "
                      "error: " + ", ".join(f"{k} {v:+.2f}" for k, v in rho.items()))


if __name__ == "__main__":
    main()
