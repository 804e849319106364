"""The HTML report: every figure and section present, re-rendered from saved metrics, written atomically."""

from __future__ import annotations

import re

import numpy as np
import pytest


@pytest.fixture(scope="module")
def result(small_screen_data):
    from phenoseq.evaluate import BenchmarkConfig, evaluate_generators
    from phenoseq.generate.baselines import NearestWellBaseline, RidgeBaseline
    from phenoseq.io import PairedScreen
    from phenoseq.rna.space import RNASpace

    imaging, rnaseq = small_screen_data
    screen = PairedScreen(imaging.copy(), rnaseq.copy())
    space = RNASpace.fit(screen.subset("rnaseq", screen.wells_in("train")), n_latent=16)
    config = BenchmarkConfig(n_boot=100, max_cells_per_well=20, sets_per_well=5, cells_per_set=5, fidelity_cells=20,
                             embedding_cells=5)
    gens = {"ridge": RidgeBaseline(screen, space), "nearest_well": NearestWellBaseline(screen, space)}
    return evaluate_generators(screen, gens, cells_per_well=20, config=config)


def _images(page: str) -> list[str]:
    return re.findall(r'<img alt="([^"]+)" src="data:image/png;base64,', page)


def test_report_has_every_figure_and_section(result, tmp_path):
    from phenoseq.report import render_report

    path = render_report(result, tmp_path / "rep")
    page = path.read_text()
    assert path.name == "report.html"
    assert _images(page) == ["accuracy test", "accuracy test_he", "gap recovered", "confusion matrices", "embedding"]
    for heading in ("Headline", "Gap recovered", "Confusion matrices", "Real and synthetic cells", "Fidelity"):
        assert f"<h2>{heading}" in page
    assert "collapsed prototypes" in page
    assert "ridge" in page and "nearest_well" in page
    assert not [p for p in (tmp_path / "rep").iterdir() if p.name != "report.html"]  # no temp files left


def test_report_rerenders_from_saved_results(result, tmp_path):
    from phenoseq.evaluate import read_results, write_results
    from phenoseq.report import render_report

    write_results(result, tmp_path / "m")
    again = read_results(tmp_path / "m")
    assert again.metrics == result.metrics
    assert all(np.array_equal(again.arrays[k], result.arrays[k]) for k in result.arrays)
    page = render_report(again, tmp_path / "r2").read_text()
    assert len(_images(page)) == 5
    (tmp_path / "m" / "arrays.npz").unlink()  # metrics alone still give the bars and tables
    page = render_report(read_results(tmp_path / "m"), tmp_path / "r3").read_text()
    assert _images(page) == ["accuracy test", "accuracy test_he", "gap recovered"]
    assert "arrays.npz was not found" in page


def test_figures_are_png(result):
    from phenoseq.report import figures

    m, a = result.metrics, result.arrays
    for png in (figures.accuracy_figure(m, "test"), figures.gap_figure(m), figures.confusion_figure(m, a, "test", "multi"),
                figures.embedding_figure(m, a)):
        assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_missing_metrics_is_a_clear_error(tmp_path):
    from phenoseq.errors import PhenoseqError
    from phenoseq.evaluate import read_results

    with pytest.raises(PhenoseqError, match="no such file"):
        read_results(tmp_path)
    (tmp_path / "metrics.json").write_text("{}")
    with pytest.raises(PhenoseqError, match="not a phenoseq benchmark"):
        read_results(tmp_path)
