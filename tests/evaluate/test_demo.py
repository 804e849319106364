"""The demo pipeline (baselines only: the diffusion model's part is exercised by the model's own tests)."""

from __future__ import annotations

import json


def test_run_demo_with_baselines_writes_metrics_and_report(tmp_path, small_config):
    from phenoseq.evaluate.demo import run_demo

    out = run_demo(tmp_path / "demo", seed=0, with_model=False, cells_per_well=20, simulation=small_config)
    metrics = json.loads(out.metrics_path.read_text())
    assert metrics["methods"] == ["ridge", "nearest_well"]
    assert out.report_path.is_file() and out.report_path.parent == tmp_path / "demo"
    assert set(out.timings) == {"simulate", "baselines", "evaluate", "report"}
    assert not (tmp_path / "demo" / "synthetic.h5ad").exists()
