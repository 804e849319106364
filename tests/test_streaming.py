"""Streamed generation: parts on disk equal one in-memory run byte for byte; shards merge to the unsharded
result; a run killed with SIGKILL finishes with --resume to the same files; bad runs are refused first."""

import signal
import subprocess
import sys
import time

import anndata as ad
import numpy as np
import pytest

from phenoseq import PhenoSeq
from phenoseq.cli import run
from phenoseq.errors import PhenoseqError
from phenoseq.io import PairedScreen
from phenoseq.streaming import (
    GenerationSettings,
    generate_to_disk,
    merge_parts,
    open_run,
    parse_shard,
    shard_chunks,
)


@pytest.fixture(scope="module")
def env(small_screen_data, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("stream")
    screen = PairedScreen(*small_screen_data)
    model = PhenoSeq(screen, preset="tiny", seed=0, max_epochs=1)
    model.train()
    model.save(tmp / "model")
    imaging = screen.imaging
    wells = sorted(imaging.obs["Sample_ID"].astype(str).unique())
    few = imaging[imaging.obs["Sample_ID"].astype(str).isin(wells[:12]).to_numpy()].copy()
    few.write_h5ad(tmp / "few.h5ad")  # 12 wells, for runs with many cells per well
    imaging.write_h5ad(tmp / "imaging.h5ad")
    return {"tmp": tmp, "model": tmp / "model", "few": tmp / "few.h5ad", "imaging": tmp / "imaging.h5ad"}


def _same(a: ad.AnnData, b: ad.AnnData) -> None:
    """Byte for byte: X, every obsm/layers entry, obs (names, values, dtypes), var and the settings in uns."""
    assert a.shape == b.shape and (a.obs_names == b.obs_names).all() and a.var.equals(b.var)
    assert a.obs.equals(b.obs) and list(a.obs.dtypes) == list(b.obs.dtypes)
    assert a.X.dtype == b.X.dtype and np.array_equal(a.X, b.X)
    for key in a.obsm:
        assert np.array_equal(a.obsm[key], b.obsm[key])
    for key in a.layers:
        x, y = a.layers[key], b.layers[key]
        if hasattr(x, "toarray"):
            assert (x != y).nnz == 0 and x.dtype == y.dtype
        else:
            assert np.array_equal(x, y)
    assert a.uns["phenoseq"] == b.uns["phenoseq"]


def _stream(env, out, shard=None, chunk_wells=None, cells=3, imaging="imaging", **kw):
    r = open_run(env["model"], env[imaging], out, GenerationSettings(cells_per_well=cells, seed=5), chunk_wells)
    return r, generate_to_disk(r, shard=shard, **kw)


def test_parts_equal_one_in_memory_run(env):
    """Chunks aligned to the sampler's network calls (4 wells of 1,024 cells each) change nothing."""
    model = PhenoSeq.load(env["model"])
    imaging = ad.read_h5ad(env["few"])
    syn = model.generate(imaging, cells_per_well=1024, seed=5)
    wells = model.wells(syn)
    out = env["tmp"] / "aligned.h5ad"
    r, made = _stream(env, out, chunk_wells=4, cells=1024, imaging="few")
    assert made == 3 and r.n_chunks == 3
    merge_parts(r.parts, out, env["tmp"] / "aligned.wells.h5ad")
    assert not r.parts.exists()
    _same(syn, ad.read_h5ad(out))
    _same(wells, ad.read_h5ad(env["tmp"] / "aligned.wells.h5ad"))


def test_shards_merge_to_the_unsharded_result(env, capsys):
    base = ["generate", "-m", str(env["model"]), "-i", str(env["imaging"]), "--cells-per-well", "3", "--seed", "5",
            "--chunk-wells", "16", "-q"]
    whole, sharded = env["tmp"] / "whole.h5ad", env["tmp"] / "sharded.h5ad"
    assert run(*base, "-o", str(whole)) == 0
    for i in (1, 3):
        assert run(*base, "-o", str(sharded), "--shard", f"{i}/3") == 0
    assert run("merge", "-o", str(sharded), "-q") == 2  # shard 2 is missing
    assert "not made yet" in capsys.readouterr().err and not sharded.exists()
    assert run(*base, "-o", str(sharded), "--shard", "2/3") == 0
    assert run("merge", "-o", str(sharded), "-q") == 0
    _same(ad.read_h5ad(whole), ad.read_h5ad(sharded))
    _same(ad.read_h5ad(env["tmp"] / "whole.wells.h5ad"), ad.read_h5ad(env["tmp"] / "sharded.wells.h5ad"))
    assert ad.read_h5ad(whole).obs["Sample_ID"].nunique() == 140


def test_a_killed_run_resumes_to_the_same_files(env):
    out, ref = env["tmp"] / "killed.h5ad", env["tmp"] / "ref.h5ad"
    args = ["-m", str(env["model"]), "-i", str(env["imaging"]), "--cells-per-well", "3", "--seed", "5",
            "--chunk-wells", "10", "-q"]
    assert run("generate", *args, "-o", str(ref)) == 0
    proc = subprocess.Popen([sys.executable, "-c", "import sys; from phenoseq.cli import main; sys.argv[0] = 'phenoseq'; main()",
                             "generate", *args, "-o", str(out)])
    parts = out.with_name(out.name + ".parts")
    deadline = time.monotonic() + 120
    while len(list(parts.glob("cells-*.h5ad"))) < 2 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL
    made = len(list(parts.glob("cells-*.h5ad")))
    assert 2 <= made < 14 and not out.exists()  # killed part-way: no final file
    assert run("generate", *args, "-o", str(out)) == 2  # an unfinished run is not silently restarted
    assert run("generate", *args, "-o", str(out), "--resume") == 0
    _same(ad.read_h5ad(ref), ad.read_h5ad(out))
    _same(ad.read_h5ad(env["tmp"] / "ref.wells.h5ad"), ad.read_h5ad(env["tmp"] / "killed.wells.h5ad"))
    assert not parts.exists()


def test_resume_refuses_another_run_and_bad_runs_leave_nothing(env, capsys):
    out = env["tmp"] / "other.h5ad"
    r, _ = _stream(env, out, shard=(0, 4), chunk_wells=16)
    assert r.parts.exists()
    with pytest.raises(Exception, match="differs in settings"):
        open_run_other = open_run(env["model"], env["imaging"], out, GenerationSettings(cells_per_well=3, seed=6), 16)
        generate_to_disk(open_run_other, resume=True)
    base = ["generate", "-m", str(env["model"]), "-i", str(env["imaging"]), "-q"]
    assert run(*base, "-o", str(env["tmp"] / "g.h5ad"), "--guidance", "-1") == 2
    assert run(*base, "-o", str(env["tmp"] / "g.h5ad"), "--shard", "5/4") == 2
    assert run(*base, "-o", str(env["tmp"] / "g.h5ad"), "--shard", "1/2", "--overwrite") == 2
    assert not any(p.name.startswith("g.") for p in env["tmp"].iterdir())


def test_shards_cover_every_chunk_once():
    for n_chunks in (1, 7, 30):
        for n in (1, 3, 8):
            covered = [k for i in range(n) for k in shard_chunks(n_chunks, (i, n))]
            assert covered == list(range(n_chunks))
    assert parse_shard("3/8") == (2, 8)
    for bad in ("0/3", "4/3", "a/b", "3"):
        with pytest.raises(Exception, match="--shard"):
            parse_shard(bad)


def test_shard_rank_is_the_torchrun_process_share(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(PhenoseqError, match="--shard rank takes the shard from torchrun"):
        parse_shard("rank")
    monkeypatch.setenv("RANK", "2")
    monkeypatch.setenv("WORLD_SIZE", "4")
    assert parse_shard("rank") == (2, 4)


def test_a_zarr_imaging_store_streams_like_h5ad(env):
    """A .zarr store is read whole (no backed mode) and gives the same files as the .h5ad it was made from."""
    store = env["tmp"] / "few.zarr"
    ad.read_h5ad(env["few"]).write_zarr(store)
    outs = []
    for name, src in (("from_h5ad", env["few"]), ("from_zarr", store)):
        out = env["tmp"] / f"{name}.h5ad"
        assert run("generate", "-m", str(env["model"]), "-i", str(src), "-o", str(out), "--cells-per-well", "3",
                   "--seed", "5", "-q") == 0
        outs.append(ad.read_h5ad(out))
    _same(*outs)
