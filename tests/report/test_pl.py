"""``phenoseq.pl``: every plotting function returns the Axes it drew on, draws something, and says why when the
result lacks its data."""

from __future__ import annotations

import pytest

from phenoseq.errors import PhenoseqError

HISTORY = [{"epoch": 1, "train_loss": 1.0, "val_loss": 0.9}, {"epoch": 2, "train_loss": 0.8, "val_loss": 0.7},
           {"epoch": 3, "train_loss": 0.7, "val_loss": 0.75}]


@pytest.fixture(autouse=True)
def _agg():
    """Draw off-screen and close every figure a test made."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    yield
    plt.close("all")


def _drawn(ax) -> bool:
    from matplotlib.axes import Axes

    return isinstance(ax, Axes) and bool(ax.lines or ax.collections or ax.patches or ax.images)


@pytest.mark.parametrize("call", [
    lambda pl, r: pl.scaled_scores(r),
    lambda pl, r: pl.accuracy(r),
    lambda pl, r: pl.accuracy(r, profile="multi"),
    lambda pl, r: pl.gap(r, "vs_pooled"),
    lambda pl, r: pl.confusion(r),
    lambda pl, r: pl.embedding(r),
    lambda pl, r: pl.embedding(r, color="treatment", sources=["real", "ridge"]),
    lambda pl, r: pl.mean_change_scatter(r, "ridge"),
    lambda pl, r: pl.mean_change_scatter(r, "ridge", well=r.metrics["mean_change"]["wells"][0]),
    lambda pl, r: pl.treatment_fidelity(r, "ridge"),
    lambda pl, r: pl.treatment_fidelity(r, "shuffled_ridge", metric="energy_ratio"),
    lambda pl, r: pl.history(HISTORY),
], ids=["scaled", "accuracy", "accuracy-multi", "gap", "confusion", "embedding-source", "embedding-treatment",
        "change-pooled", "change-well", "treatment-r", "treatment-energy", "history"])
def test_each_function_returns_the_axes_it_drew_on(seen, call):
    from phenoseq import pl

    assert _drawn(call(pl, seen))


def test_draws_into_a_given_axes(seen):
    import matplotlib.pyplot as plt

    from phenoseq import pl

    fig, axes = plt.subplots(1, 3)
    assert pl.embedding(seen, color="source", ax=axes[0]) is axes[0]
    assert pl.mean_change_scatter(seen, "ridge", ax=axes[1]) is axes[1]
    assert pl.treatment_fidelity(seen, "ridge", ax=axes[2]) is axes[2]
    assert all(_drawn(ax) for ax in axes) and len(fig.axes) == 3
    by_source = {t.get_text() for t in axes[0].get_legend().get_texts()}
    assert by_source == {"real cells", *seen.metrics["methods"]}


def test_history_from_a_model_a_result_and_a_folder(seen, tmp_path):
    from dataclasses import replace

    from phenoseq import pl
    from phenoseq.evaluate import write_results

    class Model:
        history = HISTORY

    ax = pl.history(Model())
    assert [line.get_label() for line in ax.lines][:2] == ["training loss", "validation loss"]
    assert ax.lines[2].get_xdata()[0] == 2  # the epoch of lowest validation loss
    trained = replace(seen, metrics=seen.metrics | {"history": {"model": HISTORY}})
    write_results(trained, tmp_path)
    assert _drawn(pl.history(trained)) and _drawn(pl.history(tmp_path, method="model"))
    assert _drawn(pl.scaled_scores(str(tmp_path)))  # a results folder works for every function
    with pytest.raises(PhenoseqError, match="no training history"):
        pl.history(seen)


def test_missing_data_is_explained(seen, unseen):
    from phenoseq import pl

    with pytest.raises(PhenoseqError, match="no embedding"):
        pl.embedding(seen.metrics)  # a metrics dict has no arrays
    with pytest.raises(PhenoseqError, match="color must be"):
        pl.embedding(seen, color="well")
    with pytest.raises(PhenoseqError, match="no embedded cells"):
        pl.embedding(seen, sources=["nope"])
    with pytest.raises(PhenoseqError, match="no sampled mean changes"):
        pl.mean_change_scatter(unseen, "ridge")  # the unseen protocol keeps no arrays
    with pytest.raises(PhenoseqError, match="not among the sampled wells"):
        pl.mean_change_scatter(seen, "ridge", well="no-such-well")
    with pytest.raises(PhenoseqError, match="no treatment identification"):
        pl.accuracy(unseen)
    with pytest.raises(PhenoseqError, match="expected an evaluation result"):
        pl.scaled_scores(42)
    assert _drawn(pl.treatment_fidelity(unseen, "ridge"))  # per-well metrics and treatments suffice
