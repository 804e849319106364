"""scGeneScope-style ``.h5ad`` files (per-cell image embeddings; RNA counts and/or scGPT-like embeddings).

Layout read: imaging ``.h5ad`` whose ``X`` or an ``obsm`` key holds per-cell image embeddings (e.g. 5120
dims); RNA ``.h5ad`` with raw counts in ``X`` and/or an embedding in ``obsm`` (e.g. ``"scGPT"``, 512 dims);
obs ``cell_id``, ``Treatment``, ``Replicate``, ``batch``, ``Group`` and optionally ``Sample_ID``.

Layout written (phenoseq standard): imaging ``X`` = the embedding as dense float32 (``var_names``
``"<key>_<i>"`` when it came from obsm); RNA ``X`` = the counts when present, and the RNA embedding always
under ``obsm[EMBEDDING_KEY]`` (``"X_embedding"``), so the model can choose its training space with
:func:`training_matrix`. Without counts the RNA embedding is also ``X`` and the file is continuous
(``rna_kind = "expression"``).
"""

from __future__ import annotations

import os

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from phenoseq.errors import PhenoseqError
from phenoseq.io.files import read_h5ad
from phenoseq.io.keys import ScreenKeys
from phenoseq.io.readers.annotate import Annotation, assign_keys
from phenoseq.io.readers.tables import check_names, clean_obs
from phenoseq.io.validate import preview

EMBEDDING_KEY = "X_embedding"
"""obsm key of a precomputed per-cell RNA embedding (e.g. scGPT) in phenoseq's standard RNA AnnData."""


def _is_counts(X) -> bool:
    data = X.data if sp.issparse(X) else np.asarray(X)
    return bool(data.size) and np.issubdtype(data.dtype, np.number) and bool(
        np.all(np.isfinite(data)) and np.all(data >= 0) and np.all(data == np.round(data))
    )


def _embedding(adata: ad.AnnData, key: str | None, source: str, option: str) -> tuple[str, np.ndarray] | None:
    """(key, cells × dims float32) of the requested obsm entry; ``key=None`` → None."""
    if key is None:
        return None
    if key not in adata.obsm:
        raise PhenoseqError(
            f"{source}: no obsm[{key!r}] ({option}); obsm holds {preview(list(adata.obsm.keys()))}. "
            "Name one of those, or leave the option out to use X."
        )
    emb = adata.obsm[key]
    emb = emb.toarray() if sp.issparse(emb) else np.asarray(emb)
    if emb.ndim != 2 or emb.shape[0] != adata.n_obs:
        raise PhenoseqError(f"{source}: obsm[{key!r}] has shape {emb.shape}, expected ({adata.n_obs}, dims).")
    if not np.issubdtype(emb.dtype, np.number):
        raise PhenoseqError(f"{source}: obsm[{key!r}] holds {emb.dtype} values, expected numbers.")
    return key, emb.astype(np.float32)


def _only_obsm_key(adata: ad.AnnData, source: str) -> str:
    keys = [k for k in adata.obsm.keys() if np.ndim(adata.obsm[k]) == 2]
    if len(keys) != 1:
        raise PhenoseqError(
            f"{source}: X is empty and obsm holds {preview(keys)}; name the embedding to use "
            "(imaging_embedding / rna_embedding, CLI --embedding)."
        )
    return keys[0]


def _standard_obs(adata: ad.AnnData, keys: ScreenKeys, annotation: Annotation, source: str) -> pd.DataFrame:
    obs = clean_obs(adata.obs)
    if "cell_id" in obs.columns:
        obs.index = check_names(obs["cell_id"].tolist(), source, "cell ids (obs 'cell_id')", "Cell ids must be unique.")
    else:
        obs.index = check_names(list(adata.obs_names), source, "cell ids (obs_names)", "Cell ids must be unique.")
    parts = [keys.treatment, keys.replicate, keys.batch]
    if keys.sample not in obs.columns and all(c in obs.columns for c in parts):
        # scGeneScope has one well per (treatment, replicate, round); the id keeps all three readable.
        obs[keys.sample] = obs[parts].astype(str).agg("|".join, axis=1)
    return assign_keys(obs, keys, annotation, source)


def standardise_scgenescope(
    adata: ad.AnnData,
    modality: str,
    embedding: str | None = None,
    keys: ScreenKeys | None = None,
    annotation: Annotation | None = None,
    source: str = "scGeneScope file",
) -> ad.AnnData:
    """Bring one scGeneScope-style AnnData into phenoseq's standard layout (see the module docstring).

    Parameters
    ----------
    adata
        Cells × (features or genes), obs as described in the module docstring.
    modality
        ``"imaging"`` or ``"rnaseq"``.
    embedding
        obsm key of the embedding to use (imaging: becomes X; RNA: stored as ``obsm[EMBEDDING_KEY]``).
        None: imaging uses X (or the only obsm entry when X is empty); RNA keeps X only.
    keys, annotation
        Key column names; ``Sample_ID`` is built as ``"<Treatment>|<Replicate>|<batch>"`` when absent, Group
        from ``annotation.controls`` when absent.

    Returns
    -------
    A new AnnData: imaging cells × embedding dims (dense float32), or RNA cells × genes (counts as given,
    sparse kept) with the embedding in ``obsm[EMBEDDING_KEY]``. ``uns["phenoseq_input"]`` records the
    source, modality, ``rna_kind`` and the embedding's original key and size.
    """
    keys = keys or ScreenKeys()
    annotation = annotation or Annotation()
    if modality not in ("imaging", "rnaseq"):
        raise PhenoseqError(f"modality must be 'imaging' or 'rnaseq', got {modality!r}")
    adata = adata.to_memory() if adata.isbacked else adata
    obs = _standard_obs(adata, keys, annotation, source)
    has_x = adata.X is not None and adata.n_vars > 0
    if embedding is None and not has_x:
        embedding = _only_obsm_key(adata, source)
    picked = _embedding(adata, embedding, source, "imaging_embedding" if modality == "imaging" else "rna_embedding")
    info: dict = {"source": source, "format": "scgenescope", "modality": modality, "controls": list(annotation.controls)}
    obsm = {k: v for k, v in adata.obsm.items() if k != embedding}
    if modality == "imaging":
        if picked is not None:
            key, emb = picked
            X, var = emb, pd.DataFrame(index=[f"{key}_{i}" for i in range(emb.shape[1])])
            info["embedding"] = {"source_key": key, "dims": int(emb.shape[1])}
        else:
            X = adata.X.toarray() if sp.issparse(adata.X) else np.asarray(adata.X)
            X, var = X.astype(np.float32), adata.var.copy()
        out = ad.AnnData(X=X, obs=obs, var=var, obsm={k: np.asarray(v) for k, v in obsm.items()})
    else:
        if picked is not None:
            key, emb = picked
            obsm[EMBEDDING_KEY] = emb
            info["embedding"] = {"key": EMBEDDING_KEY, "source_key": key, "dims": int(emb.shape[1])}
        if has_x:
            X, var = adata.X, adata.var.copy()
            info["rna_kind"] = "counts" if _is_counts(X) else "expression"
        else:
            X, var = picked[1], pd.DataFrame(index=[f"{picked[0]}_{i}" for i in range(picked[1].shape[1])])
            info["rna_kind"] = "expression"
        out = ad.AnnData(X=X, obs=obs, var=var, obsm=obsm, layers=dict(adata.layers) if has_x else None)
    out.uns["phenoseq_input"] = info
    return out


def read_scgenescope(
    imaging_path: str | os.PathLike | None = None,
    rnaseq_path: str | os.PathLike | None = None,
    imaging_embedding: str | None = None,
    rna_embedding: str | None = None,
    keys: ScreenKeys | None = None,
    annotation: Annotation | None = None,
) -> tuple[ad.AnnData | None, ad.AnnData | None]:
    """Read scGeneScope imaging and/or RNA ``.h5ad`` files into the standard layout.

    Returns ``(imaging, rnaseq)``; an entry is None when its path was not given. See
    :func:`standardise_scgenescope` for the layout of each.
    """
    if imaging_path is None and rnaseq_path is None:
        raise PhenoseqError("read_scgenescope needs an imaging file, an RNA file, or both")
    imaging = rnaseq = None
    if imaging_path is not None:
        imaging = standardise_scgenescope(read_h5ad(imaging_path), "imaging", imaging_embedding, keys, annotation, str(imaging_path))
    if rnaseq_path is not None:
        rnaseq = standardise_scgenescope(read_h5ad(rnaseq_path), "rnaseq", rna_embedding, keys, annotation, str(rnaseq_path))
    return imaging, rnaseq


def guess_modality(adata: ad.AnnData) -> str:
    """``"rnaseq"`` when X holds counts, else ``"imaging"`` (an RNA file with only an embedding must be named)."""
    return "rnaseq" if adata.X is not None and adata.n_vars > 0 and _is_counts(adata.X[: min(2000, adata.n_obs)]) else "imaging"


def training_matrix(adata: ad.AnnData, space: str = "auto") -> np.ndarray | sp.spmatrix:
    """The matrix a model trains on: ``"embedding"`` (``obsm[EMBEDDING_KEY]``), ``"X"``, or ``"auto"``
    (the embedding when present, else X). Shape cells × dims."""
    if space not in ("auto", "embedding", "X"):
        raise PhenoseqError(f"space must be 'auto', 'embedding' or 'X', got {space!r}")
    if space == "embedding" or (space == "auto" and EMBEDDING_KEY in adata.obsm):
        if EMBEDDING_KEY not in adata.obsm:
            raise PhenoseqError(
                f"no obsm[{EMBEDDING_KEY!r}] embedding in this AnnData (obsm has {preview(list(adata.obsm.keys()))}); "
                "convert the RNA file with rna_embedding=<obsm key> (CLI --embedding)."
            )
        return np.asarray(adata.obsm[EMBEDDING_KEY])
    return adata.X
