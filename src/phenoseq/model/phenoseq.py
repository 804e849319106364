"""``PhenoSeq``: the model object users hold. Set up on a paired screen, train, generate, save, load.

>>> model = PhenoSeq(screen, preset="cpu", seed=0)
>>> model.train()
>>> synthetic = model.generate(imaging_only_adata, cells_per_well=150)
>>> model.save("my_model"); model = PhenoSeq.load("my_model")
"""

from __future__ import annotations

import json
import math
import shutil
import time
from pathlib import Path

import anndata as ad
import numpy as np
import torch

from phenoseq import __version__
from phenoseq import progress as progress_mod
from phenoseq.errors import PhenoseqError
from phenoseq.generate.ood import OODScorer
from phenoseq.generate.output import check_output_size, synthetic_adata, well_metadata
from phenoseq.generate.synthesize import SamplingSettings, sample_latents
from phenoseq.io.files import atomic_path
from phenoseq.io.fingerprint import screen_fingerprint
from phenoseq.io.keys import ScreenKeys
from phenoseq.io.screen import PairedScreen
from phenoseq.io import checkpoint
from phenoseq.model.config import ModelConfig
from phenoseq.model.data import Standardiser, WellImaging
from phenoseq.model.denoiser import Denoiser
from phenoseq.model.diffusion import SAMPLERS, Diffusion
from phenoseq.model.train import Split, Trainer, TrainState
from phenoseq.rna.space import EmbeddingSpace, RNASpace, space_from_state


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

    def __init__(self, screen: PairedScreen | None, preset: str = "cpu", seed: int = 0, **overrides) -> None:
        self.config = ModelConfig.preset(preset, **overrides)
        self.seed = seed
        self.screen = screen
        self.data_fingerprint: str | None = None  # set when training starts; resume checks it
        if screen is None:  # filled in by load()
            return
        c, k = self.config, screen.keys
        self.keys = k
        train_wells = screen.wells_in("train")
        rna_train = screen.subset("rnaseq", train_wells)
        if c.rna_embedding:
            self.rna_space = EmbeddingSpace.fit(rna_train, c.rna_embedding)
        else:
            self.rna_space = RNASpace.fit(rna_train, c.n_latent, c.n_top_genes, input=c.rna_input, seed=seed)
        self.feature_names = screen.imaging.var_names.tolist()
        img_train = screen.subset("imaging", train_wells)
        self.imaging_scaler = Standardiser.fit(img_train.X)
        self.latent_scaler = Standardiser.fit(self.rna_space.transform(rna_train))
        self.ood = OODScorer.fit(self.imaging_scaler(img_train.X), img_train.obs[k.sample].astype(str).to_numpy())
        self._build()

    def _build(self) -> None:
        c = self.config
        torch.manual_seed(self.seed)
        self.denoiser = Denoiser(self.rna_space.n_latent, len(self.feature_names), c.dim, c.depth, c.heads, c.tokens)
        self.diffusion = Diffusion(prediction=c.prediction)
        self.trainer = Trainer(self.denoiser, self.diffusion, c, self.seed)

    # -- data -------------------------------------------------------------------------------------------
    def _imaging(self, adata: ad.AnnData, source: str = "imaging") -> WellImaging:
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
        X = adata[:, self.feature_names].X
        X = np.asarray(X.toarray() if hasattr(X, "toarray") else X, dtype=np.float32)
        if not np.isfinite(X).all():
            raise PhenoseqError(f"{source}: morphology features contain NaN/inf; clean them before generating")
        return WellImaging(self.imaging_scaler(X), adata.obs[self.keys.sample].astype(str).to_numpy())

    def _split(self, imaging: WellImaging, split: str) -> Split:
        wells = self.screen.wells_in(split)
        rna = self.screen.subset("rnaseq", wells)
        samples = rna.obs[self.keys.sample].astype(str).to_numpy()
        latents = self.latent_scaler(self.rna_space.transform(rna))
        return Split(torch.from_numpy(latents), np.array([imaging.code[s] for s in samples], dtype=np.int64))

    def get_latent_representation(self, rnaseq: ad.AnnData) -> np.ndarray:
        """``(n_cells, d)`` RNA-space latent of real cells (counts in ``X``), as stored in ``obsm["X_phenoseq"]``."""
        return self.rna_space.transform(rnaseq)

    # -- training ---------------------------------------------------------------------------------------
    @property
    def history(self) -> list[dict]:
        """Per-epoch training record: ``epoch``, ``train_loss``, ``val_loss``."""
        return self.trainer.state.history

    def train(self, progress: progress_mod.Progress | None = None, max_epochs: int | None = None,
              checkpoint_dir: str | Path | None = None, checkpoint_every: float = 30.0) -> list[dict]:
        """Train (or continue training) on the training split; returns the per-epoch history.

        With ``checkpoint_dir`` the model is saved there at the end and, during training, at an epoch boundary
        every ``checkpoint_every`` seconds, so an interrupted run resumes exactly from its last checkpoint
        (``PhenoSeq.load(dir).resume(screen)``).
        """
        if self.screen is None:
            raise PhenoseqError("this model has no screen attached; use resume(screen) to continue training")
        if max_epochs is not None and (isinstance(max_epochs, bool) or not isinstance(max_epochs, int) or max_epochs < 1):
            raise PhenoseqError(f"max_epochs must be a whole number >= 1, got {max_epochs!r}")
        self.data_fingerprint = self.data_fingerprint or screen_fingerprint(self.screen)
        wells = self.screen.wells_in("train") + self.screen.wells_in("val")
        imaging = self._imaging(self.screen.subset("imaging", wells), self.screen.sources[0])
        train, val = self._split(imaging, "train"), self._split(imaging, "val")
        last_save = time.monotonic()

        def on_epoch_end() -> None:
            nonlocal last_save
            if checkpoint_dir is not None and time.monotonic() - last_save > checkpoint_every:
                self.save(checkpoint_dir)
                last_save = time.monotonic()

        self.trainer.run(imaging, train, val, progress, max_epochs, on_epoch_end)
        if checkpoint_dir is not None:
            self.save(checkpoint_dir)
        return self.history

    def resume(self, screen: PairedScreen, progress: progress_mod.Progress | None = None,
               max_epochs: int | None = None, checkpoint_dir: str | Path | None = None) -> list[dict]:
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
        return self.train(progress, max_epochs, checkpoint_dir)

    def checkpoint_bytes(self) -> int:
        """About how large :meth:`save` will write the model: network, EMA, best weights and two optimiser
        moments (five copies of every weight), plus the RNA space and scalers."""
        weights = sum(p.numel() for p in self.denoiser.parameters()) * 4 * 5
        rna = sum(np.asarray(v).nbytes for v in self.rna_space.state()[0].values())
        return int(weights + rna + self.ood.components.nbytes + self.ood.means.nbytes + 2**16)

    def denoiser_for_sampling(self) -> Denoiser:
        """The network with the best EMA weights (what generation uses)."""
        net = Denoiser(self.rna_space.n_latent, len(self.feature_names), self.config.dim, self.config.depth,
                       self.config.heads, self.config.tokens)
        net.load_state_dict(self.trainer.best)
        return net.eval()

    # -- generation -------------------------------------------------------------------------------------
    def generate(self, imaging: ad.AnnData, cells_per_well: int = 100, seed: int = 0, sampler: str | None = None,
                 steps: int | None = None, guidance: float | None = None, context_size: int | None = None,
                 progress: progress_mod.Progress | None = None, source: str = "imaging") -> ad.AnnData:
        """Synthetic RNA cells for every well of ``imaging`` (seen in training or not, with or without RNA).

        Returns AnnData in the output contract (:mod:`phenoseq.generate.output`): ``cells_per_well`` rows per
        well, ``obsm["X_phenoseq"]`` latents, ``X`` decoded log1p(CP10k) over the model's genes, obs with the
        well's keys, ``phenoseq_seed``, ``phenoseq_ood_score`` and ``phenoseq_ood`` (the well's morphology is
        unlike every training well: trust its synthetic cells less).

        ``context_size`` sets how many imaging cells condition each synthetic cell (default: as in training).
        ``source`` names ``imaging`` in error messages (its file path, say).
        """
        c = self.config
        sampler = sampler or c.sampler
        if sampler not in SAMPLERS:
            raise PhenoseqError(f"unknown sampler {sampler!r}; choose one of {list(SAMPLERS)}")
        for name, value in (("cells_per_well", cells_per_well), ("steps", steps), ("context_size", context_size)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise PhenoseqError(f"{name} must be a whole number >= 1, got {value!r}")
        if guidance is not None and not (isinstance(guidance, (int, float)) and math.isfinite(guidance) and guidance >= 0):
            raise PhenoseqError(f"guidance must be a finite number >= 0 (1 = no guidance), got {guidance!r}")
        wells = self._imaging(imaging, source)
        check_output_size(len(wells.names) * cells_per_well, len(self.rna_space.genes or ()), self.rna_space.n_latent)
        n = context_size or c.context_size
        settings = SamplingSettings(cells_per_well, n, max(n, c.pool_size), sampler, steps or c.steps,
                                    c.guidance if guidance is None else guidance, c.precision, seed)
        z, samples, seeds = sample_latents(self.denoiser_for_sampling(), self.diffusion, wells, settings,
                                           self.rna_space.n_latent, progress)
        latent = self.latent_scaler.inverse(z)
        score = self.ood.score(wells)
        per_cell = np.repeat(score, cells_per_well)
        meta = {"model": "phenoseq-diffusion", "version": __version__, "sampler": sampler, "steps": settings.steps,
                "guidance": settings.guidance, "seed": seed, "context_size": n,
                "ood_threshold": self.ood.threshold}
        return synthetic_adata(latent, samples, well_metadata(imaging, self.keys), self.keys, seeds, meta,
                               decode=self.rna_space.decode, genes=self.rna_space.genes,
                               extra_obs={"phenoseq_ood_score": per_cell.astype(np.float32),
                                          "phenoseq_ood": per_cell > self.ood.threshold})

    # -- persistence ------------------------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        """Write ``model.safetensors`` (all tensors) and ``model.json`` (everything else) into ``directory``.

        Both files are written in full beside their final names and only then moved into place; the tensors
        file's header holds the digest of the JSON file, so a pair from two saves is refused on load. A folder
        this call created is removed again when the save fails (a full disk, say).
        """
        from safetensors.torch import save_file

        directory = Path(directory)
        created = not directory.exists()
        tensors: dict[str, torch.Tensor] = {}
        tensors.update({f"net.{k}": v for k, v in self.denoiser.state_dict().items()})
        tensors.update({f"ema.{k}": v for k, v in self.trainer.ema.state_dict().items()})
        tensors.update({f"best.{k}": v for k, v in self.trainer.best.items()})
        optim = self.trainer.optimizer.state_dict()
        for idx, state in optim["state"].items():
            for name, value in state.items():
                tensors[f"optim.{idx}.{name}"] = value if value.ndim else value.reshape(1)
        rna_tensors, rna_meta = self.rna_space.state()
        arrays = {**rna_tensors, "imaging.mean": self.imaging_scaler.mean, "imaging.scale": self.imaging_scaler.scale,
                  "latent.mean": self.latent_scaler.mean, "latent.scale": self.latent_scaler.scale,
                  **self.ood.state()}
        tensors.update({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in arrays.items()})
        meta = {
            "format": checkpoint.FORMAT, "format_version": checkpoint.FORMAT_VERSION, "phenoseq_version": __version__,
            "config": self.config.to_dict(), "seed": self.seed, "keys": self.keys.to_dict(), "rna_space": rna_meta,
            "feature_names": self.feature_names, "train_state": vars(self.trainer.state),
            "optimizer": {"param_groups": optim["param_groups"], "state_keys": {str(i): list(s) for i, s in optim["state"].items()}},
            "ood_threshold": self.ood.threshold, "data_fingerprint": self.data_fingerprint,
        }
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
            config = ModelConfig.from_dict(meta.get("config"))
        except PhenoseqError as exc:
            raise PhenoseqError(f"{directory / 'model.json'}: {exc}") from exc
        raw = checkpoint.read_tensors(directory / "model.safetensors")
        checkpoint.check_pair(directory / "model.safetensors", text, meta)
        checkpoint.check_finite(raw, directory / "model.safetensors")
        try:
            model = cls(None, preset="cpu", seed=int(meta["seed"]), **config.to_dict())
            model.keys = ScreenKeys.from_dict(meta["keys"])
            arrays = raw
            model.rna_space = space_from_state(arrays, meta["rna_space"])
            model.feature_names = list(meta["feature_names"])
            model.imaging_scaler = Standardiser(arrays["imaging.mean"], arrays["imaging.scale"])
            model.latent_scaler = Standardiser(arrays["latent.mean"], arrays["latent.scale"])
            model.ood = OODScorer.from_state(arrays, meta["ood_threshold"])
            model.data_fingerprint = meta.get("data_fingerprint")
            _check_shapes(model)
            model._build()
            tensors = {k: torch.from_numpy(np.array(v)) for k, v in arrays.items()}
            model.denoiser.load_state_dict(_prefixed(tensors, "net."))
            model.trainer.ema.load_state_dict(_prefixed(tensors, "ema."))
            model.trainer.best = _prefixed(tensors, "best.")
            model.denoiser_for_sampling()  # the best weights must fit the network too
            opt = meta["optimizer"]
            state = {int(i): {name: _unscalar(tensors[f"optim.{i}.{name}"], name) for name in names}
                     for i, names in opt["state_keys"].items()}
            model.trainer.optimizer.load_state_dict({"state": state, "param_groups": opt["param_groups"]})
            model.trainer.state = TrainState(**meta["train_state"])
        except (KeyError, RuntimeError, ValueError, TypeError) as exc:
            raise PhenoseqError(
                f"{directory}: the checkpoint is incomplete or does not match its description ({type(exc).__name__}: {exc})"
            ) from exc
        return model


def _check_shapes(model: PhenoSeq) -> None:
    """The arrays beside the network must fit the model's features and latent size (a resized tensor is damage)."""
    n_features, n_latent = len(model.feature_names), model.rna_space.n_latent
    expected = {"imaging.mean": (n_features,), "imaging.scale": (n_features,), "latent.mean": (n_latent,),
                "latent.scale": (n_latent,)}
    actual = {"imaging.mean": model.imaging_scaler.mean.shape, "imaging.scale": model.imaging_scaler.scale.shape,
              "latent.mean": model.latent_scaler.mean.shape, "latent.scale": model.latent_scaler.scale.shape}
    comps, means = model.ood.components, model.ood.means
    if comps.ndim != 2 or comps.shape[1] != n_features or means.ndim != 2 or means.shape[1] != comps.shape[0]:
        raise ValueError(f"OOD arrays have shapes {comps.shape} and {means.shape}, which do not fit {n_features} features")
    for name, shape in expected.items():
        if tuple(actual[name]) != shape:
            raise ValueError(f"tensor {name} has shape {tuple(actual[name])}, expected {shape}")


def _prefixed(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}


def _unscalar(value: torch.Tensor, name: str) -> torch.Tensor:
    return value.reshape(()) if name == "step" else value
