"""The RNA space the diffusion model generates in, and the way back to genes.

Forward (``transform``): counts → counts per 10k → log1p → the model's genes (highly variable genes)
→ centred PCA latent. Backward (``decode``): latent → log1p(counts per 10k) over the model's genes, and
optionally sampled counts. The PCA is fitted on training cells only, so no test cell shapes the space.

For data that is already normalised (bulk L1000 profiles, say) ``input="expression"`` skips the count
normalisation; everything else is the same.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import anndata as ad
import numpy as np
import scipy.sparse as sp

from phenoseq.errors import PhenoseqError

TARGET_SUM = 1e4


def log_normalise(X, target_sum: float = TARGET_SUM) -> np.ndarray:
    """log1p(counts per ``target_sum``) of a cells × genes count matrix (dense or sparse), as dense float32."""
    X = X.tocsr() if sp.issparse(X) else np.asarray(X)
    totals = np.asarray(X.sum(axis=1)).ravel().astype(np.float64)
    totals[totals == 0] = 1.0
    if sp.issparse(X):
        X = sp.diags(target_sum / totals) @ X
        return np.log1p(X.toarray()).astype(np.float32)
    return np.log1p(X * (target_sum / totals)[:, None]).astype(np.float32)


def highly_variable_genes(logx: np.ndarray, n_top: int, n_bins: int = 20) -> np.ndarray:
    """Indices (sorted) of the ``n_top`` genes with the highest mean-binned normalised dispersion.

    Dispersion is variance/mean of log-normalised expression, z-scored within bins of mean expression, so
    that highly expressed genes do not win by level alone (Seurat's rule, on log data).
    """
    n_genes = logx.shape[1]
    if n_top >= n_genes:
        return np.arange(n_genes)
    mean = logx.mean(axis=0)
    var = logx.var(axis=0, ddof=1)
    disp = np.log(np.maximum(var, 1e-12) / np.maximum(mean, 1e-12))
    n_bins = max(1, min(n_bins, n_genes // 10))  # a bin needs several genes for its z-score to mean anything
    bins = np.digitize(mean, np.quantile(mean, np.linspace(0, 1, n_bins + 1)[1:-1]))
    z = np.zeros_like(disp)
    for b in np.unique(bins):
        m = bins == b
        sd = disp[m].std()
        z[m] = (disp[m] - disp[m].mean()) / (sd if sd > 0 else 1.0)
    z[mean <= 0] = -np.inf
    return np.sort(np.argsort(-z, kind="stable")[:n_top])


@dataclass
class RNASpace:
    """A fitted RNA space.

    Attributes
    ----------
    genes
        The model's genes, in order (length ``G``).
    mean
        ``(G,)`` centring of the expression used before projection.
    components
        ``(d, G)`` orthonormal PCA loadings; the latent is ``(x - mean) @ components.T``.
    input
        ``"counts"`` (raw counts, normalised here) or ``"expression"`` (used as is).
    """

    genes: list[str]
    mean: np.ndarray
    components: np.ndarray
    input: str = "counts"
    target_sum: float = TARGET_SUM

    @property
    def n_latent(self) -> int:
        return int(self.components.shape[0])

    @classmethod
    def fit(
        cls,
        adata: ad.AnnData,
        n_latent: int = 50,
        n_top_genes: int = 2000,
        input: str = "counts",
        seed: int = 0,
    ) -> "RNASpace":
        """Fit on ``adata`` (the caller passes training cells only): pick genes, fit the PCA.

        ``adata.X`` holds counts (``input="counts"``) or normalised expression (``"expression"``).
        """
        from sklearn.decomposition import PCA

        if input not in ("counts", "expression"):
            raise PhenoseqError(f"input must be 'counts' or 'expression', got {input!r}")
        if adata.var_names.has_duplicates:
            dups = adata.var_names[adata.var_names.duplicated()].unique()[:5].tolist()
            raise PhenoseqError(f"gene names must be unique; duplicated: {dups}. Use adata.var_names_make_unique().")
        x = _expression(adata.X, input)
        genes = highly_variable_genes(x, n_top_genes)
        x = x[:, genes]
        n = min(n_latent, x.shape[0] - 1, x.shape[1])
        if n < 1:
            raise PhenoseqError(f"cannot fit an RNA space on {x.shape[0]} cells × {x.shape[1]} genes")
        pca = PCA(n_components=n, svd_solver="randomized" if min(x.shape) > 1000 else "full", random_state=seed)
        pca.fit(x)
        return cls(
            genes=adata.var_names[genes].tolist(),
            mean=pca.mean_.astype(np.float32),
            components=pca.components_.astype(np.float32),
            input=input,
        )

    def expression(self, adata: ad.AnnData) -> np.ndarray:
        """``(n_cells, G)`` log-normalised expression of ``adata`` over the model's genes.

        Normalisation uses every gene of ``adata`` (library size), then keeps the model's genes.
        """
        missing = [g for g in self.genes if g not in set(adata.var_names)]
        if missing:
            raise PhenoseqError(
                f"{len(missing)} of the model's {len(self.genes)} genes are absent from the data "
                f"(e.g. {missing[:5]}); gene names must match those the model was trained on "
                "(same identifiers: symbols vs Ensembl ids)."
            )
        idx = adata.var_names.get_indexer(self.genes)
        if self.input == "counts":
            return log_normalise(adata.X, self.target_sum)[:, idx]
        return _expression(adata.X[:, idx], "expression")

    def transform(self, adata: ad.AnnData) -> np.ndarray:
        """``(n_cells, d)`` float32 latent of ``adata``."""
        return self.project(self.expression(adata))

    def project(self, expression: np.ndarray) -> np.ndarray:
        """``(n, G)`` expression over the model's genes → ``(n, d)`` latent."""
        return ((expression - self.mean) @ self.components.T).astype(np.float32)

    def decode(self, latent: np.ndarray) -> np.ndarray:
        """``(n, d)`` latent → ``(n, G)`` expression (log1p counts per 10k when ``input="counts"``).

        Log-expression cannot be negative, so counts-space values are clipped at 0.
        """
        x = np.asarray(latent, dtype=np.float32) @ self.components + self.mean
        return np.maximum(x, 0.0) if self.input == "counts" else x

    def sample_counts(self, latent: np.ndarray, library_size: np.ndarray | float, seed: int = 0) -> sp.csr_matrix:
        """Poisson counts over the model's genes for decoded ``latent`` at the given library size(s)."""
        if self.input != "counts":
            raise PhenoseqError("this RNA space models normalised expression; it cannot sample counts")
        rate = np.expm1(self.decode(latent)) / self.target_sum
        rate *= np.reshape(np.asarray(library_size, dtype=np.float64), (-1, 1))
        return sp.csr_matrix(np.random.default_rng(seed).poisson(rate).astype(np.float32))

    # -- persistence: tensors and JSON, never pickle -------------------------------------------------
    def state(self) -> tuple[dict[str, np.ndarray], dict]:
        """(tensors, JSON-able metadata) for saving inside a model checkpoint."""
        tensors = {"rna.mean": self.mean, "rna.components": self.components}
        meta = {"genes": self.genes, "input": self.input, "target_sum": self.target_sum}
        return tensors, meta

    @classmethod
    def from_state(cls, tensors: dict[str, np.ndarray], meta: dict) -> "RNASpace":
        mean, comps = np.asarray(tensors["rna.mean"]), np.asarray(tensors["rna.components"])
        if comps.shape[1] != len(meta["genes"]) or mean.shape != (len(meta["genes"]),):
            raise PhenoseqError("RNA space tensors do not match its gene list; the checkpoint is damaged")
        return cls(genes=list(meta["genes"]), mean=mean, components=comps, input=meta["input"],
                   target_sum=float(meta["target_sum"]))

    def save(self, directory: str | Path) -> None:
        """Write ``rna_space.safetensors`` and ``rna_space.json`` into ``directory`` (atomically)."""
        from safetensors.numpy import save_file

        from phenoseq.io.files import atomic_path

        directory = Path(directory)
        tensors, meta = self.state()
        with atomic_path(directory / "rna_space.safetensors") as tmp:
            save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(tmp))
        with atomic_path(directory / "rna_space.json") as tmp:
            tmp.write_text(json.dumps(meta))

    @classmethod
    def load(cls, directory: str | Path) -> "RNASpace":
        from phenoseq.io.checkpoint import read_tensors

        directory = Path(directory)
        meta_path = directory / "rna_space.json"
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise PhenoseqError(f"{meta_path}: not a readable RNA space description ({exc})") from exc
        return cls.from_state(read_tensors(directory / "rna_space.safetensors"), meta)


def _expression(X, input: str) -> np.ndarray:
    if input == "counts":
        return log_normalise(X)
    dense = X.toarray() if sp.issparse(X) else np.asarray(X)
    return dense.astype(np.float32)


@dataclass
class EmbeddingSpace:
    """A provided per-cell RNA embedding (e.g. scGPT) used as the model's space, read from ``obsm[key]``.

    There is no way back to genes: :meth:`decode` is ``None``, so generated files carry the embedding in
    ``obsm["X_phenoseq"]`` and an empty ``X``.
    """

    key: str
    n_latent: int
    genes: tuple = ()
    decode = None

    @classmethod
    def fit(cls, adata: ad.AnnData, key: str) -> "EmbeddingSpace":
        return cls(key, int(_embedding(adata, key).shape[1]))

    def transform(self, adata: ad.AnnData) -> np.ndarray:
        emb = _embedding(adata, self.key)
        if emb.shape[1] != self.n_latent:
            raise PhenoseqError(
                f"obsm[{self.key!r}] has {emb.shape[1]} dimensions but the model was trained on {self.n_latent}"
            )
        return emb

    def expression(self, adata: ad.AnnData) -> np.ndarray:
        raise PhenoseqError(f"this model works in the embedding obsm[{self.key!r}]; it has no gene-level expression")

    def state(self) -> tuple[dict[str, np.ndarray], dict]:
        return {}, {"kind": "embedding", "key": self.key, "n_latent": self.n_latent}


def _embedding(adata: ad.AnnData, key: str) -> np.ndarray:
    if key not in adata.obsm:
        raise PhenoseqError(
            f"the RNA data has no obsm[{key!r}] embedding (obsm holds {list(adata.obsm.keys())}); "
            "name an existing key, or train in the PCA space of the counts"
        )
    emb = adata.obsm[key]
    emb = np.asarray(emb.toarray() if sp.issparse(emb) else emb, dtype=np.float32)
    if emb.ndim != 2 or not np.isfinite(emb).all():
        raise PhenoseqError(f"obsm[{key!r}] must be a finite cells × dims matrix, got shape {emb.shape}")
    return emb


def space_from_state(tensors: dict[str, np.ndarray], meta: dict) -> "RNASpace | EmbeddingSpace":
    """Rebuild either kind of space from a checkpoint."""
    if meta.get("kind") == "embedding":
        return EmbeddingSpace(meta["key"], int(meta["n_latent"]))
    return RNASpace.from_state(tensors, meta)
