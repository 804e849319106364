"""Synthetic output as scanpy / scvi-tools users meet it: the log1p marker, sampled counts, gene metadata, and
real + synthetic cells in one AnnData."""

import io

import anndata as ad
import numpy as np
import pytest
import scipy.sparse as sp

from phenoseq.errors import PhenoseqError
from phenoseq.generate.output import LATENT_KEY, SOURCE_KEY, concat_real_synthetic, synthetic_adata, well_metadata
from phenoseq.generate.seeds import well_seed
from phenoseq.rna.space import EmbeddingSpace, RNASpace, log_normalise


@pytest.fixture(scope="module")
def screen(small_screen_data):
    from phenoseq.io import PairedScreen

    imaging, rnaseq = small_screen_data
    rnaseq = rnaseq.copy()
    rnaseq.var["gene_ids"] = [f"ENSG{i:011d}" for i in range(rnaseq.n_vars)]
    rnaseq.var["feature_types"] = "Gene Expression"
    rnaseq.var["highly_variable"] = True  # a training-set statistic: must not reach synthetic var
    return PairedScreen(imaging.copy(), rnaseq)


@pytest.fixture(scope="module")
def space(screen):
    return RNASpace.fit(screen.subset("rnaseq", screen.wells_in("train")), n_latent=20, n_top_genes=200)


def _generate(screen, space, wells, seed=0, **kwargs):
    """A known-answer generator: the latents of the wells' real test cells, seeded per well like the model."""
    rna = screen.subset("rnaseq", wells)
    samples = rna.obs["Sample_ID"].astype(str).tolist()
    seeds = np.array([well_seed(seed, s) for s in samples])
    return synthetic_adata(space.transform(rna), samples, well_metadata(screen.imaging, screen.keys), screen.keys,
                           seeds, {"model": "real-latents"}, decode=space.decode, genes=space.genes, **kwargs)


@pytest.fixture(scope="module")
def synthetic(screen, space):
    return _generate(screen, space, screen.wells_in("test")[:8])


def test_counts_layer_markers_and_gene_metadata(synthetic, space):
    counts = synthetic.layers["counts"]
    assert sp.isspmatrix_csr(counts) and counts.dtype == np.int32 and counts.shape == synthetic.shape
    assert counts.data.min() >= 0 and counts.nnz > 0
    # The counts are drawn around X: their own log1p(CP10k) gene means follow X's.
    r = np.corrcoef(log_normalise(counts).mean(axis=0), np.asarray(synthetic.X).mean(axis=0))[0, 1]
    assert r > 0.9
    totals = np.asarray(counts.sum(axis=1)).ravel()
    assert totals.max() <= space.library_sizes[-1]  # drawn at training depths (over the model's genes only)
    assert synthetic.uns["log1p"] == {"base": None}
    assert list(synthetic.var.columns) == ["gene_ids", "feature_types"]
    assert synthetic.var.loc[space.genes[0], "feature_types"] == "Gene Expression"


def test_same_seed_same_counts_and_well_local(screen, space, synthetic):
    wells = screen.wells_in("test")[:8]
    again = _generate(screen, space, wells)
    assert (again.layers["counts"] != synthetic.layers["counts"]).nnz == 0
    one = _generate(screen, space, wells[3:4])  # a well's counts do not depend on the other wells
    mask = (synthetic.obs["Sample_ID"] == wells[3]).to_numpy()
    assert (synthetic.layers["counts"][mask] != one.layers["counts"]).nnz == 0
    other = _generate(screen, space, wells, seed=1)
    assert (other.layers["counts"] != synthetic.layers["counts"]).nnz > 0
    assert np.array_equal(other.X, synthetic.X)  # the seed only changes the counts of the same latents


def test_counts_can_be_skipped_and_only_counts_spaces_get_extras(screen, space):
    wells = screen.wells_in("test")[:2]
    plain = _generate(screen, space, wells, counts=False)
    assert "counts" not in plain.layers and plain.uns["log1p"] == {"base": None}
    rna = screen.subset("rnaseq", wells).copy()
    rna.obsm["X_emb"] = np.random.default_rng(0).normal(size=(rna.n_obs, 4)).astype(np.float32)
    emb = EmbeddingSpace.fit(rna, "X_emb")
    samples = rna.obs["Sample_ID"].astype(str).tolist()
    out = synthetic_adata(emb.transform(rna), samples, well_metadata(screen.imaging, screen.keys), screen.keys,
                          np.zeros(len(samples)), {"model": "x"}, decode=emb.decode, genes=list(emb.genes))
    assert out.n_vars == 0 and not out.layers and "log1p" not in out.uns
    expr = rna.copy()
    expr.X = np.log1p(expr.X.toarray())
    espace = RNASpace.fit(expr, n_latent=5, n_top_genes=50, kind="expression")
    out = synthetic_adata(espace.transform(expr), samples, well_metadata(screen.imaging, screen.keys), screen.keys,
                          np.zeros(len(samples)), {"model": "x"}, rna_space=espace)
    assert out.n_vars == 50 and not out.layers and "log1p" not in out.uns  # X is not log1p(CP10k) here


def test_scanpy_log1p_warns_on_synthetic_output(synthetic):
    sc = pytest.importorskip("scanpy")
    log, old = io.StringIO(), sc.settings.logfile
    sc.settings.logfile = log
    try:
        sc.pp.log1p(synthetic.copy())
    finally:
        sc.settings.logfile = old
    # scanpy 1.10/1.11 warn and then log again anyway; the marker is what makes the mistake visible.
    assert "already log-transformed" in log.getvalue()


def test_scanpy_workflow_runs_on_synthetic_output(synthetic):
    sc = pytest.importorskip("scanpy")
    adata = synthetic.copy()
    sc.pp.pca(adata, n_comps=10)
    # Gaussian kernel and exact neighbours: the same graph API without seconds of numba compilation.
    sc.pp.neighbors(adata, n_neighbors=10, method="gauss", transformer="sklearn")
    sc.tl.umap(adata, maxiter=20)
    # scanpy's default t-test: "wilcoxon" starts numba's OpenMP thread pool, which then slows every later torch
    # test in the same process several-fold on a small machine.
    sc.tl.rank_genes_groups(adata, groupby="Treatment", method="t-test")
    assert adata.obsm["X_umap"].shape == (adata.n_obs, 2) and np.isfinite(adata.obsm["X_umap"]).all()
    result = adata.uns["rank_genes_groups"]
    assert set(result["names"].dtype.names) == set(adata.obs["Treatment"].cat.categories)
    assert np.isfinite(result["logfoldchanges"][result["names"].dtype.names[0]]).all()


def test_concat_real_synthetic(tmp_path, screen, space, synthetic):
    real = screen.subset("rnaseq", screen.wells_in("test")[8:10])
    both = concat_real_synthetic(real, synthetic, space)
    n_real = real.n_obs
    assert both.shape == (n_real + synthetic.n_obs, len(space.genes))
    assert both.var_names.tolist() == space.genes and "gene_ids" in both.var.columns
    assert both.obs[SOURCE_KEY].value_counts().to_dict() == {"real": n_real, "synthetic": synthetic.n_obs}
    assert np.allclose(both.X[:n_real], space.expression(real))  # normalised like the training cells
    assert np.allclose(both.X[n_real:], synthetic.X)
    counts = both.layers["counts"]
    assert sp.isspmatrix_csr(counts) and counts.dtype == np.int32
    assert (counts[:n_real] != sp.csr_matrix(real[:, space.genes].X, dtype=np.int32)).nnz == 0
    assert (counts[n_real:] != synthetic.layers["counts"]).nnz == 0
    assert both.obsm[LATENT_KEY].shape == (both.n_obs, space.n_latent) and both.uns["log1p"] == {"base": None}
    both.write_h5ad(tmp_path / "both.h5ad")  # one-sided columns (phenoseq_seed) stay writable
    back = ad.read_h5ad(tmp_path / "both.h5ad")
    assert back.obs[SOURCE_KEY].tolist() == both.obs[SOURCE_KEY].tolist()


def test_concat_refuses_what_would_mix_values(screen, space, synthetic):
    real = screen.subset("rnaseq", screen.wells_in("test")[8:9]).copy()
    with pytest.raises(PhenoseqError, match=r"layers\['counts'\]"):
        concat_real_synthetic(real, ad.AnnData(synthetic.X, obs=synthetic.obs, var=synthetic.var), space)
    logged = real.copy()
    logged.layers["counts"] = logged.X.copy()
    logged.X = sp.csr_matrix(np.log1p(logged.X.toarray()))
    with pytest.raises(PhenoseqError, match=r"real cells: X has \d+ non-integer values"):
        concat_real_synthetic(logged, synthetic, space)
    assert concat_real_synthetic(logged, synthetic, space, real_layer="counts").n_obs == real.n_obs + synthetic.n_obs


def test_model_output_carries_counts_through_save_and_load(tmp_path, screen):
    from phenoseq import PhenoSeq

    model = PhenoSeq(screen, preset="tiny", seed=0)
    model.train(max_epochs=1)
    imaging = screen.subset("imaging", screen.wells_in("test")[:3])
    syn = model.generate(imaging, cells_per_well=6, seed=2)
    assert syn.layers["counts"].dtype == np.int32 and syn.uns["log1p"] == {"base": None}
    assert "gene_ids" in syn.var.columns
    model.save(tmp_path / "m")
    loaded = PhenoSeq.load(tmp_path / "m")
    assert np.array_equal(loaded.rna_space.library_sizes, model.rna_space.library_sizes)
    assert loaded.rna_space.gene_info == model.rna_space.gene_info
    again = loaded.generate(imaging, cells_per_well=6, seed=2)
    assert (again.layers["counts"] != syn.layers["counts"]).nnz == 0
