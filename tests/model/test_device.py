"""Devices: cpu/auto/cuda resolve or fail clearly; training and generation on an explicit CPU device are the
default run's, exactly (CUDA itself is not available here)."""

import numpy as np
import pytest
import torch

from phenoseq import PhenoSeq
from phenoseq.cli import run
from phenoseq.errors import PhenoseqError
from phenoseq.io import PairedScreen
from phenoseq.model.device import autocast, resolve_device, resolve_precision


def test_devices_resolve_or_fail_clearly(monkeypatch):
    assert resolve_device("cpu") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(PhenoseqError, match="sees no CUDA GPU"):
        resolve_device("cuda")
    with pytest.raises(PhenoseqError, match="unknown device 'tpu'"):
        resolve_device("tpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda")  # chosen, not used
    assert isinstance(autocast("bf16", "cpu"), torch.autocast) and not isinstance(autocast("fp32"), torch.autocast)


def test_auto_precision_is_bf16_only_where_bf16_is_faster(monkeypatch):
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True)  # without AMX, bf16 is slower
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    assert resolve_precision("auto", "cpu") == "fp32" and not isinstance(autocast("auto", "cpu"), torch.autocast)
    assert resolve_precision("bf16", "cpu") == "bf16"  # an explicit choice is kept
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True)
    assert resolve_precision("auto", "cpu") == "bf16" and isinstance(autocast("auto", "cpu"), torch.autocast)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert resolve_precision("auto", "cuda") == "fp32"


def test_explicit_cpu_is_the_default_run(small_screen_data):
    screen = PairedScreen(*small_screen_data)
    imaging = screen.subset("imaging", screen.wells_in("test")[:4])
    runs = []
    for device in ("auto", "cpu"):
        model = PhenoSeq(screen, preset="tiny", seed=0, max_epochs=2)
        model.train(device=device)
        runs.append((model.trainer.best, model.generate(imaging, cells_per_well=4, seed=1, device=device).X))
    assert all(torch.equal(runs[0][0][k], runs[1][0][k]) for k in runs[0][0])
    assert np.array_equal(runs[0][1], runs[1][1])
    assert next(model.denoiser.parameters()).device.type == "cpu"


def test_an_unusable_device_is_refused_before_any_work(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    out = tmp_path / "model"
    assert run("train", "-i", str(tmp_path / "x.h5ad"), "-r", str(tmp_path / "y.h5ad"), "-o", str(out),
               "--device", "cuda", "-q") == 2
    assert "sees no CUDA GPU" in capsys.readouterr().err and not out.exists()
