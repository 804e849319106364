"""The RNA space's statistics, accumulated over blocks of cells so memory does not grow with the data.

Fitting a space needs, from the training cells: each gene's mean and variance of log-normalised expression
(gene selection), each cell's library size (count sampling), and the mean and covariance of the selected genes
(the PCA). Each is a sum over cells, so it is accumulated over row blocks of ``X``: dense, scipy-sparse, or an
AnnData opened with ``backed="r"``. A sparse block stays sparse through normalisation (log1p(0) = 0), and only
the selected genes of one block are ever dense.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

ROWS = 8192  # cells per block: ~130 MB for 2,000 dense genes in float64, whatever the number of cells


def row_blocks(X, rows: int | None = None) -> Iterator:
    """Consecutive row blocks of ``X`` (``rows`` cells each, default :data:`ROWS`; the last shorter): CSR or
    ndarray."""
    n, rows = X.shape[0], rows or ROWS
    for start in range(0, n, rows):
        block = X[start:min(start + rows, n)]
        yield block.tocsr() if sp.issparse(block) else np.asarray(block)


def normalised_block(block, kind: str, target_sum: float, genes: np.ndarray | None = None):
    """log1p(counts per ``target_sum``) of a block (``kind="counts"``) or the block as is (``"expression"``),
    in float64, restricted to ``genes`` (column indices) after the library size is taken over every gene.

    Sparse in, sparse out; dense in, dense out.
    """
    if sp.issparse(block):
        block = block.astype(np.float64)
        if kind == "counts":
            totals = np.asarray(block.sum(axis=1)).ravel()
            totals[totals == 0] = 1.0
            block = sp.csr_matrix(sp.diags(target_sum / totals) @ block)
            block.data = np.log1p(block.data)
        return block[:, genes] if genes is not None else block
    block = np.asarray(block, dtype=np.float64)
    if kind == "counts":
        totals = block.sum(axis=1)
        totals[totals == 0] = 1.0
        block = np.log1p(block * (target_sum / totals)[:, None])
    return block[:, genes] if genes is not None else block


def dense_expression(X, kind: str, target_sum: float, genes: np.ndarray, rows: int | None = None) -> np.ndarray:
    """``(n_cells, len(genes))`` float32 expression over ``genes``, built block by block."""
    out = np.empty((X.shape[0], len(genes)), dtype=np.float32)
    start = 0
    for block in row_blocks(X, rows):
        x = normalised_block(block, kind, target_sum, genes)
        out[start:start + x.shape[0]] = x.toarray() if sp.issparse(x) else x
        start += x.shape[0]
    return out


@dataclass
class GeneMoments:
    """One pass over the cells: per-gene ``mean`` and ``var`` (ddof = 1) of expression, ``(n_genes,)``
    float64, and each cell's total counts ``totals`` ``(n_cells,)`` (``None`` for expression data)."""

    n_cells: int
    mean: np.ndarray
    var: np.ndarray
    totals: np.ndarray | None


def gene_moments(X, kind: str, target_sum: float, rows: int | None = None) -> GeneMoments:
    """Mean and variance of every gene's normalised expression, and library sizes, in one pass over ``X``."""
    n, g = X.shape
    s1, s2 = np.zeros(g), np.zeros(g)
    totals = [] if kind == "counts" else None
    for block in row_blocks(X, rows):
        if totals is not None:
            totals.append(np.asarray(block.sum(axis=1), dtype=np.float64).ravel())
        x = normalised_block(block, kind, target_sum)
        s1 += np.asarray(x.sum(axis=0)).ravel()
        s2 += np.asarray((x.multiply(x) if sp.issparse(x) else x * x).sum(axis=0)).ravel()
    mean = s1 / n
    var = np.maximum(s2 - n * mean * mean, 0.0) / max(n - 1, 1)
    return GeneMoments(n, mean, var, np.concatenate(totals) if totals is not None else None)


def covariance_pca(X, kind: str, target_sum: float, genes: np.ndarray, mean: np.ndarray, n_components: int,
                   rows: int | None = None) -> np.ndarray:
    """Exact PCA loadings of the expression over ``genes`` from the streamed ``G × G`` covariance.

    ``mean`` is each selected gene's mean (from :func:`gene_moments`): blocks are centred before their
    products are summed, so float32 products lose nothing to cancellation (and run twice as fast as float64).
    Returns ``(n_components, G)`` orthonormal rows by decreasing variance, each row's largest-magnitude loading
    positive so the signs do not depend on the solver. Memory: one block plus two ``G × G`` float64 matrices
    (32 MB each for 2,000 genes).
    """
    g = len(genes)
    n, scatter = 0, np.zeros((g, g))
    centre = np.asarray(mean, dtype=np.float32)
    for block in row_blocks(X, rows):
        x = normalised_block(block, kind, target_sum, genes)
        x = (x.toarray() if sp.issparse(x) else x).astype(np.float32) - centre
        n += x.shape[0]
        scatter += x.T @ x
    _, vectors = np.linalg.eigh(scatter / max(n - 1, 1))
    components = vectors[:, ::-1][:, :n_components].T
    signs = np.sign(components[np.arange(len(components)), np.abs(components).argmax(axis=1)])
    return components * signs[:, None]
