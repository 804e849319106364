"""``PhenoSeq``: the model object users hold. Set up on a paired screen, train, generate, save, load.

>>> model = PhenoSeq(screen, preset="cpu", seed=0)
>>> model.train()
>>> synthetic = model.generate(imaging_only_adata, cells_per_well=150)
>>> model.save("my_model"); model = PhenoSeq.load("my_model")
"""

from __future__ import annotations

import copy
import json
import math
import shutil
import time
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import torch

from phenoseq import __version__
from phenoseq import progress as progress_mod
from phenoseq.errors import PhenoseqError
from phenoseq.generate.calibrate import DEFAULT_LEVEL, Calibration, WellScores, novelty_slope
from phenoseq.generate.ood import OODScorer
from phenoseq.generate.output import check_output_size, synthetic_adata, well_metadata
from phenoseq.generate.synthesize import SamplingSettings, sample_latents
from phenoseq.generate.well_output import SCORE_COLUMNS, cell_profiles, well_adata
from phenoseq.generate.seeds import well_rng
from phenoseq.generate.well_ridge import WellRidge, disagreement, leave_group_out_errors
from phenoseq.groups import group_means
from phenoseq.io.files import atomic_path
from phenoseq.io.fingerprint import screen_fingerprint
from phenoseq.io.keys import ScreenKeys
from phenoseq.io.screen import CONTROL, PairedScreen
from phenoseq.io import checkpoint
from phenoseq.model.anchor import WellAnchor
from phenoseq.model.config import ModelConfig
from phenoseq.model.data import Standardiser, WellImaging
from phenoseq.model.denoiser import Denoiser
from phenoseq.model.device import resolve_device
from phenoseq.model.diffusion import SAMPLERS, Diffusion
from phenoseq.model.distributed import current_ranks, process_group
from phenoseq.model.train import Split, Trainer, TrainState
from phenoseq.rna.space import EmbeddingSpace, RNASpace, space_from_state

CALIBRATION_CELLS = 100  # synthetic cells per validation well for calibration: as many as generate's default
MAX_OUT_OF_FOLD_WELLS = 512  # out-of-fold wells that calibrate unseen compounds' intervals (bounds the work)


class PhenoSeq:
    """Image-conditioned diffusion model over an RNA latent space.

    Parameters
    ----------
    screen
        The paired screen to learn from. RNA cells of the training split fit the RNA space and the model;
        the validation split drives early stopping; test splits are never touched.
    preset
        ``"cpu"`` (default), ``"tiny"`` (tests) or ``"paper"`` (published size); see :class:`ModelConfig`.
    seed
        Fixes initialisation and training randomness: the same seed and data give the same model.
    **overrides
        Any :class:`ModelConfig` field, e.g. ``context_size=32``.
    """

    name = "phenoseq"  # the method's name in benchmarks

    def __init__(self, screen: PairedScreen, preset: str = "cpu", seed: int = 0, **overrides) -> None:
        if not isinstance(screen, PairedScreen):
            raise PhenoseqError(f"PhenoSeq needs a PairedScreen to learn from, got {type(screen).__name__}; load a "
                                "saved model with PhenoSeq.load(directory)")
        config = ModelConfig.preset(preset, **overrides)
        k = screen.keys
        train_wells = screen.wells_in("train")
        rna_train = screen.subset("rnaseq", train_wells)
        if config.rna_embedding:
            rna_space = EmbeddingSpace.fit(rna_train, config.rna_embedding)
        else:
            rna_space = RNASpace.fit(rna_train, config.n_latent, config.n_top_genes, kind=config.rna_kind, seed=seed)
        img_train = screen.subset("imaging", train_wells)
        imaging_scaler = Standardiser.fit(img_train.X)
        ood = OODScorer.fit(imaging_scaler(img_train.X), img_train.obs[k.sample].astype(str).to_numpy(),
                            control_samples=screen.control_wells("train"))
        latent_train = rna_space.transform(rna_train)
        self._assemble(config, seed, k, rna_space, screen.imaging.var_names.tolist(), imaging_scaler,
                       Standardiser.fit(latent_train), ood)
        self.screen = screen
        self.well_ridge: WellRidge | None = self._fit_well_ridge()
        if config.anchor:
            self.anchor = self._fit_anchor()
            wells = rna_train.obs[k.sample].astype(str).to_numpy()
            self.deviation_scaler = Standardiser.fit(latent_train - _well_mean_of_each(latent_train, wells))

    def _assemble(self, config: ModelConfig, seed: int, keys: ScreenKeys, rna_space, feature_names: list[str],
                  imaging_scaler: Standardiser, latent_scaler: Standardiser, ood: OODScorer) -> None:
        """Set the fitted parts and build a fresh network, diffusion process and trainer (``__init__`` and
        :meth:`load` both end here)."""
        self.config, self.seed, self.keys = config, seed, keys
        self.rna_space, self.feature_names = rna_space, feature_names
        self.imaging_scaler, self.latent_scaler, self.ood = imaging_scaler, latent_scaler, ood
        self.calibration: Calibration | None = None  # set by calibrate() (after training, on validation wells)
        # With config.anchor: the well-mean regression, and the scaler of the deviations the network generates.
        self.anchor: WellAnchor | None = None
        self.deviation_scaler: Standardiser | None = None
        self.well_ridge = None  # a second opinion on well means (set by __init__ and load)
        self.screen: PairedScreen | None = None
        self.data_fingerprint: str | None = None  # set when training starts; resume checks it
        self.world_size = 1  # processes that trained it (torchrun); resume must use as many
        torch.manual_seed(seed)
        c = config
        self.denoiser = Denoiser(rna_space.n_latent, len(feature_names), c.dim, c.depth, c.heads, c.tokens)
        self.diffusion = Diffusion(prediction=c.prediction, logsnr_min=c.logsnr_min, logsnr_max=c.logsnr_max)
        self.trainer = Trainer(self.denoiser, self.diffusion, c, seed)

    # -- data -------------------------------------------------------------------------------------------
    def check_imaging(self, adata: ad.AnnData, source: str = "imaging") -> None:
        """Refuse imaging without cells, without the model's features or without a sample column (reads only
        ``obs`` and ``var``, so it is cheap on a backed file)."""
        if adata.n_obs == 0:
            raise PhenoseqError(f"{source}: holds no imaging cells; nothing to generate for")
        missing = [f for f in self.feature_names if f not in set(adata.var_names)]
        if missing:
            raise PhenoseqError(
                f"{source}: {len(missing)} of the model's {len(self.feature_names)} morphology features are absent "
                f"(e.g. {missing[:5]}); the imaging data must carry the features the model was trained on."
            )
        if self.keys.sample not in adata.obs.columns:
            raise PhenoseqError(f"{source}: obs has no {self.keys.sample!r} column to group cells into wells")

    def _imaging(self, adata: ad.AnnData, source: str = "imaging") -> WellImaging:
        self.check_imaging(adata, source)
        X = adata[:, self.feature_names].X
        X = np.asarray(X.toarray() if hasattr(X, "toarray") else X, dtype=np.float32)
        if not np.isfinite(X).all():
            raise PhenoseqError(f"{source}: morphology features contain NaN/inf; clean them before generating")
        return WellImaging(self.imaging_scaler(X), adata.obs[self.keys.sample].astype(str).to_numpy())

    def _split(self, imaging: WellImaging, split: str) -> Split:
        wells = self.screen.wells_in(split)
        rna = self.screen.subset("rnaseq", wells)
        samples = rna.obs[self.keys.sample].astype(str).to_numpy()
        latents = self.rna_space.transform(rna)
        if self.anchor is not None:  # the network learns each cell's deviation from its well's mean
            latents = self.deviation_scaler(latents - _well_mean_of_each(latents, samples))
        else:
            latents = self.latent_scaler(latents)
        return Split(torch.from_numpy(latents), np.array([imaging.code[s] for s in samples], dtype=np.int64))

    def get_latent_representation(self, rnaseq: ad.AnnData) -> np.ndarray:
        """``(n_cells, d)`` RNA-space latent of real cells (counts in ``X``), as stored in ``obsm["X_phenoseq"]``."""
        return self.rna_space.transform(rnaseq)

    # -- training ---------------------------------------------------------------------------------------
    @property
    def history(self) -> list[dict]:
        """Per-epoch training record: ``epoch``, ``train_loss``, ``val_loss`` (``phenoseq.pl.history`` draws it)."""
        return self.trainer.state.history

    @property
    def training_state(self) -> TrainState:
        """Where training stands: epochs and steps done, best validation loss and its epoch, whether it stopped."""
        return self.trainer.state

    def train(self, progress: progress_mod.Progress | None = None, max_epochs: int | None = None,
              checkpoint_dir: str | Path | None = None, checkpoint_every: float = 30.0,
              device: str = "auto") -> list[dict]:
        """Train (or continue training) on the training split; returns the per-epoch history.

        ``device``: ``"cpu"``, ``"cuda"`` (``"cuda:N"``) or ``"auto"`` (a GPU when there is one); the model is
        back on the CPU afterwards.

        With ``checkpoint_dir`` the model is saved there at the end and, during training, at an epoch boundary
        every ``checkpoint_every`` seconds, so an interrupted run resumes exactly from its last checkpoint
        (``PhenoSeq.load(dir).resume(screen)``).

        Started by torchrun (``torchrun --nproc_per_node N``), the processes train data-parallel
        (:mod:`phenoseq.model.distributed`): each takes a share of every batch, each GPU process its own GPU;
        only rank 0 checkpoints, calibrates and saves.
        """
        if self.screen is None:
            raise PhenoseqError("this model has no screen attached; use resume(screen) to continue training")
        _check_count("max_epochs", max_epochs)
        device = resolve_device(device)
        self.check_world_size()
        if checkpoint_dir is not None and self.trainer.state.epoch == 0:
            existing = [f for f in ("model.safetensors", "model.json") if (Path(checkpoint_dir) / f).exists()]
            if existing:
                raise PhenoseqError(f"{checkpoint_dir} already holds a model ({existing}); choose another directory, "
                                    "or load it and call resume(screen) to continue its training")
        self.data_fingerprint = self.data_fingerprint or screen_fingerprint(self.screen)
        wells = self.screen.wells_in("train") + self.screen.wells_in("val")
        imaging = self._imaging(self.screen.subset("imaging", wells), self.screen.sources[0])
        train, val = self._split(imaging, "train"), self._split(imaging, "val")
        with process_group(device) as ranks:
            device = ranks.device(device)
            self.world_size = ranks.world_size
            last_save = time.monotonic()

            def on_epoch_end() -> None:
                nonlocal last_save
                if checkpoint_dir is not None and time.monotonic() - last_save > checkpoint_every:
                    self.save(checkpoint_dir, overwrite=True)
                    last_save = time.monotonic()

            try:
                self.trainer.to(device).run(imaging, train, val, progress, max_epochs,
                                            on_epoch_end if ranks.is_main else None, ranks)
            finally:
                self.trainer.to(torch.device("cpu"))
        if not ranks.is_main:  # the other ranks hold the same weights; rank 0 calibrates and saves them
            return self.history
        if self.screen.wells_in("val"):
            self.calibrate(progress=progress, device=device)
        if checkpoint_dir is not None:
            self.save(checkpoint_dir, overwrite=True)
        return self.history

    def check_world_size(self) -> None:
        """Refuse to continue a run with another number of processes than it was trained with (a different
        number splits every batch differently, so the resumed run would not be the one interrupted)."""
        world_size = current_ranks().world_size
        if self.trainer.state.epoch and world_size != self.world_size:
            how = f"torchrun --nproc_per_node {self.world_size}" if self.world_size > 1 else "without torchrun"
            raise PhenoseqError(f"this run was trained by {self.world_size} process(es) and is now continued by "
                                f"{world_size}; continue it with {self.world_size} ({how}) to resume it exactly")

    def calibrate(self, cells_per_well: int = CALIBRATION_CELLS, seed: int = 0,
                  progress: progress_mod.Progress | None = None, device: str = "auto") -> Calibration:
        """Fit the prediction intervals, confidence and OOD threshold on the validation wells (which the model
        did not train on): generate for their imaging, compare with their real RNA
        (:mod:`phenoseq.generate.calibrate`). :meth:`train` calls it at the end; returns the calibration."""
        if self.screen is None:
            raise PhenoseqError("calibration needs the screen the model was trained on; use resume(screen) first")
        wells = sorted(self.screen.wells_in("val"))
        if not wells:
            raise PhenoseqError("the screen has no validation wells to calibrate on; put some wells of seen (and, "
                                "ideally, unseen) treatments in the validation split")
        k = self.keys
        if self.well_ridge is None:  # a model saved before the ridge member existed, resumed on its screen
            self.well_ridge = self._fit_well_ridge()
        self.calibration = None  # the cells generated below must not use an earlier calibration
        syn = self.generate(self.screen.subset("imaging", wells), cells_per_well=cells_per_well, seed=seed,
                            progress=progress, counts=False, device=device)
        samples = syn.obs[k.sample].astype(str).to_numpy()
        names, predicted = group_means(cell_profiles(syn), samples, wells)
        real_rna = self.screen.subset("rnaseq", wells)
        real = group_means(self._profile_of_rna(real_rna), real_rna.obs[k.sample].astype(str).to_numpy(), wells)[1]
        train_rna = self.screen.subset("rnaseq", self.screen.wells_in("train"))
        train_means = group_means(self._profile_of_rna(train_rna), train_rna.obs[k.sample].astype(str).to_numpy())[1]
        per_well = syn.obs.groupby(k.sample, observed=True)[list(SCORE_COLUMNS)].first().loc[names]
        scores = WellScores(*(per_well[c].to_numpy() for c in SCORE_COLUMNS))
        treatment = self.screen.wells[k.treatment].astype(str)
        train_treatments = sorted(set(treatment.loc[self.screen.wells_in("train")]))
        unseen = ~np.isin(treatment.loc[names].to_numpy(), train_treatments)
        out_of_fold = None if unseen.any() else self._out_of_fold_wells(names, scores, cells_per_well, seed, progress,
                                                                        device)
        self.calibration = Calibration.fit(predicted, real, scores, unseen, train_means.mean(axis=0), train_treatments,
                                           novelty_slope=self._novelty_slope(names, scores.ood),
                                           out_of_fold=out_of_fold)
        return self.calibration

    def _out_of_fold_wells(self, val_wells: list[str], val_scores: WellScores, cells_per_well: int, seed: int,
                           progress: progress_mod.Progress | None,
                           device: str | torch.device) -> tuple[np.ndarray, np.ndarray, WellScores] | None:
        """Treated wells of the training treatments seen as an unseen compound's wells: the training wells and
        the validation wells ``val_wells`` (sorted, all of training treatments; ``val_scores`` their scores from
        calibration), at most ``MAX_OUT_OF_FOLD_WELLS`` (a fixed sample), in sorted well order.

        Returns ``(n, G)`` predicted means, from the anchor refitted without their treatment's fold
        (:meth:`WellAnchor.out_of_fold`) applied to the well's real cells' deviations, so that clipping at zero
        acts as on generated cells; ``(n, G)`` real means; and their scores as wells of an unseen treatment:
        novelty against the other treatments' training wells, the network's drift and control-likeness (a
        validation well's as calibration measured them). The drift of a training well is measured on a well the
        network trained on, so it reads low and the unseen intervals err wide. None without an anchor or with
        fewer than two treatments."""
        k = self.keys
        train = sorted(self.screen.wells_in("train"))
        if self.anchor is None or len(self.anchor.wells_x) != len(train):
            return None
        treatment = self.screen.wells.loc[train, k.treatment].astype(str).to_numpy()
        if len(np.unique(treatment)) < 2 or len(self.ood.means) != len(train):
            return None
        val_treatment = self.screen.wells.loc[val_wells, k.treatment].astype(str).to_numpy()
        X_val, Y_val = self._well_means(val_wells, standardised=False)
        val_imaging = self._imaging(self.screen.subset("imaging", val_wells))
        names = np.array(train + list(val_wells))
        shift = self.anchor.out_of_fold(treatment, X_val, val_treatment) - np.r_[self.anchor.wells_y, Y_val]
        ood = np.r_[self.ood.leave_group_out_scores(treatment),
                    self.ood.leave_group_out_scores(treatment, val_imaging, val_treatment)]
        drift = np.r_[np.full(len(train), np.nan), val_scores.disagreement]
        like = np.r_[np.full(len(train), np.nan), val_scores.control_likeness]
        control = self.screen.wells.loc[names, k.group].astype(str).to_numpy() == CONTROL
        rows = np.flatnonzero(~control & np.isfinite(ood))
        if len(rows) > MAX_OUT_OF_FOLD_WELLS:
            rows = np.random.default_rng(0).choice(rows, MAX_OUT_OF_FOLD_WELLS, replace=False)
        if not len(rows):
            return None
        rows = rows[np.argsort(names[rows])]  # sorted well order, as the sampler and WellImaging give it
        kept = names[rows].tolist()
        trained_on = rows[rows < len(train)]  # training wells, still in sorted order
        if len(trained_on):
            imaging = self.screen.subset("imaging", names[trained_on].tolist())
            well_imaging = self._imaging(imaging)
            z = sample_latents(self.denoiser_for_sampling(device), self.diffusion, well_imaging,
                               self._sampling_settings(cells_per_well, seed), self.rna_space.n_latent, progress)[0]
            drift[trained_on] = self._drift(z, cells_per_well)
            like[trained_on] = self._control_likeness(well_imaging, well_metadata(imaging, k))
        rna = self.screen.subset("rnaseq", kept)
        samples = rna.obs[k.sample].astype(str).to_numpy()
        shifted = self.rna_space.transform(rna) + shift[rows[np.searchsorted(kept, samples)]].astype(np.float32)
        predicted = group_means(self.rna_space.decode(shifted) if self.rna_space.genes else shifted, samples, kept)[1]
        real = group_means(self._profile_of_rna(rna), samples, kept)[1]
        return predicted, real, WellScores(ood[rows], drift[rows], like[rows])

    def _well_means(self, wells: list[str], standardised: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """``(n, F)`` mean standardised morphology and ``(n, d)`` mean latent of screen wells (standardised, or
        as the RNA space gives it)."""
        img, rna = self.screen.subset("imaging", wells), self.screen.subset("rnaseq", wells)
        k = self.keys
        morphology = group_means(self.imaging_scaler(np.asarray(img[:, self.feature_names].X)),
                                 img.obs[k.sample].astype(str).to_numpy(), wells)[1]
        latent = self.rna_space.transform(rna)
        latent = group_means(self.latent_scaler(latent) if standardised else latent,
                             rna.obs[k.sample].astype(str).to_numpy(), wells)[1]
        return morphology, latent

    def _fit_well_ridge(self) -> WellRidge:
        """The ridge member on the training wells, its penalty chosen by leaving out a treatment at a time."""
        train = sorted(self.screen.wells_in("train"))
        return WellRidge.fit(*self._well_means(train), groups=self.screen.wells.loc[train, self.keys.treatment])

    def _fit_anchor(self) -> WellAnchor:
        """The well-mean regression on the training wells (memory bandwidth chosen on the validation wells). It
        works on unstandardised latents, so its error is the error in expression over the model's genes."""
        train, val = sorted(self.screen.wells_in("train")), sorted(self.screen.wells_in("val"))
        treatments = self.screen.wells.loc[train, self.keys.treatment].astype(str).to_numpy()
        X_val, Y_val = self._well_means(val, standardised=False) if val else (None, None)
        rna = self.screen.subset("rnaseq", train)
        cell_well = np.searchsorted(train, rna.obs[self.keys.sample].astype(str).to_numpy())
        return WellAnchor.fit(*self._well_means(train, standardised=False), treatments, X_val, Y_val,
                              cells=self.rna_space.transform(rna), cell_well=cell_well)

    def _novelty_slope(self, val_wells: list[str], val_ood: np.ndarray) -> float | None:
        """How fast a regression's error grows with morphological novelty, measured where novelty varies: the
        ridge member on the validation wells, and on each training treatment's wells when fitted without that
        treatment (scored against the other treatments' wells, as an unseen compound would be)."""
        train = sorted(self.screen.wells_in("train"))
        X, Y = self._well_means(train)
        w = self.screen.wells.loc[train]
        treatment = w[self.keys.treatment].astype(str).to_numpy()
        targets = np.where(w[self.keys.group].astype(str).to_numpy() == CONTROL, None, treatment)
        loco = leave_group_out_errors(X, Y, targets, self.well_ridge.alpha)
        loco_ood = self.ood.leave_group_out_scores(treatment)
        if len(loco_ood) != len(train):  # the OOD scorer saw other wells (cannot happen for a screen's own model)
            return None
        Xv, Yv = self._well_means(val_wells)
        val_err = np.sqrt(((self.well_ridge.predict(Xv) - Yv) ** 2).mean(axis=1))
        return novelty_slope(np.r_[loco_ood, val_ood], np.r_[loco, val_err])

    def _profile_of_rna(self, rna: ad.AnnData) -> np.ndarray:
        """Real cells in the space of the well-level output: expression when the space has genes, else latent."""
        return self.rna_space.expression(rna) if self.rna_space.genes else self.rna_space.transform(rna)

    def resume(self, screen: PairedScreen, progress: progress_mod.Progress | None = None,
               max_epochs: int | None = None, checkpoint_dir: str | Path | None = None,
               device: str = "auto") -> list[dict]:
        """Continue an interrupted training run of a loaded model on the same screen."""
        if screen.imaging.var_names.tolist() != self.feature_names:
            raise PhenoseqError("resume needs the screen the model was trained on: its imaging features differ")
        if self.data_fingerprint and screen_fingerprint(screen) != self.data_fingerprint:
            raise PhenoseqError(
                f"resume needs the data the run started on, but the training/validation cells of "
                f"{' and '.join(screen.sources)} differ from it (other files, genes, cells or split map). Pass the "
                "original files, or start a new run in a new output folder"
            )
        self.screen = screen
        return self.train(progress, max_epochs, checkpoint_dir, device=device)

    def checkpoint_bytes(self) -> int:
        """About how large :meth:`save` will write the model: network, EMA, best weights and two optimiser
        moments (five copies of every weight), plus the RNA space and scalers."""
        weights = sum(p.numel() for p in self.denoiser.parameters()) * 4 * 5
        rna = sum(np.asarray(v).nbytes for v in self.rna_space.state()[0].values())
        anchor = sum(np.asarray(v).nbytes for v in self.anchor.state()[0].values()) if self.anchor is not None else 0
        return int(weights + rna + anchor + self.ood.components.nbytes + self.ood.means.nbytes + 2**20)

    def denoiser_for_sampling(self, device: str | torch.device = "cpu") -> Denoiser:
        """The network with the best EMA weights (what generation uses), on ``device``."""
        net = copy.deepcopy(self.denoiser)
        net.load_state_dict(self.trainer.best)
        return net.to(resolve_device(device)).eval()

    # -- generation -------------------------------------------------------------------------------------
    def generate(self, imaging: ad.AnnData, cells_per_well: int = 100, seed: int = 0, sampler: str | None = None,
                 steps: int | None = None, guidance: float | None = None, context_size: int | None = None,
                 progress: progress_mod.Progress | None = None, source: str = "imaging",
                 counts: bool = True, device: str = "auto") -> ad.AnnData:
        """Synthetic RNA cells for every well of ``imaging`` (seen in training or not, with or without RNA).

        Returns AnnData in the output contract (:mod:`phenoseq.generate.output`): ``cells_per_well`` rows per
        well, ``obsm["X_phenoseq"]`` latents, ``X`` decoded log1p(CP10k) over the model's genes, obs with the
        well's keys, ``phenoseq_seed``, ``phenoseq_ood_score`` and ``phenoseq_ood`` (the well's morphology is
        unlike every training well: trust its synthetic cells less).

        With ``config.anchor`` (the default) a well's synthetic mean is the anchor's prediction from the well's
        mean morphology (:mod:`phenoseq.model.anchor`) and the network, conditioned on the well's imaging cells,
        gives each cell's deviation from it (re-centred, so the well mean is exactly the anchor's when
        ``cells_per_well > 1``).

        ``context_size`` sets how many imaging cells condition each synthetic cell (default: as in training).
        ``source`` names ``imaging`` in error messages (its file path, say). ``counts=False`` leaves out
        ``layers["counts"]``. ``device``: where the network runs (``"cpu"``, ``"cuda"``, ``"auto"``).
        """
        sampler = self.check_generation(cells_per_well, sampler, steps, guidance, context_size)
        well_imaging = self._imaging(imaging, source)
        check_output_size(len(well_imaging.names) * cells_per_well, len(self.rna_space.genes or ()), self.rna_space.n_latent)
        settings = self._sampling_settings(cells_per_well, seed, sampler, steps, guidance, context_size)
        n = settings.context_size
        z, samples, seeds = sample_latents(self.denoiser_for_sampling(device), self.diffusion, well_imaging, settings,
                                           self.rna_space.n_latent, progress)
        if self.anchor is not None:
            dis = self._drift(z, cells_per_well)
            latent = self._anchored(z, well_imaging, cells_per_well, seed)
        else:
            latent = self.latent_scaler.inverse(z)
            dis = self._disagreement(well_imaging, z, samples)
        score = self.ood.score(well_imaging)
        per_cell = np.repeat(score, cells_per_well)
        wells = well_metadata(imaging, self.keys)
        threshold = self.ood_threshold
        meta = {"model": "phenoseq-diffusion", "version": __version__, "sampler": sampler, "steps": settings.steps,
                "guidance": settings.guidance, "seed": seed, "context_size": n, "ood_threshold": threshold}
        extra = {"phenoseq_ood_score": per_cell.astype(np.float32), "phenoseq_ood": per_cell > threshold}
        if dis is not None:
            scores = WellScores(score, dis, self._control_likeness(well_imaging, wells))
            extra |= {c: np.repeat(v, cells_per_well) for c, v in zip(SCORE_COLUMNS[1:], (dis, scores.control_likeness))}
            if self.calibration is not None:
                extra["phenoseq_confidence"] = np.repeat(self.calibration.confidence(scores), cells_per_well)
        return synthetic_adata(latent, samples, wells, self.keys, seeds, meta,
                               decode=self.rna_space.decode, genes=self.rna_space.genes, extra_obs=extra,
                               counts=counts)

    def _sampling_settings(self, cells_per_well: int, seed: int, sampler: str | None = None, steps: int | None = None,
                           guidance: float | None = None, context_size: int | None = None) -> SamplingSettings:
        """The sampler's settings: the model's own where an argument is None."""
        c = self.config
        n = context_size or c.context_size
        return SamplingSettings(cells_per_well, n, max(n, c.pool_size), sampler or c.sampler, steps or c.steps,
                                c.guidance if guidance is None else guidance, c.precision, seed)

    def check_generation(self, cells_per_well: int, sampler: str | None = None, steps: int | None = None,
                         guidance: float | None = None, context_size: int | None = None) -> str:
        """Refuse generation settings that cannot work (before any sampling); return the sampler to use."""
        sampler = sampler or self.config.sampler
        if sampler not in SAMPLERS:
            raise PhenoseqError(f"unknown sampler {sampler!r}; choose one of {list(SAMPLERS)}")
        for name, value in (("cells_per_well", cells_per_well), ("steps", steps), ("context_size", context_size)):
            _check_count(name, value)
        if guidance is not None and not (isinstance(guidance, (int, float)) and math.isfinite(guidance) and guidance >= 0):
            raise PhenoseqError(f"guidance must be a finite number >= 0 (1 = no guidance), got {guidance!r}")
        return sampler

    def _anchored(self, z: np.ndarray, imaging: WellImaging, cells_per_well: int, seed: int) -> np.ndarray:
        """``(n_wells * K, d)`` latents of anchored generation from the network's sampled deviations ``z``
        (wells in sorted order, ``K`` cells each): a recognised well recalls the share of its cells that its
        memory weight gives (real training cells' deviations), the rest are the network's; the deviations are
        re-centred so the well's mean is the anchor's (when ``K > 1``), then the anchor's mean is added."""
        names = imaging.names.tolist()
        morphology = group_means(imaging.features.numpy(), np.repeat(imaging.names, imaging.counts), names)[1]
        means = self.anchor.predict(morphology).astype(np.float32)
        deviation = self.deviation_scaler.inverse(z).reshape(len(names), cells_per_well, -1)
        for i, name in enumerate(names):
            chosen, recalled = self.anchor.recall(morphology[i], cells_per_well, well_rng(seed, name, "recall"))
            deviation[i, chosen] = recalled
        if cells_per_well > 1:
            deviation -= deviation.mean(axis=1, keepdims=True)
        return (deviation + means[:, None]).reshape(len(z), -1)

    def _drift(self, z: np.ndarray, cells_per_well: int) -> np.ndarray:
        """``(n_wells,)`` how far the network's own cells put each well's mean from the anchor's, in standardised
        latent units (RMS over dimensions), with the sampling noise of a ``K``-cell mean taken out. The network
        learnt zero-mean deviations; where its cells drift, morphology and anchor disagree (the anchored model's
        disagreement score)."""
        dev = z.reshape(-1, cells_per_well, z.shape[1]).astype(np.float64)
        noise = dev.var(axis=1, ddof=1) / cells_per_well if cells_per_well > 1 else np.ones_like(dev[:, 0])
        scale = (self.deviation_scaler.scale / self.latent_scaler.scale).astype(np.float64) ** 2
        signal, floor = ((dev.mean(axis=1) ** 2 - noise) * scale).mean(axis=1), (noise * scale).mean(axis=1)
        # A floor at a tenth of the noise keeps a drift lost in noise from reading as "certainly right".
        return np.sqrt(np.maximum(signal, 0.1 * floor)).astype(np.float32)

    def _disagreement(self, imaging: WellImaging, z: np.ndarray, samples: np.ndarray) -> np.ndarray | None:
        """``(n_wells,)`` model–ridge disagreement on each well's mean (sorted well order), or None without a
        ridge (models saved before it existed)."""
        if self.well_ridge is None:
            return None
        names = imaging.names.tolist()
        morphology = group_means(imaging.features.numpy(), np.repeat(imaging.names, imaging.counts), names)[1]
        return disagreement(group_means(z, samples, names)[1], self.well_ridge.predict(morphology))

    def _control_likeness(self, imaging: WellImaging, wells: pd.DataFrame) -> np.ndarray:
        """``(n_wells,)`` control-likeness of each well's morphology, 0 for control wells (whose morphology is
        meant to be a control's) and for a model without training control wells."""
        like = self.ood.control_likeness(imaging)
        if like is None:
            return np.zeros(len(imaging.names), dtype=np.float32)
        if self.keys.group in wells.columns:
            like = np.where(wells.loc[imaging.names, self.keys.group].to_numpy() == CONTROL, 0.0, like)
        return like.astype(np.float32)

    @property
    def ood_threshold(self) -> float:
        """OOD score above which a well is flagged: calibrated to a 5% false-flag rate on validation wells of
        training treatments when the model is calibrated, else 1.5 × the largest leave-one-out training score."""
        return self.calibration.ood_threshold if self.calibration is not None else self.ood.threshold

    def wells(self, synthetic: ad.AnnData, level: float = DEFAULT_LEVEL) -> ad.AnnData:
        """The well-level AnnData of cells this model generated: predicted well means, ``level`` prediction
        intervals, confidence and OOD flag per well (contract in :mod:`phenoseq.generate.well_output`)."""
        return well_adata(synthetic, self.keys, self.calibration, level)

    # -- persistence ------------------------------------------------------------------------------------
    def _component_states(self) -> dict[str, tuple[dict, dict]]:
        """Every fitted part's (tensors, JSON metadata); tensor names carry the part's own prefix."""
        return {"rna_space": self.rna_space.state(), "imaging_scaler": self.imaging_scaler.state("imaging"),
                "latent_scaler": self.latent_scaler.state("latent"), "ood": self.ood.state(),
                "trainer": self.trainer.state_dict(),
                **({"well_ridge": self.well_ridge.state()} if self.well_ridge is not None else {}),
                **({"anchor": self.anchor.state(), "deviation_scaler": self.deviation_scaler.state("deviation")}
                   if self.anchor is not None else {}),
                **({"calibration": self.calibration.state()} if self.calibration is not None else {})}

    def save(self, directory: str | Path, overwrite: bool = False) -> Path:
        """Write ``model.safetensors`` (all tensors) and ``model.json`` (everything else) into ``directory``.

        A directory that already holds a model is replaced only with ``overwrite`` (training checkpoints pass
        it). Both files are written in full beside their final names and only then moved into place; the
        tensors file's header holds the digest of the JSON file, so a pair from two saves is refused on load. A
        folder this call created is removed again when the save fails (a full disk, say).
        """
        from safetensors.torch import save_file

        directory = Path(directory)
        if not overwrite and any((directory / f).exists() for f in ("model.safetensors", "model.json")):
            raise PhenoseqError(f"{directory} already holds a model; choose another directory or pass overwrite=True")
        created = not directory.exists()
        tensors: dict[str, torch.Tensor] = {}
        meta = {"format": checkpoint.FORMAT, "format_version": checkpoint.FORMAT_VERSION,
                "phenoseq_version": __version__, "config": self.config.to_dict(), "seed": self.seed,
                "keys": self.keys.to_dict(), "feature_names": self.feature_names,
                "data_fingerprint": self.data_fingerprint, "world_size": self.world_size}
        for name, (part_tensors, part_meta) in self._component_states().items():
            tensors.update({k: v if isinstance(v, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(v))
                            for k, v in part_tensors.items()})
            meta[name] = part_meta
        try:
            # Standard JSON only: a NaN or Infinity here is a bug upstream, not something to write.
            text = json.dumps(meta, indent=1, allow_nan=False)
        except ValueError as exc:
            raise PhenoseqError(f"cannot save the model: its description holds a NaN or infinite value ({exc})") from exc
        try:
            with atomic_path(directory / "model.safetensors") as tmp_tensors, atomic_path(directory / "model.json") as tmp_json:
                save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp_tensors),
                          metadata={checkpoint.PAIR_KEY: checkpoint.json_digest(text)})
                tmp_json.write_text(text)
        except BaseException:
            if created and directory.is_dir():
                shutil.rmtree(directory, ignore_errors=True)
            raise
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> "PhenoSeq":
        """Load a model saved by :meth:`save`. Only its own safetensors + JSON pair is accepted, and only when
        the two come from the same save, every setting is valid and every weight is finite."""
        directory = Path(directory)
        if not directory.is_dir():
            raise PhenoseqError(f"{directory}: not a directory; a phenoseq model is a directory with model.safetensors and model.json")
        meta, text = checkpoint.read_json(directory / "model.json")
        try:  # a bad setting is named before anything else is read (model.json may have been edited by hand)
            raw_config = meta.get("config")
            if isinstance(raw_config, dict) and "anchor" not in raw_config:  # saved before the anchor existed
                raw_config = {**raw_config, "anchor": False}
            config = ModelConfig.from_dict(raw_config)
        except PhenoseqError as exc:
            raise PhenoseqError(f"{directory / 'model.json'}: {exc}") from exc
        raw = checkpoint.read_tensors(directory / "model.safetensors")
        checkpoint.check_pair(directory / "model.safetensors", text, meta)
        checkpoint.check_finite(raw, directory / "model.safetensors")
        try:
            features = list(meta["feature_names"])
            rna_space = space_from_state(raw, meta["rna_space"])
            # Format 1 kept the OOD threshold and the trainer's metadata at the top level.
            ood_meta = meta.get("ood") or {"threshold": meta["ood_threshold"]}
            trainer_meta = meta.get("trainer") or {k: meta[k] for k in ("train_state", "optimizer")}
            model = cls.__new__(cls)
            model._assemble(config, int(meta["seed"]), ScreenKeys.from_dict(meta["keys"]), rna_space, features,
                            Standardiser.from_state(raw, "imaging", len(features)),
                            Standardiser.from_state(raw, "latent", rna_space.n_latent),
                            OODScorer.from_state(raw, ood_meta, len(features)))
            model.trainer.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in raw.items()}, trainer_meta)
            model.data_fingerprint = meta.get("data_fingerprint")
            model.world_size = int(meta.get("world_size", 1))
            if "well_ridge" in meta:  # models saved before the ridge and calibration existed have neither
                model.well_ridge = WellRidge.from_state(raw, meta["well_ridge"], len(features), rna_space.n_latent)
            if config.anchor:
                model.anchor = WellAnchor.from_state(raw, meta["anchor"], len(features), rna_space.n_latent)
                model.deviation_scaler = Standardiser.from_state(raw, "deviation", rna_space.n_latent)
            if "calibration" in meta and model.well_ridge is not None:
                width = len(rna_space.genes) if rna_space.genes else rna_space.n_latent
                model.calibration = Calibration.from_state(raw, meta["calibration"], width)
        except (KeyError, RuntimeError, ValueError, TypeError) as exc:
            raise PhenoseqError(
                f"{directory}: the checkpoint is incomplete or does not match its description ({type(exc).__name__}: {exc})"
            ) from exc
        return model


def _well_mean_of_each(latents: np.ndarray, samples: np.ndarray) -> np.ndarray:
    """``(n, d)``: for each row, the mean of the rows of its sample (well)."""
    names, means = group_means(latents, samples)
    return means[np.searchsorted(np.asarray(names), samples)].astype(np.float32)


def _check_count(name: str, value: int | None) -> None:
    """``None`` (the default) or a whole number >= 1."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise PhenoseqError(f"{name} must be a whole number >= 1, got {value!r}")
