"""RNA space: normalisation, gene selection, projection, decoding, and an exact save/load round trip."""

import numpy as np
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
    space = RNASpace.fit(expr, n_latent=5, n_top_genes=50, input="expression")
    assert np.allclose(space.expression(expr), expr[:, space.genes].X)
    with pytest.raises(PhenoseqError, match="cannot sample counts"):
        space.sample_counts(np.zeros((1, 5)), 100)
