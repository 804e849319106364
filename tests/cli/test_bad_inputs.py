"""Every bad input a user has hit, as a table: the command, its exit code, a fragment of the message, and
proof that nothing was written, no input changed, and (where the error is about the input) no training or
sampling started before the error.

Each case is ``Case(id, args, code, message, setup)``. ``args`` may name ``{img}``, ``{rna}`` (the simulated
screen), ``{model}`` (a model trained for one epoch) and ``{tmp}`` (the case's own folder, where ``setup``
builds the bad files). A case with ``work=True`` may train or sample before it fails (the failure is in
what that work produced); every other case must fail first.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import anndata as ad
import numpy as np
import pytest

from phenoseq.cli import run


# -- building bad files -------------------------------------------------------------------------------------
def _read(env, name: str) -> ad.AnnData:
    return ad.read_h5ad(env["screen"] / name)


def _imaging_with(change: Callable[[ad.AnnData], ad.AnnData | None]):
    def setup(env, tmp: Path) -> None:
        adata = _read(env, "imaging.h5ad")
        changed = change(adata)  # in place, or a new AnnData (which may be empty, so not `or`)
        adata = adata if changed is None else changed
        adata.write_h5ad(tmp / "bad.h5ad")
    return setup


def _rna_with(change: Callable[[ad.AnnData], ad.AnnData | None]):
    def setup(env, tmp: Path) -> None:
        adata = _read(env, "rnaseq.h5ad")
        changed = change(adata)
        adata = adata if changed is None else changed
        adata.write_h5ad(tmp / "bad.h5ad")
    return setup


def _set(X, rows, value):
    X = np.asarray(X.toarray() if hasattr(X, "toarray") else X, dtype=np.float32).copy()
    X[rows] = value
    return X


def _zero_counts(a):
    a.X = _set(a.X, slice(None), 0.0)


def _zero_count_cells(a):
    a.X = _set(a.X, slice(0, 3), 0.0)


def _negative(a):
    a.X = _set(a.X, (0, 0), -1.0)


def _non_integer(a):
    a.X = _set(a.X, (0, 0), 0.5)


def _constant_feature(a):
    a.X[:, 0] = 1.0


def _duplicated_features(a):
    names = a.var_names.tolist()
    names[1] = names[0]
    a.var_names = names


def _no_cells(a):
    return a[:0].copy()


def _missing_features(a):
    return a[:, 5:].copy()


def _float_replicates(env, tmp: Path) -> None:
    for name in ("imaging.h5ad", "rnaseq.h5ad"):
        adata = _read(env, name)
        adata.obs["Replicate"] = adata.obs["Replicate"].astype(int).astype(float)
        adata.write_h5ad(tmp / name)


def _one_treatment(env, tmp: Path) -> None:
    for name in ("imaging.h5ad", "rnaseq.h5ad"):
        adata = _read(env, name)
        first = sorted(adata.obs["Treatment"].astype(str).unique())[0]
        adata[adata.obs["Treatment"].astype(str) == first].copy().write_h5ad(tmp / name)


def _other_counts(env, tmp: Path) -> None:
    """The RNA file of another experiment: the same wells and genes, other counts."""
    adata = _read(env, "rnaseq.h5ad")
    adata.X = _set(adata.X, slice(None), np.asarray(adata.X.toarray() if hasattr(adata.X, "toarray") else adata.X) + 1)
    adata.write_h5ad(tmp / "other.h5ad")


def _a_file(env, tmp: Path) -> None:
    (tmp / "afile").write_text("not a folder")


def _existing(env, tmp: Path) -> None:
    (tmp / "existing.h5ad").write_text("somebody's results")


def _model_copy(env, tmp: Path) -> Path:
    shutil.copytree(env["model"], tmp / "m")
    return tmp / "m"


def _edit_tensors(change: Callable[[dict], None]):
    """A model whose safetensors file is valid and paired with its JSON, but whose tensors were altered."""
    def setup(env, tmp: Path) -> None:
        from safetensors.numpy import load_file, save_file

        from phenoseq.io.checkpoint import tensors_header

        path = _model_copy(env, tmp) / "model.safetensors"
        header = tensors_header(path)
        tensors = load_file(str(path))
        change(tensors)
        save_file(tensors, str(path), metadata=header)
    return setup


def _nan_weight(t):
    name = next(k for k in sorted(t) if k.startswith("best.") and t[k].ndim == 2)
    t[name][0, 0] = np.nan


def _renamed_tensor(t):
    t["imaging.mean_renamed"] = t.pop("imaging.mean")


def _resized_tensor(t):
    t["imaging.mean"] = t["imaging.mean"][:-1]


def _edit_json(change: Callable[[dict], None]):
    def setup(env, tmp: Path) -> None:
        path = _model_copy(env, tmp) / "model.json"
        meta = json.loads(path.read_text())
        change(meta)
        path.write_text(json.dumps(meta, indent=1))
    return setup


def _negative_steps(meta):
    meta["config"]["steps"] = -5


def _other_save(meta):
    meta["trainer"]["train_state"]["epoch"] += 1  # what a json from a later save looks like beside older tensors


def _pickled_model(env, tmp: Path) -> None:
    import pickle

    path = _model_copy(env, tmp) / "model.safetensors"
    path.write_bytes(pickle.dumps({"weights": [1, 2, 3]}, protocol=4))


def _truncated_model(env, tmp: Path) -> None:
    path = _model_copy(env, tmp) / "model.safetensors"
    path.write_bytes(path.read_bytes()[:1000])


def _nan_synthetic(env, tmp: Path) -> None:
    syn = ad.read_h5ad(env["synthetic"])
    syn.obsm["X_phenoseq"][:5] = np.nan
    syn.write_h5ad(tmp / "syn.h5ad")


def _truncated_arrays(env, tmp: Path) -> None:
    (tmp / "metrics").mkdir()
    (tmp / "metrics" / "metrics.json").write_text(json.dumps({"format": "phenoseq-metrics"}))
    np.savez_compressed(tmp / "metrics" / "arrays.npz", a=np.arange(10000))
    data = (tmp / "metrics" / "arrays.npz").read_bytes()
    (tmp / "metrics" / "arrays.npz").write_bytes(data[: len(data) // 2])


def _demo_with_model(env, tmp: Path) -> None:
    _model_copy(env, tmp)
    (tmp / "m").rename(tmp / "demo")
    (tmp / "demo" / "model").mkdir()
    for f in ("model.json", "model.safetensors"):
        (tmp / "demo" / f).rename(tmp / "demo" / "model" / f)


def _platemap_csv(env, tmp: Path) -> None:
    import pandas as pd

    cells = pd.DataFrame({"Metadata_Plate": "P1", "Metadata_Well": ["A01", "A01", "A02", "A02"],
                          "Cells_AreaShape_Area": [10.0, 12.0, 30.0, 33.0],
                          "Cells_Intensity_MeanIntensity_DNA": [0.1, 0.2, 0.5, 0.6]})
    cells.to_csv(tmp / "cells.csv", index=False)
    pd.DataFrame({"well_position": ["A01", "A02"], "broad_sample": ["BRD-1", "BRD-2"],
                  "compound": ["aspirin", "DMSO"]}).to_csv(tmp / "map.csv", index=False)


def _nothing(env, tmp: Path) -> None:
    pass


# -- the table ------------------------------------------------------------------------------------------------
@dataclass
class Case:
    id: str
    args: list[str]
    code: int
    message: str
    setup: Callable = _nothing
    work: bool = False  # may train/sample before failing
    patch: str | None = None  # a fault to inject: "disk-full"


def _gen(*extra: str, model: str = "{model}", img: str = "{img}", out: str = "{tmp}/syn.h5ad") -> list[str]:
    return ["generate", "-m", model, "-i", img, "-o", out, "--cells-per-well", "2", "-q", *extra]


def _train(*extra: str, img: str = "{img}", rna: str = "{rna}", out: str = "{tmp}/model") -> list[str]:
    return ["train", "-i", img, "-r", rna, "-o", out, "--preset", "tiny", "--max-epochs", "1", "-q", *extra]


CASES = [
    # silent wrong results and data loss
    Case("guidance-nan", _gen("--guidance", "nan"), 2, "guidance must be a finite number"),
    Case("guidance-negative", _gen("--guidance", "-1"), 2, "guidance must be a finite number >= 0"),
    Case("nan-weight", _gen(model="{tmp}/m"), 2, "hold NaN/inf values", _edit_tensors(_nan_weight)),
    Case("evaluate-nan-synthetic", ["evaluate", "--imaging", "{img}", "--rnaseq", "{rna}", "--model", "{model}",
                                    "--synthetic", "other={tmp}/syn.h5ad", "--out", "{tmp}/eval", "-q"],
         2, "holds NaN/inf values; regenerate", _nan_synthetic, work=True),
    Case("max-epochs-negative", _train("--max-epochs", "-2"), 2, "Invalid value for '--max-epochs'"),
    Case("max-epochs-zero", _train("--max-epochs", "0"), 2, "Invalid value for '--max-epochs'"),
    Case("time-limit-negative", _train("--time-limit", "-5"), 2, "time_limit=-5.0 is out of range"),
    Case("batch-size-zero", _train("--set", "batch_size=0"), 2, "batch_size=0 is out of range"),
    Case("all-zero-counts", _train(rna="{tmp}/bad.h5ad"), 2, "no non-zero", _rna_with(_zero_counts)),
    Case("generate-over-a-file", _gen(out="{tmp}/existing.h5ad"), 2, "exists; choose a new path or pass --overwrite",
         _existing),
    Case("demo-over-a-model", ["demo", "--out", "{tmp}/demo", "-q"], 2, "already holds ['model']", _demo_with_model),
    Case("resume-on-other-data", ["train", "-i", "{img}", "-r", "{tmp}/other.h5ad", "-o", "{tmp}/m", "--resume",
                                  "--max-epochs", "2", "-q"], 2, "resume needs the data the run started on",
         lambda env, tmp: (_other_counts(env, tmp), _model_copy(env, tmp))),
    Case("pair-from-two-saves", _gen(model="{tmp}/m"), 2, "come from different saves", _edit_json(_other_save)),
    Case("one-treatment", _train(img="{tmp}/imaging.h5ad", rna="{tmp}/rnaseq.h5ad"), 2, "at least 2",
         _one_treatment),
    Case("info-one-treatment", ["info", "{tmp}/imaging.h5ad", "{tmp}/rnaseq.h5ad"], 1, "at least 2", _one_treatment),
    # raw tracebacks: destinations
    Case("train-parent-is-file", _train(out="{tmp}/afile/model"), 2, "is a file, not a folder", _a_file),
    Case("train-out-is-file", _train(out="{tmp}/afile"), 2, "is a file; give a folder", _a_file),
    Case("generate-parent-is-file", _gen(out="{tmp}/afile/out.h5ad"), 2, "is a file, not a folder", _a_file),
    Case("generate-out-is-folder", _gen(out="{tmp}"), 2, "is a folder; give a file name"),
    Case("train-into-proc", _train(out="/proc/phenoseq-test/model"), 2, "cannot create files in /proc"),
    Case("generate-into-proc", _gen(out="/proc/phenoseq-test.h5ad"), 2, "cannot create files in /proc"),
    Case("generate-over-its-input", _gen(out="{img}"), 2, "is one of the inputs"),
    Case("generate-disk-full", _gen(), 2, "No space left on device", work=True, patch="disk-full"),
    Case("train-disk-full", _train(), 2, "No space left on device", work=True, patch="disk-full"),
    # raw tracebacks: settings
    Case("set-not-a-number", _train("--set", "dim=abc"), 2, "dim='abc' must be a whole number"),
    Case("set-fraction", _train("--set", "dim=32.5"), 2, "dim=32.5 must be a whole number"),
    Case("set-zero-heads", _train("--set", "heads=0"), 2, "heads=0 is out of range"),
    Case("set-dim-not-divisible", _train("--set", "dim=30", "--set", "heads=4"), 2, "must be divisible by heads=4"),
    Case("set-negative-lr", _train("--set", "lr=-1"), 2, "lr=-1 is out of range"),
    Case("set-unknown", _train("--set", "depht=2"), 2, "unknown model settings ['depht']"),
    Case("set-precision-fp16", _train("--set", "precision=fp16"), 2,
         "precision='fp16' is not allowed; choose one of ['auto', 'bf16', 'fp32']"),
    Case("set-without-value", _train("--set", "dim"), 2, "--set expects NAME=VALUE"),
    Case("steps-negative", _gen("--steps", "-3"), 2, "Invalid value for '--steps'"),
    Case("model-json-negative-steps", _gen(model="{tmp}/m"), 2, "steps=-5 is out of range", _edit_json(_negative_steps)),
    Case("renamed-tensor", _gen(model="{tmp}/m"), 2, "incomplete or does not match", _edit_tensors(_renamed_tensor)),
    Case("resized-tensor", _gen(model="{tmp}/m"), 2, "have shapes (29,)", _edit_tensors(_resized_tensor)),
    Case("pickled-model", _gen(model="{tmp}/m"), 2, "never loads", _pickled_model),
    Case("truncated-model", _gen(model="{tmp}/m"), 2, "not a valid safetensors file", _truncated_model),
    Case("no-model", _gen(model="{tmp}/nowhere"), 2, "not a directory"),
    # raw tracebacks: data
    Case("train-duplicated-features", _train(img="{tmp}/bad.h5ad"), 2, "duplicated", _imaging_with(_duplicated_features)),
    Case("info-duplicated-features", ["info", "{tmp}/bad.h5ad", "{rna}"], 1, "duplicated",
         _imaging_with(_duplicated_features)),
    Case("generate-no-cells", _gen(img="{tmp}/bad.h5ad"), 2, "holds no imaging cells", _imaging_with(_no_cells)),
    Case("report-truncated-arrays", ["report", "{tmp}/metrics", "--out", "{tmp}/report", "-q"], 2,
         "not a readable array file", _truncated_arrays),
    Case("cells-per-well-huge", _gen("--cells-per-well", "1000000000"), 2, "GiB of memory"),
    Case("cells-per-well-zero", _gen("--cells-per-well", "0"), 2, "Invalid value for '--cells-per-well'"),
    Case("train-nan-imaging", _train(img="{tmp}/bad.h5ad"), 2, "NaN/inf",
         _imaging_with(lambda a: a.X.__setitem__((0, 0), np.nan))),
    # misleading messages
    Case("info-negative-counts", ["info", "{img}", "{tmp}/bad.h5ad"], 1, "negative values", _rna_with(_negative)),
    Case("info-non-integer-counts", ["info", "{img}", "{tmp}/bad.h5ad"], 1, "non-integer values",
         _rna_with(_non_integer)),
    Case("info-all-zero-counts", ["info", "{img}", "{tmp}/bad.h5ad"], 1, "no non-zero", _rna_with(_zero_counts)),
    Case("info-constant-feature", ["info", "{tmp}/bad.h5ad", "{rna}"], 0, "warning:",
         _imaging_with(_constant_feature)),
    Case("info-zero-count-cells", ["info", "{img}", "{tmp}/bad.h5ad"], 0, "warning:", _rna_with(_zero_count_cells)),
    Case("info-float-replicates", ["info", "{tmp}/imaging.h5ad", "{tmp}/rnaseq.h5ad"], 0, "no problems found",
         _float_replicates),
    Case("info-missing-column", ["info", "{img}", "{tmp}/bad.h5ad"], 1, "missing column(s) ['Replicate']",
         _rna_with(lambda a: a.obs.drop(columns="Replicate", inplace=True))),
    Case("generate-names-the-file", _gen(img="{tmp}/bad.h5ad"), 2, "bad.h5ad: 5 of the model's",
         _imaging_with(_missing_features)),
    Case("convert-treatment-column", ["convert", "{tmp}/cells.csv", "--platemap", "{tmp}/map.csv",
                                      "--treatment-column", "nonexistent", "--out", "{tmp}/c.h5ad", "-q"],
         2, "nonexistent", _platemap_csv),
]


# -- running a case -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """A small simulated screen, a model trained on it for one epoch, and synthetic cells from that model."""
    root = tmp_path_factory.mktemp("bad-inputs")
    screen = root / "screen"
    assert run("simulate", "--out", screen, "--imaging-cells", "30", "--rna-cells", "20", "--genes", "150",
               "--features", "30", "--seed", "3", "-q") == 0
    model = root / "model"
    assert run("train", "-i", screen / "imaging.h5ad", "-r", screen / "rnaseq.h5ad", "-o", model, "--preset",
               "tiny", "--max-epochs", "1", "-q") == 0
    synthetic = root / "syn.h5ad"
    assert run("generate", "-m", model, "-i", screen / "imaging.h5ad", "-o", synthetic, "--cells-per-well", "3",
               "-q") == 0
    return {"screen": screen, "model": model, "synthetic": synthetic}


def _fill(args: list[str], env, tmp: Path, **values) -> list[str]:
    values = {"img": env["screen"] / "imaging.h5ad", "rna": env["screen"] / "rnaseq.h5ad", "model": env["model"],
              "tmp": tmp, **values}
    return [a.format(**values) for a in args]


def _snapshot(*folders: Path) -> dict[str, str]:
    out = {}
    for folder in folders:
        for path in sorted(folder.rglob("*")):
            out[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
    return out


def _squash(text: str) -> str:
    return re.sub(r"[\s│╭╮╰╯─]+", "", text)  # rich wraps long messages at the console width, in boxes


def _no_work(*args, **kwargs):
    raise AssertionError("training or sampling started before the bad input was reported")


def _disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, env, tmp_path, monkeypatch, capsys):
    case.setup(env, tmp_path)
    if not case.work:
        monkeypatch.setattr("phenoseq.model.train.Trainer.run", _no_work)
        monkeypatch.setattr("phenoseq.phenoseq.sample_latents", _no_work)
    if case.patch == "disk-full":
        monkeypatch.setattr("anndata.AnnData.write_h5ad", _disk_full)
        monkeypatch.setattr("safetensors.torch.save_file", _disk_full)
    args = _fill(case.args, env, tmp_path)
    before = _snapshot(env["screen"], env["model"], tmp_path)
    code = run(*args)
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert code == case.code, text
    assert _squash(case.message) in _squash(text), text
    assert "Traceback" not in text
    assert _snapshot(env["screen"], env["model"], tmp_path) == before, "files were written or changed"


# -- cases that succeed, or need more than one command ---------------------------------------------------------
def test_overwrite_replaces_only_when_asked(env, tmp_path):
    out = tmp_path / "syn.h5ad"
    out.write_text("old")
    assert run(*_fill(_gen(), env, tmp_path)) == 2
    assert out.read_text() == "old"
    assert run(*_fill(_gen("--overwrite"), env, tmp_path)) == 0
    assert ad.read_h5ad(out).n_obs == 140 * 2


def test_convert_uses_the_treatment_column_with_a_platemap(env, tmp_path):
    _platemap_csv(env, tmp_path)
    assert run("convert", tmp_path / "cells.csv", "--platemap", tmp_path / "map.csv", "--treatment-column",
               "compound", "--no-feature-select", "--normalize", "none", "--out", tmp_path / "c.h5ad", "-q") == 0
    adata = ad.read_h5ad(tmp_path / "c.h5ad")
    assert sorted(adata.obs["Treatment"].astype(str).unique()) == ["DMSO", "aspirin"]


def test_float_replicates_train(env, tmp_path):
    _float_replicates(env, tmp_path)
    assert run(*_fill(_train(img="{tmp}/imaging.h5ad", rna="{tmp}/rnaseq.h5ad"), env, tmp_path)) == 0


def test_stale_temporary_files_are_removed(env, tmp_path):
    stale = tmp_path / ".syn.h5ad.999999999-abcd.tmp"  # written by a process that no longer runs
    live = tmp_path / f".syn.h5ad.{os.getpid()}-abcd.tmp"  # a write in progress: left alone
    stale.write_text("half")
    live.write_text("half")
    assert run(*_fill(_gen(), env, tmp_path)) == 0
    assert not stale.exists() and live.exists()


def test_sigterm_during_a_write_leaves_nothing(tmp_path):
    """A killed writer (SIGTERM) removes its temporary file: the CLI's handler unwinds like Ctrl-C."""
    import signal
    import subprocess
    import sys

    script = (
        "import signal, sys, time\n"
        "from phenoseq.cli.app import _terminate\n"
        "from phenoseq.io.files import atomic_path\n"
        "signal.signal(signal.SIGTERM, _terminate)\n"
        f"with atomic_path({str(tmp_path / 'out.h5ad')!r}) as tmp:\n"
        "    tmp.write_text('partial')\n"
        "    print('writing', flush=True)\n"
        "    time.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    assert len(list(tmp_path.iterdir())) == 1  # the temporary file exists while writing
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 128 + signal.SIGTERM
    assert list(tmp_path.iterdir()) == []


def test_saved_files_get_the_usual_permissions(env):
    umask = os.umask(0)
    os.umask(umask)
    for name in ("model.safetensors", "model.json"):
        assert (env["model"] / name).stat().st_mode & 0o777 == 0o666 & ~umask


@pytest.fixture
def locked_folder(tmp_path):
    """A folder nobody may write in, root included (immutable), where the file system supports it."""
    import subprocess

    folder = tmp_path / "locked"
    folder.mkdir()
    if subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode != 0:
        pytest.skip("chattr +i is not available here")
    yield folder
    subprocess.run(["chattr", "-i", str(folder)], check=True)


@pytest.mark.parametrize("command", ["train", "generate", "convert"])
def test_a_folder_that_cannot_be_written_is_refused_first(command, env, locked_folder, monkeypatch, capsys):
    monkeypatch.setattr("phenoseq.model.train.Trainer.run", _no_work)
    monkeypatch.setattr("phenoseq.phenoseq.sample_latents", _no_work)
    args = {"train": _train(out="{tmp}/model"), "generate": _gen(out="{tmp}/syn.h5ad"),
            "convert": ["convert", "{rna}", "--kind", "h5ad", "--out", "{tmp}/c.h5ad", "-q"]}[command]
    assert run(*_fill(args, env, locked_folder)) == 2
    assert _squash("cannot create files in") in _squash(capsys.readouterr().err)
    assert list(locked_folder.iterdir()) == []


@pytest.fixture
def full_disk(tmp_path):
    """A real 256 KiB file system (tmpfs), where mounting is allowed: writes past it fail with ENOSPC."""
    import subprocess

    folder = tmp_path / "small"
    folder.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(folder)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    yield folder
    subprocess.run(["umount", str(folder)], check=True)


@pytest.mark.parametrize("command", ["train", "generate"])
def test_a_disk_too_small_is_refused_before_the_work(command, env, full_disk, monkeypatch, capsys):
    monkeypatch.setattr("phenoseq.model.train.Trainer.run", _no_work)
    monkeypatch.setattr("phenoseq.phenoseq.sample_latents", _no_work)
    args = {"train": _train(out="{tmp}/model"), "generate": _gen("--cells-per-well", "20", out="{tmp}/syn.h5ad")}
    assert run(*_fill(args[command], env, full_disk)) == 2
    assert _squash("not enough free space") in _squash(capsys.readouterr().err)
    assert list(full_disk.iterdir()) == []


@pytest.mark.parametrize("command", ["train", "generate"])
def test_a_disk_that_fills_up_while_writing_leaves_nothing_behind(command, env, full_disk, monkeypatch, capsys):
    monkeypatch.setattr("phenoseq.io.files.check_free_space", lambda *args: None)  # as if another writer filled it
    args = {"train": _train(out="{tmp}/model"), "generate": _gen("--cells-per-well", "20", out="{tmp}/syn.h5ad")}
    assert run(*_fill(args[command], env, full_disk)) == 2
    assert _squash("No space left on device") in _squash(capsys.readouterr().err)
    assert list(full_disk.iterdir()) == []
