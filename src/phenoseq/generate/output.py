"""The synthetic-cell ``.h5ad`` contract every generator (diffusion model and baselines) writes.

One row per synthetic cell:

* ``obs``: the well's sample, treatment, replicate, batch and group values copied from the imaging file,
  plus ``phenoseq_seed`` (the seed that generated the cell);
* ``obsm["X_phenoseq"]``: the synthetic RNA latent, ``(n_cells, d)``;
* ``X``: decoded log1p(counts per 10k) expression over the model's genes (``var_names``); absent (0 columns)
  when the model works in a provided embedding space;
* ``var``: the model's genes, with the training ``var`` columns the RNA space kept (``gene_ids``,
  ``feature_types`` ...);
* ``layers["counts"]``: integer counts (CSR, int32) drawn around ``X``: Poisson at a library size drawn from the
  training cells' library sizes (10,000, the normalisation's target sum, for models saved before those were
  kept). Draws are seeded by ``phenoseq_seed``, so the same seed gives the same counts. These are what DE tools
  and scVI expect; they cover the model's genes only;
* ``uns["log1p"] = {"base": None}``: scanpy's marker that ``X`` is already natural-log transformed (a second
  ``sc.pp.log1p`` warns, and ``rank_genes_groups`` computes fold changes correctly);
* ``uns["phenoseq"]``: generator name and version, sampler, steps, guidance and other settings.

``layers``, ``uns["log1p"]`` and the gene columns are there only when the model works on counts
(``kind="counts"``); expression and embedding spaces leave them out.

Real and synthetic cells in one AnnData
---------------------------------------
Do not ``anndata.concat`` a real counts file with synthetic output: real ``X`` holds counts and synthetic
``X`` holds log values, and nothing would tell the two apart. :func:`concat_real_synthetic` puts both on the
same footing: ``X`` log1p(CP10k) for both (real cells normalised like the model's training cells),
``layers["counts"]`` counts for both, ``obs["phenoseq_source"]`` = ``"real"`` / ``"synthetic"``::

    both = concat_real_synthetic(real_rna, synthetic, model.rna_space)
    sc.pp.neighbors(both); sc.tl.umap(both); sc.pl.umap(both, color="phenoseq_source")
"""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from phenoseq.errors import PhenoseqError
from phenoseq.io import validate
from phenoseq.io.keys import ScreenKeys
from phenoseq.rna.space import RNASpace

LATENT_KEY = "X_phenoseq"
COUNTS_LAYER = "counts"
SOURCE_KEY = "phenoseq_source"
# scanpy's record of a log1p transform; base None = natural log, what log_normalise applies.
LOG1P = {"base": None}
# Joins a well's sample id and a set number ("<well>::set<j>") when the cells of a well are split into context
# sets that are generated for separately (the matched-context benchmark).
SET_SEPARATOR = "::set"


# Peak bytes per output value while cells are generated, decoded and written: a few float32 copies, plus
# up to 8 for layers["counts"] (an int32 value and column index per non-zero).
_BYTES_PER_VALUE = 24


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (Linux ``MemAvailable``), or None when unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def check_output_size(n_cells: int, n_genes: int, n_latent: int, available: int | None = None) -> None:
    """Refuse, before sampling, an output that cannot fit in memory; the message gives the estimate."""
    need = n_cells * (n_genes + n_latent) * _BYTES_PER_VALUE
    available = available_memory() if available is None else available
    if available is not None and need > available:
        raise PhenoseqError(
            f"{n_cells:,} synthetic cells × {n_genes + n_latent:,} values need about {need / 2**30:,.1f} GiB of "
            f"memory, and {available / 2**30:,.1f} GiB are available; lower --cells-per-well or generate for fewer "
            "wells at a time"
        )


def well_metadata(imaging: ad.AnnData, keys: ScreenKeys) -> pd.DataFrame:
    """One row per imaging well (index = sample id) with its key column values as strings."""
    cols = [c for c in keys.columns if c in imaging.obs.columns]
    return imaging.obs[cols].astype(str).groupby(keys.sample, sort=True, observed=True).first()


def synthetic_adata(
    latent: np.ndarray,
    samples: list[str],
    wells: pd.DataFrame,
    keys: ScreenKeys,
    seeds: np.ndarray,
    settings: dict,
    decode=None,
    genes: list[str] | None = None,
    extra_obs: dict[str, np.ndarray] | None = None,
    rna_space: RNASpace | None = None,
    counts: bool = True,
) -> ad.AnnData:
    """Assemble generated cells into the contract above.

    Parameters
    ----------
    latent
        ``(n, d)`` synthetic latents.
    samples
        Length-``n`` sample id of each synthetic cell; metadata comes from ``wells`` (see :func:`well_metadata`).
    decode
        Callable ``(n, d) → (n, G)`` expression; ``None`` leaves ``X`` empty (embedding spaces) unless
        ``rna_space`` is given.
    extra_obs
        More per-cell columns (confidence, out-of-distribution flags ...).
    rna_space
        The RNA space the latents live in; it supplies gene metadata, the log1p marker and sampled counts.
        Defaults to the space ``decode`` is a method of (``decode=space.decode``, as every generator passes).
    counts
        Sample ``layers["counts"]`` (a counts space only). ``False`` skips it, e.g. when only ``X`` is needed.
    """
    if rna_space is None and isinstance(getattr(decode, "__self__", None), RNASpace):
        rna_space = decode.__self__
    if rna_space is not None and decode is None and getattr(rna_space, "decode", None) is not None:
        decode = rna_space.decode
        genes = rna_space.genes if genes is None else genes
    obs = wells.loc[samples].reset_index()
    # Numbered within the well, so a well's cell names do not depend on which other wells are generated.
    within = pd.Series(samples).groupby(list(samples), sort=False).cumcount().to_numpy()
    obs.index = [f"syn-{s}-{i:05d}" for s, i in zip(samples, within)]
    obs["phenoseq_seed"] = np.asarray(seeds, dtype=np.int64)
    for name, values in (extra_obs or {}).items():
        obs[name] = values
    for col in keys.columns:
        if col in obs.columns:
            obs[col] = obs[col].astype("category")
    latent = np.asarray(latent, dtype=np.float32)
    _check_finite(latent, "latents", settings)
    if decode is not None:
        X = _decode_by_well(decode, latent, obs["phenoseq_seed"].to_numpy())
        _check_finite(X, "decoded expression", settings)
        var = pd.DataFrame(index=list(genes))
    else:
        X = np.zeros((len(samples), 0), dtype=np.float32)
        var = pd.DataFrame(index=[])
    # Counts-space extras only when X really is log1p(CP10k) over the space's own genes.
    on_counts = decode is not None and genes is not None and isinstance(rna_space, RNASpace) \
        and rna_space.kind == "counts" and list(genes) == list(rna_space.genes)
    if on_counts:
        var = rna_space.var()
    out = ad.AnnData(X=X, obs=obs, var=var)
    out.obsm[LATENT_KEY] = latent
    if on_counts:
        out.uns["log1p"] = dict(LOG1P)
        if counts:
            out.layers[COUNTS_LAYER] = rna_space.counts_for_seeds(latent, obs["phenoseq_seed"].to_numpy())
    out.uns["phenoseq"] = settings
    return out


def _decode_by_well(decode, latent: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """``decode`` applied to each run of cells sharing a seed (a well's cells): BLAS rounding depends on the
    matrix shape, and a well's expression must not depend on which other wells are generated with it."""
    bounds = np.flatnonzero(np.diff(seeds)) + 1
    return np.concatenate([np.asarray(decode(part), dtype=np.float32) for part in np.split(latent, bounds)])


def concat_real_synthetic(real: ad.AnnData, synthetic: ad.AnnData, rna_space: RNASpace,
                          real_layer: str | None = None) -> ad.AnnData:
    """Real and synthetic cells in one AnnData, on the same footing (see the module docstring).

    Parameters
    ----------
    real
        Real RNA cells with raw counts in ``X`` (or in ``layers[real_layer]``), with at least the model's genes;
        their library sizes are taken over all of their genes, as in training.
    synthetic
        Output of a generator using ``rna_space`` (with ``layers["counts"]``).
    rna_space
        The model's RNA space (``model.rna_space``); it must work on counts.

    Returns
    -------
    AnnData over the space's genes: ``X`` log1p(CP10k) and ``layers["counts"]`` (CSR int32) for all cells,
    ``obs`` = both obs tables (outer join) plus ``obs["phenoseq_source"]``, ``obsm["X_phenoseq"]`` (real cells
    projected into the space), ``var`` from the space, ``uns["log1p"]`` and the synthetic ``uns["phenoseq"]``.
    """
    if not isinstance(rna_space, RNASpace) or rna_space.kind != "counts":
        raise PhenoseqError("concat_real_synthetic needs a model that works on counts; this model's RNA space "
                            "has no counts (an embedding or expression space)")
    if synthetic.var_names.tolist() != list(rna_space.genes) or COUNTS_LAYER not in synthetic.layers:
        raise PhenoseqError(f"the synthetic cells must come from this model, with layers[{COUNTS_LAYER!r}]; they "
                            f"have {synthetic.n_vars} genes and layers {list(synthetic.layers.keys())}. Regenerate "
                            "them with this model")
    real = _counts_view(real, real_layer)
    x_real = rna_space.expression(real)  # normalised over all of real's genes, then the model's genes kept
    real_counts = real[:, rna_space.genes].X
    real_counts = sp.csr_matrix(real_counts, dtype=np.int32)
    real_obs, syn_obs = _comparable_obs(real.obs, synthetic.obs)
    obs = pd.concat([real_obs.assign(**{SOURCE_KEY: "real"}), syn_obs.assign(**{SOURCE_KEY: "synthetic"})])
    obs[SOURCE_KEY] = pd.Categorical(obs[SOURCE_KEY], categories=["real", "synthetic"])
    if obs.index.has_duplicates:
        raise PhenoseqError(f"real and synthetic cells share ids {validate.preview(obs.index[obs.index.duplicated()])}; "
                            "rename the real cells (real.obs_names) first")
    x_syn = synthetic.X.toarray() if sp.issparse(synthetic.X) else np.asarray(synthetic.X)
    out = ad.AnnData(X=np.vstack([x_real, x_syn.astype(np.float32)]), obs=obs, var=rna_space.var())
    out.layers[COUNTS_LAYER] = sp.vstack([real_counts, sp.csr_matrix(synthetic.layers[COUNTS_LAYER], dtype=np.int32)],
                                         format="csr")
    if LATENT_KEY in synthetic.obsm:
        out.obsm[LATENT_KEY] = np.vstack([rna_space.project(x_real), np.asarray(synthetic.obsm[LATENT_KEY])])
    out.uns["log1p"] = dict(LOG1P)
    if "phenoseq" in synthetic.uns:
        out.uns["phenoseq"] = synthetic.uns["phenoseq"]
    return out


def _counts_view(real: ad.AnnData, layer: str | None) -> ad.AnnData:
    """``real`` with its raw counts in ``X``, refused with the problems found when they are not counts."""
    if layer is not None:
        if layer not in real.layers:
            raise PhenoseqError(f"the real cells have no layers[{layer!r}]; their layers are {list(real.layers.keys())}")
        real = ad.AnnData(X=real.layers[layer], obs=real.obs, var=real.var)
    problems = validate.check_counts(real, "real cells", "X" if layer is None else f"layers[{layer!r}]")
    if problems:
        raise PhenoseqError("\n".join(problems))
    return real


def _comparable_obs(a: pd.DataFrame, b: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Copies in which columns the two share have one type: a replicate read as 3 in one and "3" in the other
    becomes text in both (as PairedScreen reads keys), so the joined column is neither mixed nor unwritable."""
    a, b = a.copy(), b.copy()
    for col in a.columns.intersection(b.columns):
        if a[col].dtype != b[col].dtype:
            a[col], b[col] = validate.key_text(a[col]), validate.key_text(b[col])
    # A flag or whole number only one side has (phenoseq_ood, phenoseq_seed) gets gaps in the other's rows:
    # nullable types keep it a flag/integer instead of turning it into floats or mixed objects.
    for frame, other in ((a, b), (b, a)):
        for col in frame.columns.difference(other.columns):
            if pd.api.types.is_bool_dtype(frame[col]):
                frame[col] = frame[col].astype("boolean")
            elif pd.api.types.is_integer_dtype(frame[col]):
                frame[col] = frame[col].astype("Int64")
    return a, b


def _check_finite(values: np.ndarray, what: str, settings: dict) -> None:
    """Never hand out NaN: a diverged sampler (e.g. an extreme guidance scale) is an error, not a result."""
    bad = ~np.isfinite(values)
    if bad.any():
        raise PhenoseqError(
            f"generation produced NaN/inf in {int(bad.any(axis=1).sum())} of {len(values)} cells' {what} "
            f"(generator {settings.get('model', '?')!r}, guidance {settings.get('guidance', 'n/a')}); nothing was "
            "written. Use a smaller guidance scale or more sampling steps, or retrain the model"
        )
