"""Data-parallel training: three gloo processes under torchrun train on disjoint cells, end with the same weights
and save a model that records its world size; an interrupted run resumes exactly, and only with the number of
processes it had."""

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
import torch

from phenoseq import PhenoSeq
from phenoseq.cli import run
from phenoseq.errors import PhenoseqError
from phenoseq.io.checkpoint import read_tensors
from phenoseq.model.distributed import Ranks, current_ranks

# The installed phenoseq command, as the README runs it: the one beside this interpreter (pip install puts it
# there), else the one on PATH.
_BESIDE = Path(sys.executable).with_name("phenoseq")
PHENOSEQ = str(_BESIDE) if _BESIDE.is_file() else shutil.which("phenoseq")

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
    if sys.argv[2] == "api-part":  # 2 epochs of a 4-epoch run, saved as an interrupted run is
        from phenoseq import PhenoSeq
        from phenoseq.io import PairedScreen
        screen = PairedScreen.read(sys.argv[3], sys.argv[4])
        PhenoSeq(screen, preset="tiny", max_epochs=4).train(max_epochs=2, checkpoint_dir=sys.argv[5], device="cpu")
        sys.exit(0)
    code = run(*sys.argv[2:])
    with open(os.path.join(sys.argv[1], f"rank{os.environ['RANK']}.json"), "w") as f:
        json.dump({"code": code, "seen": seen, "digest": digest.get("net")}, f)
    sys.exit(code)
""")


def _torchrun(tmp_path: Path, nproc: int, *args: str) -> subprocess.CompletedProcess:
    """``torchrun`` with ``args`` (``--no-python phenoseq ...``), or the recording worker with ``args``."""
    if args[0] != "--no-python":
        worker = tmp_path / "worker.py"
        worker.write_text(WORKER)
        args = (str(worker), str(tmp_path), *args)
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env["OMP_NUM_THREADS"] = "1"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", *args]
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


def test_share_weights_make_the_ranks_mean_gradient_the_batch_mean():
    rng = np.random.default_rng(0)
    for n, world in ((16, 3), (7, 2), (5, 5), (9, 4)):
        losses = rng.random(n)  # one loss per well of a batch (all wells hold as many cells)
        ranks = [Ranks(r, world) for r in range(world)]
        averaged = sum(r.share_weight(n) * losses[r.share(n)].mean() for r in ranks) / world
        assert np.isclose(averaged, losses.mean())
    assert Ranks().share_weight(7) == 1.0


def test_more_processes_than_wells_in_a_batch_are_refused_before_any_step(small_screen):
    from phenoseq.model.train import Split

    model = PhenoSeq(small_screen, preset="tiny", seed=0)  # a batch of 16 wells
    wells = small_screen.wells_in("train")
    imaging = model._imaging(small_screen.subset("imaging", wells))
    train = model._split(imaging, "train")
    before = {k: v.clone() for k, v in model.denoiser.state_dict().items()}
    with pytest.raises(PhenoseqError, match="holds 16 wells, fewer than the 17 processes"):
        model.trainer.run(imaging, train, Split(train.latents[:0], train.well_codes[:0]), ranks=Ranks(0, 17))
    assert model.training_state.step == 0
    assert all(torch.equal(v, model.denoiser.state_dict()[k]) for k, v in before.items())


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


@pytest.mark.skipif(PHENOSEQ is None, reason="the phenoseq command is not installed (pip install -e .)")
def test_three_gloo_processes_train_on_disjoint_cells_agree_and_resume_exactly(screen_files, tmp_path):
    # Three ranks: a batch of 16 wells splits 6/5/5, so the share weights matter, and sums of three gradients
    # round by position, which exact resume must survive.
    full, part = tmp_path / "full", tmp_path / "part"
    data = ["-i", screen_files[0], "-r", screen_files[1]]
    result = _torchrun(tmp_path, 3, "train", *data, "-o", str(full), "--preset", "tiny", "--max-epochs", "4",
                       "--device", "cpu")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(3)]
    steps = [dict((step, set(cells)) for step, cells in r["seen"]) for r in ranks]
    assert steps[0].keys() == steps[1].keys() == steps[2].keys() and len(steps[0]) >= 32  # 8+ steps an epoch
    for step in steps[0]:
        cells = [r[step] for r in steps]
        assert all(cells) and sum(map(len, cells)) == len(set().union(*cells))  # disjoint shares
    assert ranks[0]["digest"] == ranks[1]["digest"] == ranks[2]["digest"]
    meta = json.loads((full / "model.json").read_text())
    assert meta["world_size"] == 3 and meta["trainer"]["train_state"]["epoch"] == 4

    # Interrupted after 2 of its 4 epochs, then resumed with the documented command: the same weights.
    assert _torchrun(tmp_path, 3, "api-part", *screen_files, str(part)).returncode == 0
    assert json.loads((part / "model.json").read_text())["trainer"]["train_state"]["epoch"] == 2
    resumed = _torchrun(tmp_path, 3, "--no-python", PHENOSEQ, "train", *data, "-o", str(part), "--resume",
                        "--max-epochs", "4", "--device", "cpu")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert resumed.stdout.count("trained 4 epochs") == 1 and "on 3 processes" in resumed.stdout  # rank 0 speaks
    a, b = read_tensors(full / "model.safetensors"), read_tensors(part / "model.safetensors")
    assert all(np.array_equal(a[k], b[k]) for k in a if k.startswith(("net.", "ema.", "best.")))
    assert PhenoSeq.load(part).world_size == 3

    # A data-parallel run continues only with as many processes: one process is refused before any work.
    before = (part / "model.safetensors").read_bytes()
    assert run("train", *data, "-o", str(part), "--resume", "--max-epochs", "5", "-q") == 2
    assert (part / "model.safetensors").read_bytes() == before
