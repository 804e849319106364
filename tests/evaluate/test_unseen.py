"""The unseen-compound protocol: compound folds, nothing of a held-out compound reaches a method, the
methods' figures on compounds they never saw."""

from __future__ import annotations

import json

import pytest

from phenoseq.errors import PhenoseqError
from phenoseq.evaluate import BenchmarkConfig, compound_folds, evaluate_unseen


def test_folds_cover_every_treated_compound_once_and_keep_controls(screen):
    folds = compound_folds(screen, 3, seed=0)
    flat = [t for f in folds for t in f]
    assert len(flat) == len(set(flat)) == 27 and "DMSO" not in flat
    assert sorted(len(f) for f in folds) == [9, 9, 9]
    assert compound_folds(screen, 3, seed=0) == folds and compound_folds(screen, 3, seed=1) != folds
    with pytest.raises(PhenoseqError, match="between 2"):
        compound_folds(screen, 1)


def test_hold_out_moves_every_well_of_the_compounds(screen):
    held = screen.hold_out(["HI-1", "MI-2"])
    unseen = held.wells_in("unseen")
    assert sorted(set(held.wells.loc[unseen, "Treatment"])) == ["HI-1", "MI-2"] and len(unseen) == 10
    for split in ("train", "val", "test", "test_he"):
        assert not set(held.wells.loc[held.wells_in(split), "Treatment"]) & {"HI-1", "MI-2"}
    assert screen.wells_in("unseen") == []  # the original is untouched
    with pytest.raises(PhenoseqError, match="not in the screen"):
        screen.hold_out(["NOPE"])


def test_hold_out_can_train_on_the_other_compounds_test_wells(screen):
    held = screen.hold_out(["HI-1", "MI-2"], train_on_tests=True)
    w, before = held.wells, screen.wells
    assert held.wells_in("unseen") == screen.hold_out(["HI-1", "MI-2"]).wells_in("unseen")
    assert held.wells_in("val") == [x for x in screen.wells_in("val") if x not in held.wells_in("unseen")]
    assert held.wells_in("test") == held.wells_in("test_he") == []
    kept = before.index[before["split"].isin(["train", "test", "test_he"]) & ~before["Treatment"].isin(["HI-1", "MI-2"])]
    assert sorted(held.wells_in("train")) == sorted(kept)
    assert sorted(set(w.loc[held.wells_in("train"), "Replicate"].astype(str))) == ["1", "2", "3", "4"]
    assert screen.wells_in("test") and screen.wells["split"].equals(before["split"])  # the original is untouched


def test_hold_out_keeps_wells_in_no_split_out_of_training(small_screen_data):
    from phenoseq.io import PairedScreen
    from phenoseq.io.keys import ScreenKeys

    keys = ScreenKeys(splits={"train": ["3"], "val": ["5"], "test": ["4"]})  # replicates 1 and 2: in no split
    screen = PairedScreen(*small_screen_data, keys=keys)
    held = screen.hold_out(["HI-1"], train_on_tests=True)
    assert set(held.wells.loc[held.wells_in("train"), "Replicate"].astype(str)) == {"3", "4"}
    assert (held.wells.loc[held.wells["Replicate"].astype(str).isin(["1", "2"]), "split"] != "train").all()


def test_paired_screen_refuses_unseen_treatments_unless_asked(small_screen_data):
    from phenoseq.io import PairedScreen

    imaging, rnaseq = small_screen_data
    keep = lambda a: a[~((a.obs["Treatment"] == "HI-1") & (a.obs["Replicate"].astype(str) == "3")).to_numpy()].copy()  # noqa: E731
    with pytest.raises(PhenoseqError, match="no paired well in the training split"):
        PairedScreen(keep(imaging), keep(rnaseq))
    screen = PairedScreen(keep(imaging), keep(rnaseq), allow_unseen=True)
    assert "HI-1" not in screen.treatments_in("train") and "HI-1" in screen.treatments_in("test")


class _Recorder:
    """Fits the baselines on a fold and records what the fit was given."""

    def __init__(self):
        self.screens = []

    def __call__(self, held):
        from phenoseq.generate.baselines import standard_baselines
        from phenoseq.rna.space import RNASpace

        self.screens.append(held)
        space = RNASpace.fit(held.subset("rnaseq", held.wells_in("train")), n_latent=16)
        return standard_baselines(held, space)


@pytest.fixture(scope="module")
def unseen(screen, fast_config):
    fit = _Recorder()
    return evaluate_unseen(screen, fit, n_folds=3, config=fast_config, moa_key="MoA"), fit


def test_every_held_out_well_is_scored_once_by_methods_that_never_saw_it(unseen, screen):
    result, fit = unseen
    m = result.metrics
    assert m["protocol"] == "unseen" and list(m["splits"]) == ["unseen"] and m["unseen"]["n_folds"] == 3
    held_wells = [w for s in fit.screens for w in s.wells_in("unseen")]
    assert len(held_wells) == len(set(held_wells)) == 27 * 5
    assert m["unseen"]["train_on_tests"] is True
    for held, fold in zip(fit.screens, m["unseen"]["folds"]):
        fitted_on = held.wells_in("train") + held.wells_in("val")
        assert not set(held.wells.loc[fitted_on, "Treatment"]) & set(fold)
        assert held.wells_in("test") == [] and len(held.wells_in("train")) == 4 * 19  # DMSO + 18 compounds
        assert "DMSO" in set(held.wells.loc[held.wells_in("train"), "Treatment"])
    for method in m["methods"]:
        per_well = m["wells"][method]["unseen"]["pearson_genes"]["per_well"]
        assert sorted(per_well) == sorted(held_wells)
    json.dumps(m, allow_nan=False)


def test_unseen_known_answers(unseen):
    """Ridge generalises to compounds it never saw; the mean and shuffled imaging do not; a replicate does."""
    m = unseen[0].metrics
    w, s = m["wells"], m["scaled"]
    assert w["training_mean"]["unseen"]["pearson_latent"]["median"] == 0.0
    assert w["ridge"]["unseen"]["pearson_genes"]["median"] > 0.3
    assert s["ridge"]["unseen"]["pearson_genes"]["scaled"] > 0.4
    assert s["shuffled_ridge"]["unseen"]["pearson_genes"]["scaled"] < 0.2
    assert w["replicate"]["unseen"]["rank"]["mean"] < 2.0
    # Ranks are among the 9 held-out compounds of a fold and replicate.
    assert w["ridge"]["unseen"]["rank"]["chance_mean"] == pytest.approx(5.0)
    # The nearest training well can only return a seen compound: its MoA is right at best.
    assert 0 <= w["nearest_well"]["unseen"]["moa"]["top1"] <= 1


def test_unseen_needs_folds_of_treated_compounds(screen):
    with pytest.raises(PhenoseqError, match="--folds"):
        evaluate_unseen(screen, _Recorder(), n_folds=40, config=BenchmarkConfig())
