"""Reading and atomically writing files: a failed write never leaves a partial file behind."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator

import anndata as ad

from phenoseq.errors import PhenoseqError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, inputs: tuple = ()) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it into place only if the block succeeds.

    ``inputs`` are files the operation reads: writing over one of them is refused, so a user's data is
    never replaced by a derived file.
    """
    path = Path(path)
    for src in inputs:
        if src is not None and Path(src).exists() and path.exists() and path.resolve() == Path(src).resolve():
            raise PhenoseqError(f"refusing to write {path}: it is one of the inputs; choose another output path")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    # mkstemp creates 0600; the finished file should get the permissions of any file the user creates.
    umask = os.umask(0)
    os.umask(umask)
    tmp_path.chmod(0o666 & ~umask)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_h5ad(adata: ad.AnnData, path: str | os.PathLike, inputs: tuple = ()) -> Path:
    """Write ``adata`` to ``path`` atomically (gzip-free: h5ad reads faster than it compresses)."""
    with atomic_path(path, inputs) as tmp:
        adata.write_h5ad(tmp)
    return Path(path)


def read_h5ad(path: str | os.PathLike, backed: bool = False) -> ad.AnnData:
    """Read an ``.h5ad`` file with a clear error when it is missing or not an AnnData file.

    ``backed=True`` leaves X on disk (read-only), which keeps large imaging tables out of memory
    for summaries.
    """
    path = Path(path)
    if not path.exists():
        raise PhenoseqError(f"{path}: no such file")
    if path.is_dir():
        raise PhenoseqError(f"{path}: is a directory, expected an .h5ad file")
    try:
        return ad.read_h5ad(path, backed="r" if backed else None)
    except Exception as exc:  # h5py raises several unrelated types for a non-HDF5 file
        raise PhenoseqError(f"{path}: not a readable .h5ad (AnnData) file ({type(exc).__name__}: {exc})") from exc
