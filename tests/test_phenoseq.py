"""The PhenoSeq object: training, the output contract, determinism, save/load, resume, unsafe files."""

import json
import pickle

import numpy as np
import pytest
import torch

from phenoseq import PhenoSeq
from phenoseq.errors import PhenoseqError
from phenoseq.generate import LATENT_KEY
from phenoseq.generate.calibrate import WellScores
from phenoseq.groups import group_means


@pytest.fixture(scope="module")
def trained(small_screen_data, tmp_path_factory):
    from phenoseq.io import PairedScreen

    imaging, rnaseq = small_screen_data
    screen = PairedScreen(imaging.copy(), rnaseq.copy())
    model = PhenoSeq(screen, preset="tiny", seed=0)
    model.train(max_epochs=3)
    return screen, model


def test_training_history(trained):
    _, model = trained
    assert [h["epoch"] for h in model.history] == [1, 2, 3]
    assert all(np.isfinite(h["train_loss"]) and np.isfinite(h["val_loss"]) for h in model.history)


def test_model_learns_held_out_well_means_and_spread(trained):
    """On the test wells (replicates never trained on), the model's predicted well-mean change correlates with
    the real one, and each well's synthetic cells spread about as much as its real cells. A broken well↔cell
    pairing, or imaging fed from other wells, would fail this."""
    from phenoseq.generate.baselines import ShuffledImaging
    from phenoseq.groups import group_means

    screen, model = trained
    wells = sorted(screen.wells_in("test"))
    real = screen.subset("rnaseq", wells)
    z_real = model.get_latent_representation(real)
    _, real_means = group_means(z_real, real.obs["Sample_ID"].astype(str).to_numpy(), wells)
    train = screen.subset("rnaseq", screen.wells_in("train"))
    centre = group_means(model.get_latent_representation(train), train.obs["Sample_ID"].astype(str).to_numpy())[1].mean(0)

    def well_r(generator) -> tuple[float, np.ndarray]:
        syn = generator.generate(screen.subset("imaging", wells), cells_per_well=30, seed=0)
        samples = syn.obs["Sample_ID"].astype(str).to_numpy()
        _, means = group_means(syn.obsm[LATENT_KEY], samples, wells)
        r = [np.corrcoef(p - centre, t - centre)[0, 1] for p, t in zip(means, real_means)]
        spread = np.array([syn.obsm[LATENT_KEY][samples == w].std(0).mean() for w in wells])
        return float(np.median(r)), spread

    r_model, spread = well_r(model)
    r_shuffled, _ = well_r(ShuffledImaging(model))
    assert r_model > 0.5 and r_model > r_shuffled + 0.3, (r_model, r_shuffled)
    real_spread = np.array([z_real[real.obs["Sample_ID"].astype(str).to_numpy() == w].std(0).mean() for w in wells])
    assert 0.6 < np.median(spread / real_spread) < 1.5


def test_output_contract(trained):
    screen, model = trained
    imaging = screen.subset("imaging", screen.wells_in("test")[:3])
    syn = model.generate(imaging, cells_per_well=7, seed=3)
    assert syn.n_obs == 21
    assert syn.obsm[LATENT_KEY].shape == (21, model.rna_space.n_latent)
    assert list(syn.var_names) == model.rna_space.genes
    assert syn.X.shape == (21, len(model.rna_space.genes)) and (syn.X >= 0).all()
    for col in ("Sample_ID", "Treatment", "Replicate", "batch", "Group", "phenoseq_seed", "phenoseq_ood",
                "phenoseq_ood_score"):
        assert col in syn.obs.columns
    first = syn.obs.iloc[0]
    well = imaging.obs[imaging.obs["Sample_ID"] == first["Sample_ID"]].iloc[0]
    assert first["Treatment"] == well["Treatment"] and first["Replicate"] == well["Replicate"]
    meta = syn.uns["phenoseq"]
    assert meta["sampler"] == "dpm++2m" and meta["steps"] == model.config.steps and meta["guidance"] == 1.0
    assert np.allclose(syn.X, model.rna_space.decode(syn.obsm[LATENT_KEY]))


def test_generation_is_deterministic_and_well_local(trained):
    screen, model = trained
    wells = screen.wells_in("test")[:4]
    a = model.generate(screen.subset("imaging", wells), cells_per_well=5, seed=1)
    b = model.generate(screen.subset("imaging", wells), cells_per_well=5, seed=1)
    assert np.array_equal(a.obsm[LATENT_KEY], b.obsm[LATENT_KEY])
    # A well's cells do not depend on which other wells are generated with it.
    c = model.generate(screen.subset("imaging", wells[2:3]), cells_per_well=5, seed=1)
    mask = (a.obs["Sample_ID"] == wells[2]).to_numpy()
    assert np.allclose(a.obsm[LATENT_KEY][mask], c.obsm[LATENT_KEY], atol=1e-4)
    d = model.generate(screen.subset("imaging", wells), cells_per_well=5, seed=2)
    assert not np.allclose(a.obsm[LATENT_KEY], d.obsm[LATENT_KEY])


def test_imaging_only_wells_and_guidance(trained):
    screen, model = trained
    imaging = screen.subset("imaging", screen.wells_in("test")[:2]).copy()
    imaging.obs["Sample_ID"] = imaging.obs["Sample_ID"].astype(str) + "-new"  # a well with no RNA anywhere
    syn = model.generate(imaging, cells_per_well=4, guidance=2.0, sampler="ddim", steps=10)
    assert syn.n_obs == 8 and syn.uns["phenoseq"]["guidance"] == 2.0
    assert set(syn.obs["Sample_ID"]) == set(imaging.obs["Sample_ID"])


def test_ood_flags_unfamiliar_morphology(trained):
    screen, model = trained
    # A copy of training wells under new names is as familiar as a well can be; the same wells pushed far
    # from every training well are obviously novel.
    duplicate = screen.subset("imaging", screen.wells_in("train")[:3]).copy()
    duplicate.obs["Sample_ID"] = duplicate.obs["Sample_ID"].astype(str) + "-again"
    shifted = duplicate.copy()
    shifted.X = shifted.X + 25.0 * np.asarray(model.imaging_scaler.scale)
    shifted.obs["Sample_ID"] = shifted.obs["Sample_ID"].astype(str) + "-shifted"
    normal = model.wells(model.generate(duplicate, cells_per_well=2))
    odd = model.wells(model.generate(shifted, cells_per_well=2))
    assert not normal.obs["phenoseq_ood"].any() and (normal.obs["phenoseq_ood_score"] < 1e-3).all()
    assert odd.obs["phenoseq_ood"].all()
    assert odd.obs["phenoseq_confidence"].max() < normal.obs["phenoseq_confidence"].min()
    assert (odd.layers["upper"] - odd.layers["lower"]).mean() > (normal.layers["upper"] - normal.layers["lower"]).mean()


def test_well_level_output(trained):
    screen, model = trained
    assert model.calibration is not None and model.calibration.n_wells["seen"] == len(screen.wells_in("val"))
    wells_ids = screen.wells_in("test")[:4]
    syn = model.generate(screen.subset("imaging", wells_ids), cells_per_well=6, seed=2)
    wells = model.wells(syn, level=0.8)
    assert sorted(wells.obs_names) == sorted(wells_ids) and list(wells.var_names) == model.rna_space.genes
    first = wells_ids[0]
    assert np.allclose(wells[first].X, syn[syn.obs["Sample_ID"] == first].X.mean(axis=0), atol=1e-5)
    assert (wells.layers["lower"] <= wells.X).all() and (wells.X <= wells.layers["upper"]).all()
    conf = wells.obs["phenoseq_confidence"]
    assert ((conf > 0) & (conf <= 1)).all()
    for col in ("Treatment", "Replicate", "phenoseq_ood", "phenoseq_ood_score", "phenoseq_disagreement",
                "phenoseq_control_likeness", "phenoseq_calibration", "phenoseq_n_cells"):
        assert col in wells.obs.columns
    assert (wells.obs["phenoseq_n_cells"] == 6).all()
    controls = model.wells(model.generate(screen.subset("imaging", screen.control_wells("test")), cells_per_well=2))
    assert (controls.obs["phenoseq_control_likeness"] == 0).all()  # a control is meant to look like one
    like = wells.obs["phenoseq_control_likeness"]
    assert ((like > 0) & (like <= 1)).all()
    assert wells.uns["phenoseq"]["calibrated"] and wells.uns["phenoseq"]["level"] == 0.8
    wider = model.wells(syn, level=0.95)
    assert ((wider.layers["upper"] - wider.layers["lower"]) >= (wells.layers["upper"] - wells.layers["lower"])).all()
    with pytest.raises(PhenoseqError, match="between 0 and 1"):
        model.wells(syn, level=1.5)


def test_bad_generation_input(trained):
    screen, model = trained
    imaging = screen.subset("imaging", screen.wells_in("test")[:1])
    with pytest.raises(PhenoseqError, match=r"morphology features are absent"):
        model.generate(imaging[:, :5].copy())
    with pytest.raises(PhenoseqError, match="unknown sampler"):
        model.generate(imaging, sampler="euler")


def test_save_load_gives_identical_samples(trained, tmp_path):
    screen, model = trained
    model.save(tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["model.json", "model.safetensors"]
    back = PhenoSeq.load(tmp_path / "m")
    imaging = screen.subset("imaging", screen.wells_in("test")[:3])
    a = model.generate(imaging, cells_per_well=4, seed=5)
    b = back.generate(imaging, cells_per_well=4, seed=5)
    assert np.array_equal(a.obsm[LATENT_KEY], b.obsm[LATENT_KEY])
    assert back.history == model.history
    wa, wb = model.wells(a), back.wells(b)  # the calibration travels with the model
    assert np.allclose(wa.layers["upper"], wb.layers["upper"]) and np.allclose(wa.obs["phenoseq_confidence"],
                                                                               wb.obs["phenoseq_confidence"])


def test_anchor_sets_the_well_mean_and_can_be_turned_off(trained, small_screen, tmp_path):
    screen, model = trained
    assert model.anchor is not None and model.anchor.blend + model.anchor.bandwidth > 0  # recalls training wells
    imaging = screen.subset("imaging", screen.wells_in("test")[:3])
    syn = model.generate(imaging, cells_per_well=5, seed=1)
    means = syn.obsm[LATENT_KEY].reshape(3, 5, -1).mean(axis=1)
    well = model._imaging(imaging)
    morphology = np.stack([well.features[s:s + n].numpy().mean(0) for s, n in zip(well.starts, well.counts)])
    np.testing.assert_allclose(means, model.anchor.predict(morphology), atol=1e-4)  # the mean is the anchor's
    plain = PhenoSeq(small_screen, preset="tiny", seed=0, anchor=False)
    plain.train(max_epochs=1)
    assert plain.anchor is None
    plain.save(tmp_path / "plain")
    back = PhenoSeq.load(tmp_path / "plain")
    assert back.anchor is None and not back.config.anchor
    a, b = plain.generate(imaging, cells_per_well=3, seed=2), back.generate(imaging, cells_per_well=3, seed=2)
    assert np.array_equal(a.obsm[LATENT_KEY], b.obsm[LATENT_KEY])


def test_resume_continues_to_the_same_model(small_screen, tmp_path):
    straight = PhenoSeq(small_screen, preset="tiny", seed=4)
    straight.train(max_epochs=2)
    first = PhenoSeq(small_screen, preset="tiny", seed=4)
    first.train(max_epochs=1, checkpoint_dir=tmp_path / "run")
    resumed = PhenoSeq.load(tmp_path / "run")
    assert resumed.trainer.state.epoch == 1
    resumed.resume(small_screen, max_epochs=2)
    for (name, a), b in zip(straight.denoiser.state_dict().items(), resumed.denoiser.state_dict().values()):
        assert torch.equal(a, b), name
    assert straight.history == resumed.history


def test_refuses_foreign_checkpoint_files(trained, tmp_path):
    _, model = trained
    good = model.save(tmp_path / "good")
    # A pickle in place of the tensors must be refused without being unpickled.
    evil = tmp_path / "evil"
    evil.mkdir()
    (evil / "model.json").write_text((good / "model.json").read_text())
    (evil / "model.safetensors").write_bytes(pickle.dumps({"x": 1}, protocol=4))
    with pytest.raises(PhenoseqError, match="pickle"):
        PhenoSeq.load(evil)
    # A truncated tensor file.
    cut = tmp_path / "cut"
    cut.mkdir()
    (cut / "model.json").write_text((good / "model.json").read_text())
    (cut / "model.safetensors").write_bytes((good / "model.safetensors").read_bytes()[:1000])
    with pytest.raises(PhenoseqError, match="not a valid safetensors file"):
        PhenoSeq.load(cut)
    # JSON that is not phenoseq's, or is truncated.
    (cut / "model.json").write_text(json.dumps({"hello": 1}))
    with pytest.raises(PhenoseqError, match="not a phenoseq checkpoint"):
        PhenoSeq.load(cut)
    (cut / "model.json").write_text((good / "model.json").read_text()[:50])
    with pytest.raises(PhenoseqError, match="not valid JSON"):
        PhenoSeq.load(cut)
    with pytest.raises(PhenoseqError, match="not a directory"):
        PhenoSeq.load(tmp_path / "nowhere")


def test_bulk_mode_single_profiles(small_screen_data):
    """One imaging profile and one expression profile per sample still trains and generates."""
    import anndata as ad

    from phenoseq.io import PairedScreen

    imaging, rnaseq = small_screen_data

    def well_means(a, X):
        obs = a.obs.groupby("Sample_ID", observed=True).first()
        means = np.stack([np.asarray(X[(a.obs["Sample_ID"] == s).to_numpy()].mean(axis=0)).ravel() for s in obs.index])
        return ad.AnnData(means.astype(np.float32), obs=obs.astype(str).rename_axis(None).assign(Sample_ID=obs.index),
                          var=a.var.copy())

    from phenoseq.rna import log_normalise

    bulk_img = well_means(imaging, imaging.X)
    bulk_rna = well_means(rnaseq, log_normalise(rnaseq.X))
    screen = PairedScreen(bulk_img, bulk_rna, rna_kind="expression")
    model = PhenoSeq(screen, preset="tiny", rna_kind="expression", n_latent=8, seed=0)
    model.train(max_epochs=2)
    syn = model.generate(bulk_img, cells_per_well=1)
    assert syn.n_obs == bulk_img.n_obs and np.isfinite(syn.X).all()


def test_training_in_a_provided_embedding(small_screen_data, tmp_path):
    """With rna_embedding the model generates in that space: X is empty and obsm holds the embedding."""
    from phenoseq.io import PairedScreen
    from phenoseq.rna import log_normalise

    imaging, rnaseq = small_screen_data
    rnaseq = rnaseq.copy()
    rng = np.random.default_rng(0)
    rnaseq.obsm["X_embedding"] = (log_normalise(rnaseq.X) @ rng.normal(size=(rnaseq.n_vars, 12))).astype(np.float32)
    screen = PairedScreen(imaging.copy(), rnaseq)
    model = PhenoSeq(screen, preset="tiny", rna_embedding="X_embedding", seed=0)
    model.train(max_epochs=1)
    syn = model.generate(screen.subset("imaging", screen.wells_in("test")[:2]), cells_per_well=3)
    assert syn.X.shape == (6, 0) and syn.obsm[LATENT_KEY].shape == (6, 12)
    model.save(tmp_path / "m")
    back = PhenoSeq.load(tmp_path / "m")
    assert np.allclose(back.get_latent_representation(rnaseq), rnaseq.obsm["X_embedding"])
    with pytest.raises(PhenoseqError, match=r"no obsm\['X_embedding'\]"):
        PhenoSeq(PairedScreen(imaging.copy(), small_screen_data[1].copy()), preset="tiny", rna_embedding="X_embedding")


def test_out_of_fold_wells_calibrate_unseen_compounds(trained, monkeypatch):
    screen, model = trained
    k = model.keys
    w = screen.wells
    train, val = sorted(screen.wells_in("train")), sorted(screen.wells_in("val"))
    # Treated wells of training treatments, from training and validation alike.
    treated = sorted(x for x in [*train, *val] if w.loc[x, k.group] != "control")
    assert set(treated) - set(train)
    assert model.calibration.n_wells["unseen_out_of_fold"] == len(treated)
    assert list(model.calibration.set_for(np.array(["a-compound-never-seen"]), 1)) == ["unseen"]
    # Alignment: out-of-fold means = each well's own mean + an offset of its own; a fixed sample of the wells
    # (a small cap, so the sample comes out of order). Each kept well's prediction must be its own real cells
    # moved by its own offset, and its scores its own.
    import phenoseq.phenoseq as module

    names = [*train, *val]
    offsets = np.random.default_rng(0).normal(scale=0.5, size=(len(names), model.rna_space.n_latent))
    own_latent = np.r_[model.anchor.wells_y, model._well_means(val, standardised=False)[1]]
    monkeypatch.setattr(model.anchor, "out_of_fold", lambda *args: own_latent + offsets)
    monkeypatch.setattr(module, "MAX_OUT_OF_FOLD_WELLS", 5)
    val_scores = WellScores(np.ones(len(val)), np.arange(len(val)) + 10.0, np.full(len(val), 0.5))
    predicted, real, scores = model._out_of_fold_wells(val, val_scores, 4, 0, None, "cpu")
    assert len(predicted) == len(real) == len(scores.ood) == 5
    kept = sorted(np.random.default_rng(0).choice(
        [i for i, x in enumerate(names) if x in set(treated)], 5, replace=False), key=lambda i: names[i])
    kept_names = [names[i] for i in kept]
    rna = screen.subset("rnaseq", kept_names)
    samples = rna.obs[k.sample].astype(str).to_numpy()
    moved = model.rna_space.transform(rna) + offsets[[kept[kept_names.index(x)] for x in samples]].astype(np.float32)
    assert np.allclose(predicted, group_means(model.rna_space.decode(moved), samples, kept_names)[1], atol=1e-4)
    treatment = w.loc[train, k.treatment].astype(str).to_numpy()
    for j, i in enumerate(kept):
        name = names[i]
        if name in set(val):  # a validation well keeps calibration's drift and control-likeness
            assert scores.disagreement[j] == val.index(name) + 10.0 and scores.control_likeness[j] == 0.5
            one = model._imaging(screen.subset("imaging", [name]))
            expected = model.ood.leave_group_out_scores(treatment, one, [str(w.loc[name, k.treatment])])[0]
        else:
            expected = model.ood.leave_group_out_scores(treatment)[train.index(name)]
        assert np.isclose(scores.ood[j], expected)
    assert np.isfinite(scores.design()).all()
