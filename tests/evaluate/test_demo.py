"""The demo pipeline (baselines only: the diffusion model's part is exercised by the model's own tests)."""

from __future__ import annotations

import json

import pytest

from phenoseq.errors import PhenoseqError


def test_run_demo_with_baselines_writes_metrics_and_report(tmp_path, small_config):
    from phenoseq.demo import run_demo

    out = run_demo(tmp_path / "demo", seed=0, with_model=False, cells_per_well=20, simulation=small_config)
    metrics = json.loads(out.metrics_path.read_text())
    assert metrics["methods"] == ["training_mean", "control", "ridge", "nearest_well", "shuffled_ridge"]
    assert out.report_path.is_file() and out.report_path.parent == tmp_path / "demo"
    assert set(out.timings) == {"simulate", "generate+evaluate", "report"}
    assert not (tmp_path / "demo" / "synthetic.h5ad").exists()
    # A second run into the same folder is refused unless asked to overwrite.
    with pytest.raises(PhenoseqError, match="--overwrite"):
        run_demo(tmp_path / "demo", seed=0, with_model=False, cells_per_well=20, simulation=small_config)
