"""Streamed generation at scale: time and peak memory of ``phenoseq generate`` on a ~1 M-cell imaging file.

Trains a default-preset model briefly on a simulated screen with ``--features`` morphology features (speed, not
quality, is measured here), builds an imaging file of ``--wells`` wells × ``--cells`` cells by resampling that
screen's imaging cells (with noise) into new wells, then runs ``phenoseq generate --cells-per-well K`` in a
fresh process and prints its wall time, its peak resident memory and the sizes written. ``--shards N`` also
times the same run as N shards (one after another here; on a cluster, at once) plus ``phenoseq merge``, and
checks that the merged files equal the unsharded ones.

Target (issue 11): 1 M imaging cells → synthetic profiles for every well in < 10 min and < 3 GiB on 2 cores.

    python benchmarks/bench_generate_stream.py [--wells 3360] [--cells 298] [--features 300]
                                               [--cells-per-well 150] [--epochs 2] [--shards 0] [--dir DIR]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CHILD = """
import json, sys, time
from pathlib import Path
from phenoseq.cli import run
t = time.perf_counter()
code = run(*sys.argv[1:])
hwm = next(int(l.split()[1]) for l in Path('/proc/self/status').read_text().splitlines() if l.startswith('VmHWM:'))
print(json.dumps({"code": code, "seconds": time.perf_counter() - t, "peak_rss_gib": hwm / 2**20}))
"""


def build(tmp: Path, n_wells: int, n_cells: int, n_features: int, epochs: int, seed: int = 0) -> tuple[Path, Path]:
    """Train a model and write the large imaging file; return (model dir, imaging path)."""
    import anndata as ad
    import pandas as pd

    from phenoseq import PhenoSeq
    from phenoseq.io import PairedScreen
    from phenoseq.simulate import SimulationConfig, simulate_screen

    screen = PairedScreen(*simulate_screen(SimulationConfig(n_features=n_features, seed=seed)))
    model = PhenoSeq(screen, preset="cpu", seed=seed, max_epochs=epochs)
    model.train()
    model.save(tmp / "model")
    src = screen.imaging
    src_wells = src.obs["Sample_ID"].astype(str).to_numpy()
    names = np.unique(src_wells)
    rows = {w: np.flatnonzero(src_wells == w) for w in names}
    rng = np.random.default_rng(seed)
    X = np.asarray(src.X, dtype=np.float32)
    blocks, obs = [], []
    for i in range(n_wells):
        parent = names[i % len(names)]
        take = rng.choice(rows[parent], n_cells)
        blocks.append(X[take] + rng.normal(0, 0.05, (n_cells, X.shape[1])).astype(np.float32))
        meta = src.obs.iloc[take[:1]].copy()
        meta["Sample_ID"] = f"W{i:05d}-{parent}"
        obs.append(meta.loc[meta.index.repeat(n_cells)])
    obs = pd.concat(obs)
    obs.index = [f"c{i}" for i in range(len(obs))]
    big = ad.AnnData(np.concatenate(blocks), obs=obs, var=src.var.copy())
    path = tmp / "imaging.h5ad"
    big.write_h5ad(path)
    return tmp / "model", path


def child(*args: str) -> dict:
    result = subprocess.run([sys.executable, "-c", CHILD, *args], check=True, capture_output=True, text=True)
    out = json.loads(result.stdout.splitlines()[-1])
    if out["code"] != 0:
        raise SystemExit(f"phenoseq {' '.join(args)} failed ({out['code']}):\n{result.stderr[-2000:]}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wells", type=int, default=3360)
    parser.add_argument("--cells", type=int, default=298, help="imaging cells per well")
    parser.add_argument("--features", type=int, default=300)
    parser.add_argument("--cells-per-well", type=int, default=150, help="synthetic cells per well")
    parser.add_argument("--epochs", type=int, default=2, help="training epochs of the model (speed only)")
    parser.add_argument("--shards", type=int, default=0, help="also run as N shards + merge and compare")
    parser.add_argument("--dir", type=Path, default=None, help="where to write (a temporary folder by default)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(dir=args.dir) as name:
        tmp = Path(name)
        t = time.perf_counter()
        model, imaging = build(tmp, args.wells, args.cells, args.features, args.epochs)
        print(f"input: {args.wells:,} wells × {args.cells} = {args.wells * args.cells:,} imaging cells × "
              f"{args.features} features, {imaging.stat().st_size / 2**30:.2f} GiB (built in "
              f"{time.perf_counter() - t:.0f} s, model trained {args.epochs} epochs)")
        base = ["generate", "-m", str(model), "-i", str(imaging), "--cells-per-well", str(args.cells_per_well), "-q"]
        out = tmp / "synthetic.h5ad"
        r = child(*base, "-o", str(out))
        n = args.wells * args.cells_per_well
        print(f"phenoseq generate: {n:,} synthetic cells in {r['seconds']:.0f} s ({n / r['seconds']:,.0f} cells/s), "
              f"peak RSS {r['peak_rss_gib']:.2f} GiB; wrote {out.stat().st_size / 2**30:.2f} GiB "
              f"+ {(tmp / 'synthetic.wells.h5ad').stat().st_size / 2**20:.0f} MiB well-level file")
        if args.shards:
            import h5py

            sharded = tmp / "sharded.h5ad"
            times, peaks = [], []
            for i in range(1, args.shards + 1):
                s = child(*base, "-o", str(sharded), "--shard", f"{i}/{args.shards}")
                times.append(s["seconds"])
                peaks.append(s["peak_rss_gib"])
            m = child("merge", "-o", str(sharded), "-q")
            with h5py.File(out) as a, h5py.File(sharded) as b:
                same = all(np.array_equal(a[k][...], b[k][...]) for k in ("X", "obsm/X_phenoseq"))
            print(f"{args.shards} shards: {max(times):.0f} s the slowest ({sum(times):.0f} s in all), peak RSS "
                  f"{max(peaks):.2f} GiB; merge {m['seconds']:.0f} s, peak RSS {m['peak_rss_gib']:.2f} GiB; "
                  f"merged X and latents equal the unsharded run's: {same}")


if __name__ == "__main__":
    main()
