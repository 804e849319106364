"""The HTML report of every kind of result: sections, method names, figures, "n/a" for missing values,
re-rendering from saved results, atomic writing."""

from __future__ import annotations

import base64
import copy
import re

import pytest

PNG = b"\x89PNG\r\n\x1a\n"


def _images(page: str) -> list[str]:
    """Alt texts of the embedded images, after checking each decodes to a PNG."""
    found = re.findall(r'<img alt="([^"]+)" src="data:image/png;base64,([^"]+)"', page)
    assert all(base64.b64decode(data)[:8] == PNG for _, data in found)
    return [alt for alt, _ in found]


def _sections(page: str) -> list[str]:
    return re.findall(r"<h2 id='([a-z]+)'>", page)


def _render(result, path):
    from phenoseq.report import render_report

    return render_report(result, path).read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def seen_page(seen, tmp_path_factory):
    return _render(seen, tmp_path_factory.mktemp("seen"))


def _has_methods(page: str, metrics: dict) -> bool:
    return all(f"<b>{m}</b>" in page for m in [*metrics["methods"], "replicate"])


def test_seen_report_leads_with_wells_then_identification(seen, seen_page):
    page = seen_page
    assert _sections(page) == ["methods", "wells", "identification", "accuracy", "confusion", "changes", "embedding",
                               "fidelity", "training"]
    assert _images(page) == ["scaled scores", "accuracy test", "gap recovered", "confusion matrices",
                             "mean change scatter", "treatment fidelity", "embedding by source",
                             "embedding by treatment"]
    assert _has_methods(page, seen.metrics) and "shuffled_ridge" in page and "training_mean" in page
    # the three gaps, in order, the paper-style one labelled as such
    heads = [page.index(h) for h in ("Headline: matched context", "Single cells against matched morphology",
                                     "paper-style, inflated by pooled morphology; for comparison with published "
                                     "numbers only")]
    assert heads == sorted(heads)
    for column in ("imaging+pooled+synthetic", "imaging+synthetic", "gap recovered [95% CI]", "MoA top-1",
                   "energy ratio", "r vs control", "scaled score: 0 = training mean, 1 = replicate"):
        assert column in page
    assert "collapsed prototypes" in page  # the caveat on reading gaps with fidelity


def test_seen_report_rerenders_from_saved_results(seen, seen_page, tmp_path):
    from phenoseq.evaluate import read_results, write_results

    write_results(seen, tmp_path / "m")
    assert _render(read_results(tmp_path / "m"), tmp_path / "r1") == seen_page
    (tmp_path / "m" / "arrays.npz").unlink()  # metrics alone still give the tables and the bar charts
    page = _render(read_results(tmp_path / "m"), tmp_path / "r2")
    assert _images(page) == ["scaled scores", "accuracy test", "gap recovered", "treatment fidelity"]
    assert "Confusion matrices not drawn: arrays.npz was not found" in page
    assert "The gene-level scatter not drawn" in page
    assert "Embedding not drawn: arrays.npz was not found" in page


def test_unseen_report(unseen, tmp_path):
    page = _render(unseen, tmp_path)
    assert _sections(page) == ["methods", "wells", "identification", "changes", "fidelity", "training"]
    assert _images(page) == ["scaled scores", "treatment fidelity"]  # the folds keep no arrays: no scatter
    assert "never seen in training" in page and "split into 2 folds" in page
    assert "test wells were training wells too" in page
    assert "cannot name a treatment it never saw" in page
    assert "unseen compounds (<code>unseen</code>)" in page
    assert _has_methods(page, unseen.metrics) and "control" in unseen.metrics["methods"]


def test_bulk_report(bulk, tmp_path):
    page = _render(bulk, tmp_path)
    assert _sections(page) == ["methods", "wells", "changes", "training"]
    assert _images(page) == ["scaled scores", "mean change scatter", "treatment fidelity"]
    assert "Bulk mode" in page and "<th>energy ratio</th>" not in page
    assert _has_methods(page, bulk.metrics) and "nearest_well" in bulk.metrics["methods"]
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]  # written atomically: no temporary file left


def test_bulk_report_without_replicates_says_na(bulk, tmp_path):
    """One well per treatment in a split: no replicate reference, so every scaled score is missing."""
    from phenoseq.evaluate import read_results, write_results
    from phenoseq.evaluate.scaled import scaled_scores
    from phenoseq.evaluate.workflow import BenchmarkResult
    from phenoseq.report.layout import scaled_metrics

    m = copy.deepcopy(bulk.metrics)
    m["wells"].pop("replicate")
    m["scaled"] = scaled_scores(m["wells"], m["methods"])
    write_results(BenchmarkResult(metrics=m), tmp_path / "m")
    page = _render(read_results(tmp_path / "m"), tmp_path / "r")
    assert _images(page) == ["treatment fidelity"]  # saved without arrays: no scatter; no replicate: no dashes
    assert "No replicate wells on this split: scaled scores are n/a." in page
    shown = sum(len(scaled_metrics(m, split)) for split in m["splits"]) * len(m["methods"])
    assert page.count("<td>n/a</td>") == shown
    assert "<b>replicate</b>: reference" in page  # still explained


def test_missing_values_read_na(seen, tmp_path):
    """Entries that can be None (or absent) never crash a table or a figure."""
    m = copy.deepcopy(seen.metrics)
    ident = m["identification"]
    ident["gap"]["ridge"]["test"]["matched"] = {"value": None, "ci": [None, None], "added": None, "ceiling_added": None}
    del ident["accuracy"]["ridge"]["imaging+synthetic"]["test"]["multi"]
    ident["matched_methods"].remove("ridge")
    m["wells"]["shuffled_ridge"]["test"]["pearson_genes"]["median"] = None
    m["scaled"]["shuffled_ridge"]["test"]["rank"]["scaled"] = None
    m["fidelity"]["ridge"]["test"]["gene_pearson_median"] = None
    from phenoseq.evaluate.workflow import BenchmarkResult

    page = _render(BenchmarkResult(metrics=m), tmp_path)
    assert "n/a [" not in page and "<td>n/a</td>" in page and "n/a / n/a" in page
    assert _images(page) == ["scaled scores", "accuracy test", "gap recovered", "treatment fidelity"]


@pytest.mark.parametrize("method, model, expected", [
    ("phenoseq", "phenoseq-diffusion", "diffusion model"),
    ("my_model", "phenoseq-diffusion", "diffusion model"),
    ("control", "control", "control wells"),
    ("shuffled_phenoseq", "shuffled_phenoseq", "<b>phenoseq</b> fed the imaging of another well"),
    ("other", "someone<else>", "generator (model: someone&lt;else&gt;)"),
])
def test_method_descriptions(method, model, expected):
    from phenoseq.report.html import _method_text

    assert expected in _method_text({"settings": {method: {"model": model}}}, method)
