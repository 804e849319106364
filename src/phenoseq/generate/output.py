"""The synthetic-cell ``.h5ad`` contract every generator (diffusion model and baselines) writes.

One row per synthetic cell:

* ``obs``: the well's sample, treatment, replicate, batch and group values copied from the imaging file,
  plus ``phenoseq_seed`` (the seed that generated the cell);
* ``obsm["X_phenoseq"]``: the synthetic RNA latent, ``(n_cells, d)``;
* ``X``: decoded log1p(counts per 10k) expression over the model's genes (``var_names``); absent (0 columns)
  when the model works in a provided embedding space;
* ``uns["phenoseq"]``: generator name and version, sampler, steps, guidance and other settings.
"""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd

from phenoseq.errors import PhenoseqError
from phenoseq.io.keys import ScreenKeys

LATENT_KEY = "X_phenoseq"
# Joins a well's sample id and a set number ("<well>::set<j>") when the cells of a well are split into context
# sets that are generated for separately (the matched-context benchmark).
SET_SEPARATOR = "::set"


# Peak bytes per output value while cells are generated, decoded and written (a few float32 copies).
_BYTES_PER_VALUE = 16


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
) -> ad.AnnData:
    """Assemble generated cells into the contract above.

    Parameters
    ----------
    latent
        ``(n, d)`` synthetic latents.
    samples
        Length-``n`` sample id of each synthetic cell; metadata comes from ``wells`` (see :func:`well_metadata`).
    decode
        Callable ``(n, d) → (n, G)`` expression; ``None`` leaves ``X`` empty (embedding spaces).
    extra_obs
        More per-cell columns (confidence, out-of-distribution flags ...).
    """
    obs = wells.loc[samples].reset_index()
    obs.index = [f"syn-{s}-{i:05d}" for i, s in enumerate(samples)]
    obs["phenoseq_seed"] = np.asarray(seeds, dtype=np.int64)
    for name, values in (extra_obs or {}).items():
        obs[name] = values
    for col in keys.columns:
        if col in obs.columns:
            obs[col] = obs[col].astype("category")
    latent = np.asarray(latent, dtype=np.float32)
    _check_finite(latent, "latents", settings)
    if decode is not None:
        X = np.asarray(decode(latent), dtype=np.float32)
        _check_finite(X, "decoded expression", settings)
        var = pd.DataFrame(index=list(genes))
    else:
        X = np.zeros((len(samples), 0), dtype=np.float32)
        var = pd.DataFrame(index=[])
    out = ad.AnnData(X=X, obs=obs, var=var)
    out.obsm[LATENT_KEY] = latent
    out.uns["phenoseq"] = settings
    return out


def _check_finite(values: np.ndarray, what: str, settings: dict) -> None:
    """Never hand out NaN: a diverged sampler (e.g. an extreme guidance scale) is an error, not a result."""
    bad = ~np.isfinite(values)
    if bad.any():
        raise PhenoseqError(
            f"generation produced NaN/inf in {int(bad.any(axis=1).sum())} of {len(values)} cells' {what} "
            f"(generator {settings.get('model', '?')!r}, guidance {settings.get('guidance', 'n/a')}); nothing was "
            "written. Use a smaller guidance scale or more sampling steps, or retrain the model"
        )
