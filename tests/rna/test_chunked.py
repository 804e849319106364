"""The block-wise RNA statistics agree with the dense computation, and the streamed space with the dense one."""

import anndata as ad
import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.decomposition import PCA

import phenoseq.rna.space as space_module
from phenoseq.rna import RNASpace, chunked, highly_variable_genes, log_normalise
from phenoseq.rna.chunked import (
    covariance_pca,
    dense_expression,
    gene_moments,
    normalised_block,
)
from phenoseq.rna.space import select_variable_genes


def _counts(n: int = 300, g: int = 120, seed: int = 0) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    rates = rng.lognormal(-1.0, 1.0, g) * rng.lognormal(0.0, 0.3, (n, 1))
    programme = rng.normal(0, 1, (n, 1)) * (rng.random(g) < 0.2)  # a few co-varying genes, so PCs mean something
    return sp.csr_matrix(rng.poisson(rates * np.exp(programme)).astype(np.float32))


def _dense_log(X) -> np.ndarray:
    x = X.toarray().astype(np.float64)
    totals = x.sum(axis=1)
    totals[totals == 0] = 1.0
    return np.log1p(x * (1e4 / totals)[:, None])


def test_sparse_and_dense_blocks_normalise_alike():
    X = _counts()
    genes = np.array([3, 7, 50])
    s = normalised_block(X, "counts", 1e4, genes)
    assert sp.issparse(s)
    np.testing.assert_array_equal(s.toarray(), normalised_block(X.toarray(), "counts", 1e4, genes))
    np.testing.assert_allclose(s.toarray(), _dense_log(X)[:, genes], rtol=1e-12)


@pytest.mark.parametrize("kind", ["counts", "expression"])
@pytest.mark.parametrize("rows", [7, 1000])
def test_gene_moments_match_dense(kind, rows):
    X = _counts()
    x = _dense_log(X) if kind == "counts" else X.toarray().astype(np.float64)
    m = gene_moments(X, kind, 1e4, rows=rows)
    np.testing.assert_allclose(m.mean, x.mean(axis=0), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(m.var, x.var(axis=0, ddof=1), rtol=1e-8, atol=1e-12)
    if kind == "counts":
        np.testing.assert_array_equal(m.totals, X.toarray().sum(axis=1))
    else:
        assert m.totals is None


def test_streamed_gene_selection_is_the_dense_selection():
    X = _counts(g=400, seed=1)
    m = gene_moments(X, "counts", 1e4, rows=13)
    np.testing.assert_array_equal(select_variable_genes(m.mean, m.var, 60), highly_variable_genes(log_normalise(X), 60))


def test_covariance_pca_matches_sklearn():
    X = _counts(n=500, seed=2)
    genes = np.arange(0, 120, 2)
    x = _dense_log(X)[:, genes]
    m = gene_moments(X, "counts", 1e4, rows=11)
    comps = covariance_pca(X, "counts", 1e4, genes, m.mean[genes], 10, rows=11)
    ref = PCA(n_components=10, svd_solver="full").fit(x).components_
    np.testing.assert_allclose(comps @ comps.T, np.eye(10), atol=1e-10)
    np.testing.assert_allclose(np.abs(np.sum(comps * ref, axis=1)), 1.0, atol=1e-5)  # same axes
    assert (comps[np.arange(10), np.abs(comps).argmax(axis=1)] > 0).all()  # the stated sign rule


def _adata(X) -> ad.AnnData:
    return ad.AnnData(X, var={"gene_ids": [f"ENSG{i:05d}" for i in range(X.shape[1])]},
                      obs={"cell": [f"c{i}" for i in range(X.shape[0])]}).copy()


def _assert_same_space(a: RNASpace, b: RNASpace, atol: float = 1e-4) -> None:
    assert a.genes == b.genes and a.gene_info == b.gene_info
    np.testing.assert_allclose(a.mean, b.mean, rtol=1e-5)  # sklearn averages float32 cells
    np.testing.assert_allclose(np.abs(np.sum(a.components * b.components, axis=1)), 1.0, atol=atol)
    np.testing.assert_array_equal(a.library_sizes, b.library_sizes)


def test_streamed_space_matches_the_dense_space(monkeypatch):
    rna = _adata(_counts(n=600, g=300, seed=3))
    dense = RNASpace.fit(rna, n_latent=8, n_top_genes=100)
    monkeypatch.setattr(space_module, "DENSE_PCA_LIMIT", 0)  # force the covariance path
    monkeypatch.setattr(chunked, "ROWS", 64)  # and many blocks
    streamed = RNASpace.fit(rna, n_latent=8, n_top_genes=100)
    _assert_same_space(dense, streamed)
    z_dense, z_streamed = dense.transform(rna), streamed.transform(rna)
    np.testing.assert_allclose(np.abs(z_dense), np.abs(z_streamed), atol=1e-3)
    np.testing.assert_array_equal(dense_expression(rna.X, "counts", 1e4, np.arange(300), rows=64), log_normalise(rna.X))


def test_space_fits_and_transforms_a_backed_file(tmp_path, monkeypatch):
    rna = _adata(_counts(n=400, g=200, seed=4))
    path = tmp_path / "rna.h5ad"
    rna.write_h5ad(path)
    in_memory = RNASpace.fit(rna, n_latent=6, n_top_genes=80)
    monkeypatch.setattr(chunked, "ROWS", 50)
    backed = ad.read_h5ad(path, backed="r")
    on_disk = RNASpace.fit(backed, n_latent=6, n_top_genes=80)
    _assert_same_space(in_memory, on_disk, atol=1e-6)
    np.testing.assert_allclose(on_disk.transform(backed), in_memory.transform(rna), atol=1e-5)
    backed.file.close()
