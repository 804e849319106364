"""Concatenate h5ad files along cells, one file at a time, into one h5ad (written atomically).

For the parts of a streamed or sharded run: every part has the same ``var``, ``uns`` and element layout, so the
result is what one ``AnnData`` written in one go would be — ``X``, every ``layers`` and ``obsm`` entry (dense or
CSR) stacked in the order given, ``obs`` concatenated (categorical columns keep the union of the parts'
categories, sorted when every part's are), ``var`` and ``uns`` from the first part. Memory: one part's largest
element at a time, plus ``obs``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import anndata as ad
import h5py
import pandas as pd
from pandas.api.types import union_categoricals

from phenoseq.errors import PhenoseqError
from phenoseq.io.files import atomic_path

_STACKED = ("X", "layers", "obsm")


def concat_h5ad(parts: Sequence[str | os.PathLike], out: str | os.PathLike, inputs: tuple = ()) -> Path:
    """Write the cells of ``parts`` (h5ad files, in this order) to ``out``; nothing appears at ``out`` on failure."""
    if not parts:
        raise PhenoseqError("no parts to concatenate")
    files = [h5py.File(p, "r") for p in parts]
    try:
        _check_layout(files, parts)
        with atomic_path(out, inputs) as tmp, h5py.File(tmp, "w") as dest:
            dest.attrs["encoding-type"], dest.attrs["encoding-version"] = "anndata", "0.1.0"
            ad.io.write_elem(dest, "obs", _concat_obs([ad.io.read_elem(f["obs"]) for f in files]))
            for key in ("var", "uns"):
                ad.io.write_elem(dest, key, ad.io.read_elem(files[0][key]) if key in files[0] else {})
            _stack(dest, "X", [f["X"] for f in files])
            for group in ("layers", "obsm"):
                if group in files[0]:
                    ad.io.write_elem(dest, group, {})  # an empty group with anndata's encoding attributes
                    for key in files[0][group]:
                        _stack(dest[group], key, [f[group][key] for f in files])
    finally:
        for f in files:
            f.close()
    return Path(out)


def _check_layout(files: list[h5py.File], parts: Sequence) -> None:
    """Every part must hold the same stacked elements with the same widths and var as the first."""
    def layout(f: h5py.File) -> list:
        keys = [("X",)] + [(g, k) for g in _STACKED[1:] if g in f for k in f[g]]
        return [(k, _width(f["/".join(k)])) for k in keys]

    first, var = layout(files[0]), ad.io.read_elem(files[0]["var"]).index
    for f, path in zip(files[1:], parts[1:]):
        if layout(f) != first or not ad.io.read_elem(f["var"]).index.equals(var):
            raise PhenoseqError(f"{path}: its genes or elements differ from {parts[0]}'s; these are not parts of one run")


def _width(elem) -> tuple:
    return tuple(elem.shape[1:]) if isinstance(elem, h5py.Dataset) else (int(elem.attrs["shape"][1]),)


def _stack(dest: h5py.Group, key: str, elems: list) -> None:
    """Stack one element of every part into ``dest[key]``: dense datasets row block by row block, CSR matrices
    by appending (anndata's on-disk sparse dataset)."""
    first = elems[0]
    if isinstance(first, h5py.Dataset):
        n = sum(e.shape[0] for e in elems)
        ds = dest.create_dataset(key, shape=(n, *first.shape[1:]), dtype=first.dtype)
        ds.attrs.update(first.attrs)
        start = 0
        for e in elems:
            ds[start:start + e.shape[0]] = e[...]
            start += e.shape[0]
        return
    if first.attrs.get("encoding-type") != "csr_matrix":
        raise PhenoseqError(f"cannot concatenate a {first.attrs.get('encoding-type')!r} element ({key}); "
                            "parts must hold dense arrays or CSR matrices")
    ad.io.write_elem(dest, key, ad.io.read_elem(first))
    target = ad.io.sparse_dataset(dest[key])
    for e in elems[1:]:
        target.append(ad.io.read_elem(e))


def _concat_obs(frames: list[pd.DataFrame]) -> pd.DataFrame:
    out = pd.concat(frames)
    for col in frames[0].columns:
        if isinstance(frames[0][col].dtype, pd.CategoricalDtype):
            cats = [f[col].array for f in frames]
            ordered = all(list(c.categories) == sorted(c.categories) for c in cats)
            out[col] = union_categoricals(cats, sort_categories=ordered)
    return out
