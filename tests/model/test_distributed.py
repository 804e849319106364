"""Data-parallel training: two gloo processes under torchrun train on disjoint cells, end with the same weights
and save a model that records its world size; a run is resumed only with the number of processes it had."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from phenoseq.errors import PhenoseqError
from phenoseq.model.distributed import Ranks, current_ranks

# Runs the real CLI in each torchrun process, recording which training cells the rank computed a loss on at
# each step and a digest of its final weights.
WORKER = textwrap.dedent("""
    import hashlib, json, os, sys
    import torch
    from phenoseq.cli import run
    from phenoseq.model import train

    seen, digest = [], {}
    loss, fit = train.Trainer.loss, train.Trainer.run

    def recording_loss(self, net, imaging, split, wells, idx, *args):
        if torch.is_grad_enabled():  # training steps, not validation
            seen.append([self.state.step, idx.reshape(-1).tolist()])
        return loss(self, net, imaging, split, wells, idx, *args)

    def recording_run(self, *args, **kwargs):
        state = fit(self, *args, **kwargs)
        weights = b"".join(p.detach().numpy().tobytes() for p in self.net.parameters())
        digest["net"] = hashlib.sha256(weights).hexdigest()
        return state

    train.Trainer.loss, train.Trainer.run = recording_loss, recording_run
    code = run("train", *sys.argv[2:])
    with open(os.path.join(sys.argv[1], f"rank{os.environ['RANK']}.json"), "w") as f:
        json.dump({"code": code, "seen": seen, "digest": digest.get("net")}, f)
    sys.exit(code)
""")


def _torchrun(tmp_path: Path, nproc: int, *args: str) -> subprocess.CompletedProcess:
    worker = tmp_path / "worker.py"
    worker.write_text(WORKER)
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env["OMP_NUM_THREADS"] = "1"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           str(worker), str(tmp_path), *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)


@pytest.fixture
def screen_files(small_screen_data, tmp_path):
    imaging, rnaseq = small_screen_data
    paths = tmp_path / "imaging.h5ad", tmp_path / "rnaseq.h5ad"
    imaging.write_h5ad(paths[0])
    rnaseq.write_h5ad(paths[1])
    return [str(p) for p in paths]


def test_shares_are_disjoint_and_cover_the_batch():
    for n in (1, 7, 16):
        for world in range(1, min(n, 5) + 1):
            rows = [np.arange(n)[Ranks(r, world).share(n)] for r in range(world)]
            assert np.array_equal(np.concatenate(rows), np.arange(n))
            assert max(map(len, rows)) - min(map(len, rows)) <= 1


def test_ranks_come_from_torchrun_or_are_refused(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    assert current_ranks() == Ranks()
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "4")
    assert current_ranks() == Ranks(1, 4, 0) and not current_ranks().is_main
    monkeypatch.setenv("RANK", "4")
    with pytest.raises(PhenoseqError, match="do not describe a process"):
        current_ranks()
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(PhenoseqError, match="WORLD_SIZE='two' must be a whole number"):
        current_ranks()


def test_two_gloo_processes_train_on_disjoint_cells_and_agree(screen_files, tmp_path):
    out = tmp_path / "model"
    result = _torchrun(tmp_path, 2, "-i", screen_files[0], "-r", screen_files[1], "-o", str(out),
                       "--preset", "tiny", "--max-epochs", "2", "--device", "cpu")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert all(r["code"] == 0 for r in ranks)
    steps = [dict((step, set(cells)) for step, cells in r["seen"]) for r in ranks]
    assert steps[0].keys() == steps[1].keys() and len(steps[0]) >= 16  # the same steps, 8+ per epoch
    for step in steps[0]:
        assert steps[0][step] and steps[1][step] and not steps[0][step] & steps[1][step]
    assert ranks[0]["digest"] == ranks[1]["digest"]

    from phenoseq import PhenoSeq

    meta = json.loads((out / "model.json").read_text())
    assert meta["world_size"] == 2 and meta["trainer"]["train_state"]["epoch"] == 2
    model = PhenoSeq.load(out)
    assert model.world_size == 2 and model.calibration is not None

    # A data-parallel run continues only with as many processes: one process is refused before any work.
    from phenoseq.cli import run

    args = ("train", "-i", screen_files[0], "-r", screen_files[1], "-o", str(out), "--resume", "--max-epochs", "3",
            "-q")
    before = (out / "model.safetensors").read_bytes()
    assert run(*args) == 2
    assert (out / "model.safetensors").read_bytes() == before


@pytest.mark.skipif(shutil.which("phenoseq") is None, reason="the phenoseq command is not on PATH")
def test_the_documented_torchrun_command_runs(screen_files, tmp_path):
    out = tmp_path / "model"
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env["OMP_NUM_THREADS"] = "1"
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "--no-python",
         "phenoseq", "train", "-i", screen_files[0], "-r", screen_files[1], "-o", str(out), "--preset", "tiny",
         "--max-epochs", "1", "--device", "cpu"],
        capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("trained 1 epochs") == 1 and "on 2 processes" in result.stdout
    assert json.loads((out / "model.json").read_text())["world_size"] == 2
