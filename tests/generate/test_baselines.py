"""The baselines: output contract, training split only, determinism, what each centre is."""

from __future__ import annotations

import numpy as np
import pytest

from phenoseq.errors import PhenoseqError
from phenoseq.generate.baselines import (
    ControlBaseline,
    NearestWellBaseline,
    RidgeBaseline,
    ShuffledImaging,
    TrainingMeanBaseline,
    standard_baselines,
)

ALL = [RidgeBaseline, NearestWellBaseline, TrainingMeanBaseline, ControlBaseline]


@pytest.fixture(scope="module")
def setup(small_screen_data):
    from phenoseq.io import PairedScreen
    from phenoseq.rna.space import RNASpace

    imaging, rnaseq = small_screen_data
    screen = PairedScreen(imaging.copy(), rnaseq.copy())
    space = RNASpace.fit(screen.subset("rnaseq", screen.wells_in("train")), n_latent=16)
    return screen, space


@pytest.mark.parametrize("cls", ALL)
def test_output_contract(setup, cls):
    screen, space = setup
    wells = screen.wells_in("test")[:5]
    syn = cls(screen, space).generate(screen.subset("imaging", wells), cells_per_well=7, seed=2)
    assert syn.n_obs == 35 and syn.obsm["X_phenoseq"].shape == (35, 16)
    assert syn.var_names.tolist() == space.genes
    np.testing.assert_allclose(syn.X, space.decode(syn.obsm["X_phenoseq"]), rtol=1e-5, atol=1e-5)
    assert sorted(set(syn.obs["Sample_ID"].astype(str))) == sorted(wells)
    for col in ("Treatment", "Replicate", "batch", "Group", "phenoseq_seed"):
        assert col in syn.obs.columns
    assert syn.uns["phenoseq"]["model"] == cls.name
    again = cls(screen, space).generate(screen.subset("imaging", wells), cells_per_well=7, seed=2)
    np.testing.assert_array_equal(syn.obsm["X_phenoseq"], again.obsm["X_phenoseq"])
    other = cls(screen, space).generate(screen.subset("imaging", wells), cells_per_well=7, seed=3)
    assert not np.array_equal(syn.obsm["X_phenoseq"], other.obsm["X_phenoseq"])


@pytest.mark.parametrize("cls", ALL)
def test_a_wells_cells_do_not_depend_on_the_other_wells(setup, cls):
    screen, space = setup
    wells = screen.wells_in("test")[:4]
    model = cls(screen, space)
    many = model.generate(screen.subset("imaging", wells), cells_per_well=5, seed=0)
    one = model.generate(screen.subset("imaging", wells[2:3]), cells_per_well=5, seed=0)
    np.testing.assert_array_equal(many.obsm["X_phenoseq"][many.obs["Sample_ID"] == wells[2]], one.obsm["X_phenoseq"])


def test_fitted_on_training_wells_only(small_screen_data, setup):
    """Replacing every non-training well's RNA and imaging-free data leaves the fitted baselines unchanged."""
    from phenoseq.io import PairedScreen

    screen, space = setup
    imaging, rnaseq = small_screen_data
    corrupted = rnaseq.copy()
    rows = ~corrupted.obs["Replicate"].astype(str).isin(["3"]).to_numpy()
    X = corrupted.X.tolil()
    X[np.flatnonzero(rows)] = 7.0
    corrupted.X = X.tocsr()
    other = PairedScreen(imaging.copy(), corrupted)
    wells = screen.wells_in("test")[:3]
    for cls in ALL:
        a = cls(screen, space).generate(screen.subset("imaging", wells), 4, seed=0)
        b = cls(other, space).generate(other.subset("imaging", wells), 4, seed=0)
        np.testing.assert_array_equal(a.obsm["X_phenoseq"], b.obsm["X_phenoseq"])


def test_nearest_well_returns_a_training_wells_own_cells(setup):
    screen, space = setup
    well = screen.wells_in("train")[0]
    baseline = NearestWellBaseline(screen, space)
    syn = baseline.generate(screen.subset("imaging", [well]), cells_per_well=10, seed=0)
    assert syn.uns["phenoseq"]["source_wells"] == {well: well}
    real = space.transform(screen.subset("rnaseq", [well]))
    assert all(np.any(np.all(np.isclose(real, z, atol=1e-5), axis=1)) for z in syn.obsm["X_phenoseq"])


def test_ridge_centres_follow_morphology(setup):
    screen, space = setup
    ridge = RidgeBaseline(screen, space)
    wells = screen.wells_in("train")
    syn = ridge.generate(screen.subset("imaging", wells), cells_per_well=200, seed=0)
    samples = syn.obs["Sample_ID"].astype(str).to_numpy()
    pred = np.stack([syn.obsm["X_phenoseq"][samples == w].mean(axis=0) for w in wells])
    rna = screen.subset("rnaseq", wells)
    real_z, real_s = space.transform(rna), rna.obs["Sample_ID"].astype(str).to_numpy()
    truth = np.stack([real_z[real_s == w].mean(axis=0) for w in wells])
    # Predicted well means correlate with the real ones (in-sample, so this checks the fit, not generalisation).
    assert np.corrcoef(pred.ravel(), truth.ravel())[0, 1] > 0.5


def test_bad_requests(setup):
    screen, space = setup
    wells = screen.wells_in("test")[:2]
    with pytest.raises(PhenoseqError, match="cells_per_well"):
        RidgeBaseline(screen, space).generate(screen.subset("imaging", wells), 0)
    with pytest.raises(PhenoseqError, match="features"):
        NearestWellBaseline(screen, space).generate(screen.subset("imaging", wells)[:, :10], 3)


def _well_means(syn, wells):
    samples = syn.obs["Sample_ID"].astype(str).to_numpy()
    return np.stack([syn.obsm["X_phenoseq"][samples == w].mean(axis=0) for w in wells])


def test_mean_and_control_centres_are_exact(setup):
    """Residuals are re-centred per well: a well's synthetic mean is exactly the baseline's centre."""
    screen, space = setup
    wells = screen.wells_in("test")[:3]
    train = space.transform(screen.subset("rnaseq", screen.wells_in("train")))
    labels = screen.subset("rnaseq", screen.wells_in("train")).obs["Sample_ID"].astype(str).to_numpy()
    per_well = {w: train[labels == w].mean(axis=0) for w in screen.wells_in("train")}
    expected = {"training_mean": np.mean(list(per_well.values()), axis=0),
                "control": np.mean([per_well[w] for w in screen.control_wells("train")], axis=0)}
    for cls in (TrainingMeanBaseline, ControlBaseline):
        syn = cls(screen, space).generate(screen.subset("imaging", wells), cells_per_well=9, seed=0)
        np.testing.assert_allclose(_well_means(syn, wells), np.tile(expected[cls.name], (3, 1)), atol=1e-4)
        # ... with a realistic spread around it (resampled training residuals, not a point mass).
        assert syn.obsm["X_phenoseq"].std(axis=0).mean() > 0.1


def test_control_baseline_needs_control_wells(small_screen_data):
    from phenoseq.io import PairedScreen
    from phenoseq.rna.space import RNASpace

    imaging, rnaseq = (a.copy() for a in small_screen_data)
    for a in (imaging, rnaseq):
        a.obs["Group"] = "treated"
    screen = PairedScreen(imaging, rnaseq)
    space = RNASpace.fit(screen.subset("rnaseq", screen.wells_in("train")), n_latent=8)
    with pytest.raises(PhenoseqError, match="no control wells"):
        ControlBaseline(screen, space)
    assert "control" not in standard_baselines(screen, space)


def test_shuffled_imaging_feeds_every_well_another_wells_imaging(setup):
    """Each well's cells are exactly what the inner generator makes from another well's imaging."""
    screen, space = setup
    wells = screen.wells_in("test")
    nearest = NearestWellBaseline(screen, space)
    shuffled = ShuffledImaging(nearest, sample_key="Sample_ID")
    syn = shuffled.generate(screen.subset("imaging", wells), cells_per_well=4, seed=0)
    donor = syn.uns["phenoseq"]["imaging_from"]
    assert sorted(donor) == sorted(wells) and all(d != w for w, d in donor.items())
    assert sorted(donor.values()) == sorted(wells)  # a permutation: every well's imaging is used once
    direct = nearest.generate(screen.subset("imaging", wells), cells_per_well=4, seed=0).uns["phenoseq"]["source_wells"]
    # The training well a well's cells come from is the one its donor's imaging points to ...
    assert syn.uns["phenoseq"]["source_wells"] == {w: direct[donor[w]] for w in wells}
    # ... while the well keeps its own annotations.
    assert syn.obs.groupby("Sample_ID", observed=True)["Treatment"].first().astype(str).to_dict() == \
        screen.wells.loc[wells, "Treatment"].astype(str).to_dict()


def test_standard_baselines_put_the_main_generator_first(setup):
    screen, space = setup
    ridge = RidgeBaseline(screen, space)
    names = list(standard_baselines(screen, space, ridge))
    assert names == ["ridge", "training_mean", "control", "nearest_well", "shuffled_ridge"]
