"""Reading and atomically writing files: a failed write never leaves a partial file behind."""

from __future__ import annotations

import contextlib
import errno
import glob
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

import anndata as ad

from phenoseq.errors import PhenoseqError


# Errors of the file system that a user can act on (full disk, no permission, read-only or immutable place).
_WRITE_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG}


def _tmp_prefix(path: Path) -> str:
    return f".{path.name}."


def _remove_stale_tmp(path: Path) -> None:
    """Delete temporary files of ``path`` left by a writer that was killed (its pid is in the name)."""
    for tmp in path.parent.glob(f"{glob.escape(_tmp_prefix(path))}*.tmp"):
        pid = tmp.name[len(_tmp_prefix(path)):].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            with contextlib.suppress(OSError):
                tmp.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def _write_error(exc: BaseException) -> OSError | None:
    """The actionable OSError behind ``exc``, or None. Libraries wrap it: anndata and h5py chain it, and
    safetensors (Rust) raises its own type whose message ends in ``(os error 28)``."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in _WRITE_ERRORS:
            return exc
        code = re.search(r"os error (\d+)", str(exc))
        if code and int(code.group(1)) in _WRITE_ERRORS:
            return OSError(int(code.group(1)), os.strerror(int(code.group(1))))
        exc = exc.__cause__ or exc.__context__
    return None


def _refuse_inputs(path: Path, inputs: tuple, message: str) -> None:
    """A derived file never replaces one of the files it was made from."""
    for src in inputs:
        if src is not None and Path(src).exists() and path.exists() and path.resolve() == Path(src).resolve():
            raise PhenoseqError(f"{message}; choose another output path")


def check_destination(path: str | os.PathLike, overwrite: bool = False, inputs: tuple = (), option: str = "--out",
                      folder: bool = False) -> Path:
    """Refuse, before any long work, an output that cannot or must not be written; return it as a Path.

    Refused: an existing output unless ``overwrite`` (an existing non-empty folder when ``folder``); one of
    ``inputs``; a folder where a file is wanted, or the reverse; a parent that is a file; a place this process
    cannot create files in (permissions, read-only or immutable file systems, ``/proc``).
    """
    path = Path(path)
    _refuse_inputs(path, inputs, f"{option} {path} is one of the inputs")
    if path.exists():
        if folder and not path.is_dir():
            raise PhenoseqError(f"{option} {path} is a file; give a folder (a new or an empty one)")
        if not folder and path.is_dir():
            raise PhenoseqError(f"{option} {path} is a folder; give a file name (e.g. {path / 'out.h5ad'})")
        if not overwrite and (not folder or any(path.iterdir())):
            what = "is a folder that is not empty" if folder else "exists"
            raise PhenoseqError(f"{option} {path} {what}; choose a new path or pass --overwrite to replace it")
    parent = path if folder and path.is_dir() else path.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise PhenoseqError(f"{option} {path}: {parent} is a file, not a folder; choose an output inside a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=".phenoseq-write-check.", dir=parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise PhenoseqError(f"{option} {path}: cannot create files in {parent} ({exc.strerror}); choose a folder you "
                            "can write to") from exc
    return path


def check_free_space(path: str | os.PathLike, nbytes: int, what: str) -> None:
    """Refuse, before the work that makes it, an output of about ``nbytes`` that the disk under ``path`` cannot
    hold (the estimate has a 10% margin; a disk that fills up later still fails cleanly in :func:`atomic_path`)."""
    parent = Path(path)
    while not parent.exists():
        parent = parent.parent
    free = shutil.disk_usage(parent).free
    if nbytes * 1.1 > free:
        raise PhenoseqError(f"not enough free space for {what} in {parent}: it needs about {nbytes / 2**20:,.1f} MiB "
                            f"and {free / 2**20:,.1f} MiB are free; free some space or choose another place")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, inputs: tuple = ()) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it into place only if the block succeeds.

    ``inputs`` are files the operation reads: writing over one of them is refused, so a user's data is
    never replaced by a derived file. The temporary file carries this process's id, so one left behind by a
    killed writer is removed by the next write of the same path. A full disk or a refused write becomes a
    :class:`PhenoseqError` and nothing is left behind.
    """
    path = Path(path)
    _refuse_inputs(path, inputs, f"refusing to write {path}: it is one of the inputs")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_tmp(path)
        fd, tmp = tempfile.mkstemp(prefix=f"{_tmp_prefix(path)}{os.getpid()}-", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise PhenoseqError(f"cannot write {path} ({exc.strerror}); choose a folder you can write to") from exc
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # Writers such as safetensors replace the file (mode 0600): give the finished file the permissions of
        # any file the user creates.
        umask = os.umask(0)
        os.umask(umask)
        tmp_path.chmod(0o666 & ~umask)
        os.replace(tmp_path, path)
    except Exception as exc:
        cause = _write_error(exc)
        if cause is None:
            raise
        raise PhenoseqError(f"could not write {path} ({cause.strerror}); nothing was written there. Free some space "
                            "or choose another place") from exc
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_h5ad(adata: ad.AnnData, path: str | os.PathLike, inputs: tuple = ()) -> Path:
    """Write ``adata`` to ``path`` atomically (gzip-free: h5ad reads faster than it compresses)."""
    with atomic_path(path, inputs) as tmp:
        adata.write_h5ad(tmp)
    return Path(path)


def is_zarr_store(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a zarr store (a ``.zarr`` folder, or a folder with zarr v2/v3 metadata)."""
    path = Path(path)
    return path.is_dir() and (path.suffix == ".zarr" or any((path / m).exists() for m in (".zattrs", ".zgroup", "zarr.json")))


def read_h5ad(path: str | os.PathLike, backed: bool = False) -> ad.AnnData:
    """Read an AnnData from an ``.h5ad`` file or a ``.zarr`` store, with a clear error when it is missing or
    not AnnData.

    ``backed=True`` leaves an h5ad's X on disk (read-only), which keeps large imaging tables out of memory
    for summaries; a zarr store is read whole.
    """
    path = Path(path)
    if not path.exists():
        raise PhenoseqError(f"{path}: no such file")
    if path.is_dir():
        if not is_zarr_store(path):
            raise PhenoseqError(f"{path}: is a directory, expected an .h5ad file or a .zarr AnnData store")
        try:
            return ad.read_zarr(path)
        except Exception as exc:  # zarr raises several unrelated types for a folder that is not AnnData
            raise PhenoseqError(f"{path}: not a readable .zarr AnnData store ({type(exc).__name__}: {exc})") from exc
    try:
        return ad.read_h5ad(path, backed="r" if backed else None)
    except Exception as exc:  # h5py raises several unrelated types for a non-HDF5 file
        raise PhenoseqError(f"{path}: not a readable .h5ad (AnnData) file ({type(exc).__name__}: {exc})") from exc
