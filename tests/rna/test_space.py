"""RNA space: normalisation, gene selection, projection, decoding, sampled counts, gene metadata, and an exact
save/load round trip (also of states saved before library sizes and gene metadata were kept)."""

import json

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from phenoseq.errors import PhenoseqError
from phenoseq.rna import RNASpace, highly_variable_genes, log_normalise


@pytest.fixture(scope="module")
def train_rna(small_screen_data):
    _, rnaseq = small_screen_data
    return rnaseq[(rnaseq.obs["Replicate"] == "3").to_numpy()].copy()


def test_log_normalise_known_values():
    X = sp.csr_matrix(np.array([[1.0, 3.0], [0.0, 0.0]]))
    out = log_normalise(X)
    assert np.allclose(out[0], np.log1p([2500.0, 7500.0]))
    assert np.allclose(out[1], 0.0)
    assert np.allclose(log_normalise(X.toarray()), out)


def test_hvg_prefers_variable_genes():
    rng = np.random.default_rng(0)
    x = np.abs(rng.normal(1.0, 0.05, size=(500, 40)))
    x[:, 7] = np.abs(rng.normal(1.0, 1.0, size=500))
    assert 7 in highly_variable_genes(x, 3)
    assert len(highly_variable_genes(x, 100)) == 40


def test_fit_transform_decode(train_rna):
    space = RNASpace.fit(train_rna, n_latent=20, n_top_genes=150)
    assert len(space.genes) == 150 and space.n_latent == 20
    z = space.transform(train_rna)
    assert z.shape == (train_rna.n_obs, 20) and z.dtype == np.float32
    assert np.allclose(z.mean(axis=0), 0, atol=1e-3)  # centred on the cells it was fitted on
    x = space.expression(train_rna)
    recon = space.decode(z)
    assert recon.shape == x.shape and (recon >= 0).all()
    assert np.corrcoef(x.ravel(), recon.ravel())[0, 1] > 0.7
    counts = space.sample_counts(z[:10], library_size=2000)
    assert counts.shape == (10, 150)


def test_save_load_round_trip_is_exact(tmp_path, train_rna):
    space = RNASpace.fit(train_rna, n_latent=10, n_top_genes=100)
    space.save(tmp_path)
    back = RNASpace.load(tmp_path)
    assert back.genes == space.genes
    assert np.array_equal(back.transform(train_rna), space.transform(train_rna))


def test_wrong_gene_names(train_rna):
    space = RNASpace.fit(train_rna, n_latent=5, n_top_genes=50)
    other = train_rna.copy()
    other.var_names = [f"ENSG{i:06d}" for i in range(other.n_vars)]
    with pytest.raises(PhenoseqError, match=r"50 of the model's 50 genes are absent"):
        space.transform(other)


def test_expression_input_skips_normalisation(train_rna):
    expr = train_rna.copy()
    expr.X = np.log1p(expr.X.toarray())
    space = RNASpace.fit(expr, n_latent=5, n_top_genes=50, kind="expression")
    assert np.allclose(space.expression(expr), expr[:, space.genes].X)
    with pytest.raises(PhenoseqError, match="cannot sample counts"):
        space.sample_counts(np.zeros((1, 5)), 100)


def test_counts_are_int32_at_training_depths(train_rna):
    space = RNASpace.fit(train_rna, n_latent=10, n_top_genes=100)
    totals = np.asarray(train_rna.X.sum(axis=1)).ravel()
    assert len(space.library_sizes) == 101
    assert space.library_sizes[0] == totals.min() and space.library_sizes[-1] == totals.max()
    z = space.transform(train_rna[:40])
    counts = space.sample_counts(z)  # library sizes drawn from the training cells'
    assert counts.dtype == np.int32 and sp.isspmatrix_csr(counts) and counts.data.min() >= 0
    assert np.asarray(counts.sum(axis=1)).max() <= totals.max()
    lib = space.draw_library_sizes(1000, np.random.default_rng(0))
    assert totals.min() <= lib.min() and lib.max() <= totals.max()


def test_counts_for_seeds_are_fixed_by_each_cells_seed(train_rna):
    space = RNASpace.fit(train_rna, n_latent=10, n_top_genes=100)
    z = space.transform(train_rna[:30])
    seeds = np.repeat([7, 8, 9], 10)
    a = space.counts_for_seeds(z, seeds)
    assert (a != space.counts_for_seeds(z, seeds)).nnz == 0
    assert (a[10:20] != space.counts_for_seeds(z[10:20], seeds[10:20])).nnz == 0  # only a cell's group matters
    assert (a != space.counts_for_seeds(z, seeds + 1)).nnz > 0
    with pytest.raises(PhenoseqError, match="one seed per cell"):
        space.counts_for_seeds(z, seeds[:5])


def test_gene_metadata_keeps_plain_columns(train_rna):
    rna = train_rna.copy()
    rna.var["gene_ids"] = [f"ENSG{i:06d}" for i in range(rna.n_vars)]
    rna.var["feature_types"] = pd.Categorical(["Gene Expression"] * rna.n_vars)
    rna.var["length"] = np.arange(rna.n_vars, dtype=np.int64)
    rna.var["mt"] = False
    rna.var["gc"] = np.linspace(0.3, 0.6, rna.n_vars)
    rna.var["gaps"] = [None if i % 2 else "x" for i in range(rna.n_vars)]  # missing values: left out
    rna.var["nan"] = np.nan
    rna.var["highly_variable"] = True  # a statistic of the training cells: left out
    rna.var["means"] = 1.0
    space = RNASpace.fit(rna, n_latent=5, n_top_genes=50)
    assert list(space.gene_info) == ["gene_ids", "feature_types", "length", "mt", "gc"]
    var = space.var()
    assert var.index.tolist() == space.genes
    assert var["gene_ids"].tolist() == rna.var.loc[space.genes, "gene_ids"].tolist()
    assert var["feature_types"].iloc[0] == "Gene Expression" and var["length"].dtype == np.int64


def test_state_round_trip_with_and_without_new_fields(train_rna):
    rna = train_rna.copy()
    rna.var["gene_ids"] = [f"ENSG{i:06d}" for i in range(rna.n_vars)]
    space = RNASpace.fit(rna, n_latent=5, n_top_genes=50)
    tensors, meta = space.state()
    back = RNASpace.from_state(tensors, json.loads(json.dumps(meta, allow_nan=False)))  # strict JSON, as saved
    assert np.array_equal(back.library_sizes, space.library_sizes) and back.gene_info == space.gene_info
    z = space.transform(rna[:5])
    assert (back.counts_for_seeds(z, np.zeros(5)) != space.counts_for_seeds(z, np.zeros(5))).nnz == 0
    # A checkpoint written before these fields existed still loads: no gene columns, counts at target_sum.
    old = {k: v for k, v in meta.items() if k not in ("library_sizes", "gene_info")}
    legacy = RNASpace.from_state(tensors, old)
    assert legacy.library_sizes is None and legacy.gene_info == {} and legacy.var().shape == (50, 0)
    assert np.all(legacy.draw_library_sizes(3, np.random.default_rng(0)) == legacy.target_sum)
    assert legacy.sample_counts(z).shape == (5, 50)
    for bad in ({"library_sizes": [3.0, 1.0]}, {"library_sizes": [float("nan"), 1.0]},
                {"gene_info": {"gene_ids": ["a"]}}):
        with pytest.raises(PhenoseqError, match="checkpoint is damaged"):
            RNASpace.from_state(tensors, {**meta, **bad})
