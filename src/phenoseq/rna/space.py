"""The RNA space the diffusion model generates in, and the way back to genes.

Forward (``transform``): counts → counts per 10k → log1p → the model's genes (highly variable genes)
→ centred PCA latent. Backward (``decode``): latent → log1p(counts per 10k) over the model's genes, and
optionally sampled counts. The PCA is fitted on training cells only, so no test cell shapes the space.

Counts are sampled (:meth:`RNASpace.sample_counts`, :meth:`RNASpace.counts_for_seeds`) as Poisson draws around
the decoded expression at a library size drawn from the training cells' library sizes, whose quantiles the
space keeps. The space also keeps the training ``var`` columns of its genes that are plain strings, numbers or
flags (``gene_ids``, ``feature_types`` ...), so synthetic output can carry them.

For data that is already normalised (bulk L1000 profiles, say) ``kind="expression"`` skips the count
normalisation; everything else is the same.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from phenoseq.errors import PhenoseqError
from phenoseq.rna.chunked import ROWS, covariance_pca, dense_expression, gene_moments

TARGET_SUM = 1e4
# Quantiles of the training library sizes kept in the space (0%, 1%, ..., 100%): enough to draw realistic
# depths, a few hundred bytes of JSON whatever the number of cells.
N_LIBRARY_QUANTILES = 101
# Mixed into the seed of each cell group so the counts stream never repeats the stream that drew its latents.
_COUNTS_STREAM = 0x636F756E7473
# Above this many dense values (cells × selected genes; 512 MB in float32) the PCA streams the covariance.
DENSE_PCA_LIMIT = 2**27
_ROWS_PER_DRAW = 4096  # rows of rates held at once while sampling counts
# Per-data-set statistics scanpy writes into var. They describe the training cells, not the genes, and
# ``highly_variable`` would silently subset a later sc.pp.pca of synthetic cells, so they are not carried.
_DATASET_STATISTICS = frozenset({
    "highly_variable", "highly_variable_rank", "highly_variable_nbatches", "highly_variable_intersection",
    "means", "dispersions", "dispersions_norm", "variances", "variances_norm", "mean", "std", "n_cells",
    "n_counts", "n_cells_by_counts", "mean_counts", "log1p_mean_counts", "pct_dropout_by_counts",
    "total_counts", "log1p_total_counts",
})


def log_normalise(X, target_sum: float = TARGET_SUM) -> np.ndarray:
    """log1p(counts per ``target_sum``) of a cells × genes count matrix (dense or sparse), as dense float32."""
    return dense_expression(X, "counts", target_sum, np.arange(X.shape[1]))


def highly_variable_genes(logx: np.ndarray, n_top: int, n_bins: int = 20) -> np.ndarray:
    """Indices (sorted) of the ``n_top`` genes of ``logx`` (cells × genes, log-normalised) with the highest
    mean-binned normalised dispersion (:func:`select_variable_genes` on its moments)."""
    logx = np.asarray(logx, dtype=np.float64)
    return select_variable_genes(logx.mean(axis=0), logx.var(axis=0, ddof=1), n_top, n_bins)


def select_variable_genes(mean: np.ndarray, var: np.ndarray, n_top: int, n_bins: int = 20) -> np.ndarray:
    """Indices (sorted) of the ``n_top`` genes with the highest mean-binned normalised dispersion, from each
    gene's ``mean`` and ``var`` of log-normalised expression.

    Dispersion is variance/mean of log-normalised expression, z-scored within bins of mean expression, so
    that highly expressed genes do not win by level alone (Seurat's rule, on log data). It needs only two
    moments per gene, so it runs in one streamed pass over any number of cells.
    """
    n_genes = len(mean)
    if n_top >= n_genes:
        return np.arange(n_genes)
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
    kind
        ``"counts"`` (raw counts, normalised here) or ``"expression"`` (used as is).
    library_sizes
        Quantiles (``N_LIBRARY_QUANTILES``, ascending) of the training cells' total counts over all genes;
        ``None`` for expression spaces and for spaces saved before they were kept (sampling then uses
        ``target_sum``).
    gene_info
        Training ``var`` columns of the model's genes (column → one plain value per gene).
    """

    genes: list[str]
    mean: np.ndarray
    components: np.ndarray
    kind: str = "counts"
    target_sum: float = TARGET_SUM
    library_sizes: np.ndarray | None = None
    gene_info: dict[str, list] = field(default_factory=dict)

    @property
    def n_latent(self) -> int:
        return int(self.components.shape[0])

    @classmethod
    def fit(
        cls,
        adata: ad.AnnData,
        n_latent: int = 50,
        n_top_genes: int = 2000,
        kind: str = "counts",
        seed: int = 0,
    ) -> "RNASpace":
        """Fit on ``adata`` (the caller passes training cells only): pick genes, fit the PCA.

        ``adata.X`` holds counts (``kind="counts"``) or normalised expression (``"expression"``): dense,
        sparse, or on disk (``anndata.read_h5ad(path, backed="r")``). The data are read in blocks of cells
        (:mod:`phenoseq.rna.chunked`) and a sparse matrix is never densified over all genes. Up to
        :data:`DENSE_PCA_LIMIT` values (cells × selected genes) the PCA is scikit-learn's on the dense selected
        genes; past it, the exact eigendecomposition of their streamed covariance, so memory stops growing with
        the number of cells.
        """
        from sklearn.decomposition import PCA

        if kind not in ("counts", "expression"):
            raise PhenoseqError(f"kind must be 'counts' or 'expression', got {kind!r}")
        if adata.var_names.has_duplicates:
            dups = adata.var_names[adata.var_names.duplicated()].unique()[:5].tolist()
            raise PhenoseqError(f"gene names must be unique; duplicated: {dups}. Use adata.var_names_make_unique().")
        moments = gene_moments(adata.X, kind, TARGET_SUM)
        genes = select_variable_genes(moments.mean, moments.var, n_top_genes)
        n = min(n_latent, adata.n_obs - 1, len(genes))
        if n < 1:
            raise PhenoseqError(f"cannot fit an RNA space on {adata.n_obs} cells × {len(genes)} genes")
        if adata.n_obs * len(genes) <= DENSE_PCA_LIMIT:
            x = dense_expression(adata.X, kind, TARGET_SUM, genes)
            pca = PCA(n_components=n, svd_solver="randomized" if min(x.shape) > 1000 else "full",
                      random_state=seed)
            pca.fit(x)
            mean, components = pca.mean_, pca.components_
        else:
            mean = moments.mean[genes]
            components = covariance_pca(adata.X, kind, TARGET_SUM, genes, mean, n)
        library = None
        if kind == "counts":
            library = np.quantile(moments.totals, np.linspace(0.0, 1.0, N_LIBRARY_QUANTILES))
        return cls(
            genes=adata.var_names[genes].tolist(),
            mean=mean.astype(np.float32),
            components=components.astype(np.float32),
            kind=kind,
            library_sizes=library,
            gene_info=plain_var_columns(adata.var.iloc[genes]),
        )

    def var(self) -> pd.DataFrame:
        """``var`` for cells over the model's genes: index = genes, columns = :attr:`gene_info`."""
        return pd.DataFrame(dict(self.gene_info), index=pd.Index(list(self.genes)))

    def expression(self, adata: ad.AnnData) -> np.ndarray:
        """``(n_cells, G)`` log-normalised expression of ``adata`` over the model's genes.

        Normalisation uses every gene of ``adata`` (library size), then keeps the model's genes.
        """
        return dense_expression(adata.X, self.kind, self.target_sum, self._gene_index(adata))

    def transform(self, adata: ad.AnnData) -> np.ndarray:
        """``(n_cells, d)`` float32 latent of ``adata``, projected block by block (dense, sparse or backed)."""
        idx = self._gene_index(adata)
        out = np.empty((adata.n_obs, self.n_latent), dtype=np.float32)
        for start in range(0, adata.n_obs, ROWS):
            block = adata.X[start:start + ROWS]
            out[start:start + block.shape[0]] = self.project(dense_expression(block, self.kind, self.target_sum, idx))
        return out

    def _gene_index(self, adata: ad.AnnData) -> np.ndarray:
        """Column of each of the model's genes in ``adata``; a clear error when any is absent."""
        missing = [g for g in self.genes if g not in set(adata.var_names)]
        if missing:
            raise PhenoseqError(
                f"{len(missing)} of the model's {len(self.genes)} genes are absent from the data "
                f"(e.g. {missing[:5]}); gene names must match those the model was trained on "
                "(same identifiers: symbols vs Ensembl ids)."
            )
        return adata.var_names.get_indexer(self.genes)

    def project(self, expression: np.ndarray) -> np.ndarray:
        """``(n, G)`` expression over the model's genes → ``(n, d)`` latent."""
        return ((expression - self.mean) @ self.components.T).astype(np.float32)

    def decode(self, latent: np.ndarray) -> np.ndarray:
        """``(n, d)`` latent → ``(n, G)`` expression (log1p counts per 10k when ``kind="counts"``).

        Log-expression cannot be negative, so counts-space values are clipped at 0.
        """
        x = np.asarray(latent, dtype=np.float32) @ self.components + self.mean
        return np.maximum(x, 0.0) if self.kind == "counts" else x

    def draw_library_sizes(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` library sizes from the training cells' distribution (``target_sum`` when it is unknown)."""
        if self.library_sizes is None:
            return np.full(n, self.target_sum)
        q = np.asarray(self.library_sizes, dtype=np.float64)
        return np.interp(rng.random(n), np.linspace(0.0, 1.0, len(q)), q)

    def sample_counts(self, latent: np.ndarray, library_size: np.ndarray | float | None = None,
                      seed: int = 0) -> sp.csr_matrix:
        """Poisson counts (CSR, int32) over the model's genes for decoded ``latent``.

        ``library_size``: one per cell or one for all; ``None`` draws them from the training cells' sizes.
        """
        return self._sample(latent, library_size, np.random.default_rng(seed))

    def counts_for_seeds(self, latent: np.ndarray, seeds: np.ndarray) -> sp.csr_matrix:
        """Counts (CSR, int32) for cells whose ``seeds`` (one per cell) fix their draws.

        Cells sharing a seed (a generated well's cells) are drawn together from one stream, in their order, so
        the same latents and seeds give the same counts whichever other cells are sampled with them.
        """
        latent = np.asarray(latent, dtype=np.float32)
        seeds = np.asarray(seeds).astype(np.int64).ravel()
        if len(seeds) != len(latent):
            raise PhenoseqError(f"{len(seeds)} seeds for {len(latent)} cells; give one seed per cell")
        if not len(seeds):
            return sp.csr_matrix((0, len(self.genes)), dtype=np.int32)
        _, inverse = np.unique(seeds, return_inverse=True)
        order = np.argsort(inverse, kind="stable")
        groups = np.split(order, np.flatnonzero(np.diff(inverse[order])) + 1)
        blocks = [self._sample(latent[idx], None, np.random.default_rng([int(seeds[idx[0]]) % 2**63, _COUNTS_STREAM]))
                  for idx in groups]
        return sp.vstack(blocks, format="csr")[np.argsort(order)]

    def _sample(self, latent: np.ndarray, library_size, rng: np.random.Generator) -> sp.csr_matrix:
        if self.kind != "counts":
            raise PhenoseqError("this RNA space models normalised expression; it cannot sample counts")
        latent = np.asarray(latent, dtype=np.float32)
        if library_size is None:
            library = self.draw_library_sizes(len(latent), rng)
        else:
            library = np.broadcast_to(np.asarray(library_size, dtype=np.float64).ravel(), (len(latent),))
        blocks = []
        for start in range(0, len(latent), _ROWS_PER_DRAW):  # bounded memory: rates are dense float64
            lib = library[start:start + _ROWS_PER_DRAW, None]
            rate = np.expm1(self.decode(latent[start:start + _ROWS_PER_DRAW]).astype(np.float64))
            # No gene gets more than the whole library: this keeps a wild latent from overflowing int32.
            rate = np.minimum(rate * (lib / self.target_sum), lib)
            blocks.append(sp.csr_matrix(rng.poisson(rate).astype(np.int32)))
        if not blocks:
            return sp.csr_matrix((0, len(self.genes)), dtype=np.int32)
        return sp.vstack(blocks, format="csr")

    # -- persistence: tensors and JSON, never pickle -------------------------------------------------
    def state(self) -> tuple[dict[str, np.ndarray], dict]:
        """(tensors, JSON-able metadata) for saving inside a model checkpoint."""
        tensors = {"rna.mean": self.mean, "rna.components": self.components}
        meta = {"genes": self.genes, "kind": self.kind, "target_sum": self.target_sum,
                "gene_info": self.gene_info}
        if self.library_sizes is not None:
            meta["library_sizes"] = [float(v) for v in self.library_sizes]
        return tensors, meta

    @classmethod
    def from_state(cls, tensors: dict[str, np.ndarray], meta: dict) -> "RNASpace":
        """Rebuild from :meth:`state`. ``library_sizes`` and ``gene_info`` may be absent (older checkpoints)."""
        mean, comps = np.asarray(tensors["rna.mean"]), np.asarray(tensors["rna.components"])
        n_genes = len(meta["genes"])
        if comps.shape[1] != n_genes or mean.shape != (n_genes,):
            raise PhenoseqError("RNA space tensors do not match its gene list; the checkpoint is damaged")
        library = meta.get("library_sizes")
        if library is not None:
            library = np.asarray(library, dtype=np.float64)
            if library.ndim != 1 or len(library) < 2 or not np.isfinite(library).all() or (library < 0).any() \
                    or (np.diff(library) < 0).any():
                raise PhenoseqError("the RNA space's library sizes are not ascending non-negative numbers; "
                                    "the checkpoint is damaged")
        gene_info = meta.get("gene_info") or {}
        if not isinstance(gene_info, dict) or any(not isinstance(v, list) or len(v) != n_genes for v in gene_info.values()):
            raise PhenoseqError("the RNA space's gene metadata does not match its gene list; the checkpoint is damaged")
        kind = meta.get("kind", meta.get("input"))  # models saved before the rename call it "input"
        return cls(genes=list(meta["genes"]), mean=mean, components=comps, kind=kind,
                   target_sum=float(meta["target_sum"]), library_sizes=library, gene_info=dict(gene_info))

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


def plain_var_columns(var: pd.DataFrame) -> dict[str, list]:
    """The columns of ``var`` that can live in JSON unchanged: strings, whole numbers, finite floats, flags.

    Columns with missing values, mixed types or per-data-set statistics (see ``_DATASET_STATISTICS``) are left
    out rather than converted, so what is kept reads back exactly as it was.
    """
    out: dict[str, list] = {}
    for name in var.columns:
        col = var[name]
        if not isinstance(name, str) or name in _DATASET_STATISTICS or col.isna().any():
            continue
        if isinstance(col.dtype, pd.CategoricalDtype):
            col = col.astype(col.cat.categories.dtype)
        if pd.api.types.is_bool_dtype(col) or pd.api.types.is_integer_dtype(col):
            out[name] = col.tolist()
        elif pd.api.types.is_float_dtype(col):
            if np.isfinite(col.to_numpy()).all():  # JSON has no NaN/inf (model.json is written strictly)
                out[name] = col.tolist()
        elif all(isinstance(v, str) for v in col):
            out[name] = [str(v) for v in col]
    return out


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
    kind = "embedding"  # RNASpace.kind's third value (a class constant, not a field)

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
        return {}, {"kind": self.kind, "key": self.key, "n_latent": self.n_latent}


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
