"""RNA-space fit at scale: time and peak memory of ``RNASpace.fit`` on a large sparse count matrix.

Builds a synthetic count matrix on disk (``--cells`` × ``--genes`` at ``--density`` non-zeros, written block
by block to an h5ad with a sparse ``X``, cell types so the PCA has structure), then fits the RNA space
(normalisation, log1p, highly variable genes, PCA) in a fresh process, reading the file with
``backed="r"`` (``--in-memory``: loading it whole first), and prints the wall time and that process's peak
resident memory. ``--scanpy`` also times scanpy's in-memory ``normalize_total`` + ``log1p`` +
``highly_variable_genes`` + ``pca`` on the same file for reference.

Target (issue 11): 200,000 cells × 20,000 genes in < 2 min and < 4 GiB.

    python benchmarks/bench_rna_space.py [--cells 200000] [--genes 20000] [--density 0.08] [--top-genes 2000]
                                         [--latent 50] [--in-memory] [--scanpy] [--dir DIR]

The input is written to ``--dir`` (default: a temporary folder, removed afterwards; 200k × 20k at 8% is
~2.6 GB on disk).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def build(path: Path, n_cells: int, n_genes: int, density: float, seed: int = 0, rows: int = 4096) -> None:
    """Write a sparse counts h5ad: 8 cell types, each shifting the detection rate and depth of a gene set."""
    import anndata as ad
    import h5py
    import pandas as pd
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    weight = rng.lognormal(0.0, 1.0, n_genes)
    weight /= weight.mean()
    shift = rng.normal(0.0, 0.7, (8, n_genes)) * (rng.random((8, n_genes)) < 0.1)
    level = rng.lognormal(0.0, 0.8, n_genes)
    with h5py.File(path, "w") as f:
        for start in range(0, n_cells, rows):
            r = min(rows, n_cells - start)
            kind = rng.integers(0, 8, r)
            p = np.minimum(density * weight * np.exp(shift[kind]), 1.0).astype(np.float32)
            mask = rng.random((r, n_genes), dtype=np.float32) < p
            i, j = np.nonzero(mask)
            values = 1 + rng.poisson(level[j] * np.exp(shift[kind[i], j]))
            block = sp.csr_matrix((values.astype(np.float32), (i, j)), shape=(r, n_genes))
            if start == 0:
                ad.io.write_elem(f, "X", block)
            else:
                ad.io.sparse_dataset(f["X"]).append(block)
        ad.io.write_elem(f, "obs", pd.DataFrame(index=[f"cell{i}" for i in range(n_cells)]))
        ad.io.write_elem(f, "var", pd.DataFrame(index=[f"gene{j}" for j in range(n_genes)]))
        f.attrs["encoding-type"], f.attrs["encoding-version"] = "anndata", "0.1.0"


def child(path: str, top_genes: int, latent: int, in_memory: bool, scanpy: bool) -> None:
    """Fit in this process and print {"seconds", "peak_rss_gib", ...} as JSON (run by the parent)."""
    import anndata as ad

    t = time.perf_counter()
    if scanpy:
        import scanpy as sc

        adata = ad.read_h5ad(path)
        sc.pp.normalize_total(adata, target_sum=1e4)
        sc.pp.log1p(adata)
        sc.pp.highly_variable_genes(adata, n_top_genes=top_genes, flavor="seurat")
        sc.pp.pca(adata, n_comps=latent, mask_var="highly_variable")
        out = {"n_latent": latent}
    else:
        from phenoseq.rna import RNASpace

        adata = ad.read_h5ad(path) if in_memory else ad.read_h5ad(path, backed="r")
        space = RNASpace.fit(adata, n_latent=latent, n_top_genes=top_genes)
        out = {"n_latent": space.n_latent, "finite": bool(np.isfinite(space.components).all())}
    out["seconds"] = time.perf_counter() - t
    out["peak_rss_gib"] = peak_rss_gib()
    print(json.dumps(out))


def peak_rss_gib() -> float:
    """This process's peak resident memory since it started (VmHWM: unlike ru_maxrss, it does not inherit the
    parent's size at fork)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 2**20  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=200_000)
    parser.add_argument("--genes", type=int, default=20_000)
    parser.add_argument("--density", type=float, default=0.08, help="mean fraction of non-zero counts")
    parser.add_argument("--top-genes", type=int, default=2000, help="highly variable genes kept")
    parser.add_argument("--latent", type=int, default=50, help="PCA components")
    parser.add_argument("--in-memory", action="store_true", help="load the file whole before fitting")
    parser.add_argument("--scanpy", action="store_true", help="also time scanpy's in-memory pipeline")
    parser.add_argument("--dir", type=Path, default=None, help="where to write the input (kept)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--child-scanpy", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.top_genes, args.latent, args.in_memory, args.child_scanpy)
        return

    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        path = Path(tmp) / "counts.h5ad"
        t = time.perf_counter()
        build(path, args.cells, args.genes, args.density)
        size = path.stat().st_size / 2**30
        print(f"input: {args.cells:,} cells × {args.genes:,} genes, density {args.density}, "
              f"{size:.2f} GiB on disk (built in {time.perf_counter() - t:.0f} s)")
        runs = [("phenoseq RNASpace.fit" + (" (in memory)" if args.in_memory else " (backed)"), [])]
        if args.scanpy:
            runs.append(("scanpy normalize_total+log1p+hvg(seurat)+pca (in memory)", ["--child-scanpy"]))
        for name, extra in runs:
            cmd = [sys.executable, __file__, "--child", str(path), "--top-genes", str(args.top_genes),
                   "--latent", str(args.latent), *(["--in-memory"] if args.in_memory else []), *extra]
            result = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.splitlines()[-1])
            print(f"{name}: {result['seconds']:.1f} s, peak RSS {result['peak_rss_gib']:.2f} GiB "
                  f"({args.top_genes} genes → {result['n_latent']} components)")


if __name__ == "__main__":
    main()
