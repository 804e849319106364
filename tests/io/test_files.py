"""Atomic writes and readable errors for files."""

import pytest

from phenoseq.errors import PhenoseqError
from phenoseq.io import atomic_path, read_h5ad, write_h5ad


def test_round_trip(tmp_path, small_screen_data):
    imaging, _ = small_screen_data
    path = write_h5ad(imaging, tmp_path / "a.h5ad")
    back = read_h5ad(path)
    assert back.shape == imaging.shape and (back.obs_names == imaging.obs_names).all()
    backed = read_h5ad(path, backed=True)
    assert backed.isbacked and backed.shape == imaging.shape


def test_written_files_get_ordinary_permissions(tmp_path):
    import os

    with atomic_path(tmp_path / "out.txt") as tmp:
        tmp.write_text("x")
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "out.txt").stat().st_mode & 0o777 == 0o666 & ~umask


def test_failed_write_leaves_nothing(tmp_path):
    target = tmp_path / "out.txt"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("partial")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_refuses_to_overwrite_an_input(tmp_path):
    src = tmp_path / "in.h5ad"
    src.write_text("user data")
    with pytest.raises(PhenoseqError, match="it is one of the inputs"):
        with atomic_path(src, inputs=(src,)):
            pass
    assert src.read_text() == "user data"


def test_read_errors(tmp_path):
    with pytest.raises(PhenoseqError, match="no such file"):
        read_h5ad(tmp_path / "missing.h5ad")
    bad = tmp_path / "bad.h5ad"
    bad.write_text("not hdf5")
    with pytest.raises(PhenoseqError, match="not a readable .h5ad"):
        read_h5ad(bad)


def test_zarr_stores_read_like_h5ad(tmp_path, small_screen_data):
    from phenoseq.io.readers.dispatch import detect_kind

    imaging, _ = small_screen_data
    store = tmp_path / "imaging.zarr"
    imaging.write_zarr(store)
    back = read_h5ad(store)
    assert back.shape == imaging.shape and (back.obs_names == imaging.obs_names).all()
    assert (back.X == imaging.X).all()
    assert detect_kind(store) == "h5ad"
    plain = tmp_path / "folder"
    plain.mkdir()
    with pytest.raises(PhenoseqError, match="expected an .h5ad file or a .zarr AnnData store"):
        read_h5ad(plain)
    (tmp_path / "empty.zarr").mkdir()
    with pytest.raises(PhenoseqError, match="not a readable .zarr AnnData store"):
        read_h5ad(tmp_path / "empty.zarr")
