"""A paired screen: imaging cells and RNA cells of the same treatment wells, joined by well.

The two modalities come from *different cells* of the same well, so pairing is population-level: a
well (``keys.sample``) is the unit that links them, never a cell.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field

import anndata as ad
import numpy as np
import pandas as pd

from phenoseq.errors import PhenoseqError
from phenoseq.io import validate
from phenoseq.io.files import read_h5ad
from phenoseq.io.keys import ScreenKeys

CONTROL = "control"  # value of the group column that marks negative-control wells
UNSEEN = "unseen"  # split of the wells of held-out treatments (see PairedScreen.hold_out)


def _normalise_obs(adata: ad.AnnData, keys: ScreenKeys) -> ad.AnnData:
    """A shallow copy whose key columns are strings, so that '3', 3 and 3.0 name the same replicate."""
    out = adata.copy() if not adata.isbacked else adata.to_memory()
    for col in keys.columns:
        out.obs[col] = validate.key_text(out.obs[col]).astype("category")
    return out


def layer_as_x(adata: ad.AnnData, layer: str | None, source: str) -> ad.AnnData:
    """``adata`` with ``layers[layer]`` as its X (the arrays are shared, not copied); ``adata`` when no layer.

    Everything downstream (validation, the RNA space, the data fingerprint) reads X, so swapping it here is
    all that reading counts from a layer takes.
    """
    if layer is None:
        return adata
    if layer not in adata.layers:
        present = list(adata.layers.keys())
        raise PhenoseqError(
            f"{source}: has no layers[{layer!r}] to read RNA counts from; its layers are "
            f"{present if present else 'none'}. Name one of those, or leave the layer out to read X."
        )
    if adata.isbacked:
        adata = adata.to_memory()
    return ad.AnnData(X=adata.layers[layer], obs=adata.obs, var=adata.var, obsm=dict(adata.obsm), uns=dict(adata.uns))


def matrix_name(layer: str | None) -> str:
    """Where RNA values are read from, as messages name it."""
    return "X" if layer is None else f"layers[{layer!r}]"


def modality_problems(adata: ad.AnnData, keys: ScreenKeys, source: str, kind: str, matrix: str = "X") -> list[str]:
    """All problems of one modality file. ``kind`` is ``"imaging"``, ``"counts"`` or ``"expression"``;
    ``matrix`` names where X came from (see :func:`layer_as_x`)."""
    problems = validate.check_obs_columns(adata, keys, source)
    problems += validate.check_var_names(adata, source, "feature" if kind == "imaging" else "gene")
    if kind == "counts":
        problems += validate.check_counts(adata, source, matrix)
    else:
        problems += validate.check_features(adata, source)
    if not problems:
        problems += validate.check_well_consistency(adata, keys, source)
    return problems


def modality_warnings(adata: ad.AnnData, source: str, kind: str) -> list[str]:
    """What is valid but probably unintended in one modality file (never a reason to refuse it)."""
    if kind == "counts":
        return validate.warn_zero_count_cells(adata, source)
    if kind == "imaging":
        return validate.warn_constant_features(adata, source)
    return []


@dataclass
class PairedScreen:
    """Imaging cells × morphology features and RNA cells × genes of the same wells.

    Parameters
    ----------
    imaging
        AnnData, cells × features; ``X`` float (converted to dense float32).
    rnaseq
        AnnData, cells × genes; ``X`` (or ``layers[rna_layer]``) raw counts (sparse allowed) when
        ``rna_kind="counts"``, or already normalised expression (e.g. bulk L1000 profiles) when
        ``rna_kind="expression"``. Precomputed embeddings may sit in ``obsm``.
    keys
        Column names and the replicate → split map.
    unpaired
        Wells present in one modality only: ``"error"`` (default) or ``"drop"`` (dropped and listed in
        :attr:`dropped_wells`).
    min_cells
        Minimum (imaging, RNA) cells per well.
    sources
        Names used in error messages (file paths when read from disk).
    allow_unseen
        Accept treatments with no training well (unseen compounds: the model then generates for them from
        imaging alone). Off by default, so that a mistyped split map is not taken for a hold-out design.
    rna_layer
        Read the RNA values from ``rnaseq.layers[rna_layer]`` instead of ``X`` (e.g. ``"counts"`` when ``X``
        holds log-normalised values). :attr:`rnaseq` then holds that layer as its ``X``.

    Attributes
    ----------
    wells
        One row per paired well, index = sample id; columns = the key columns, ``split``,
        ``n_imaging``, ``n_rna``.
    warnings
        Messages about valid but suspicious input (RNA cells with no counts, constant imaging features).
    """

    imaging: ad.AnnData
    rnaseq: ad.AnnData
    keys: ScreenKeys = field(default_factory=ScreenKeys)
    unpaired: str = "error"
    min_cells: tuple[int, int] = (1, 1)
    rna_kind: str = "counts"
    sources: tuple[str, str] = ("imaging", "rnaseq")
    allow_unseen: bool = False
    rna_layer: str | None = None
    dropped_wells: dict[str, list[str]] = field(init=False, default_factory=dict)
    warnings: list[str] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        if self.unpaired not in ("error", "drop"):
            raise PhenoseqError(f"unpaired must be 'error' or 'drop', got {self.unpaired!r}")
        if self.rna_kind not in ("counts", "expression"):
            raise PhenoseqError(f"rna_kind must be 'counts' or 'expression', got {self.rna_kind!r}")
        k = self.keys
        self.rnaseq = layer_as_x(self.rnaseq, self.rna_layer, self.sources[1])
        problems = modality_problems(self.imaging, k, self.sources[0], "imaging")
        problems += modality_problems(self.rnaseq, k, self.sources[1], self.rna_kind, matrix_name(self.rna_layer))
        if problems:
            raise PhenoseqError("invalid screen:\n- " + "\n- ".join(problems))
        self.imaging = _normalise_obs(self.imaging, k)
        self.rnaseq = _normalise_obs(self.rnaseq, k)
        self.imaging.X = np.asarray(
            self.imaging.X.toarray() if hasattr(self.imaging.X, "toarray") else self.imaging.X, dtype=np.float32
        )
        img_wells = validate.well_table(self.imaging, k)
        rna_wells = validate.well_table(self.rnaseq, k)
        problems, imaging_only, rna_only = validate.check_pairing(img_wells, rna_wells, k, self.sources, self.min_cells)
        if imaging_only or rna_only:
            if self.unpaired == "error":
                problems.append(
                    f"wells in one modality only: {len(imaging_only)} imaging-only "
                    f"{validate.preview(imaging_only)}, {len(rna_only)} RNA-only {validate.preview(rna_only)}. "
                    "Pass unpaired='drop' (CLI: --drop-unpaired) to train on the paired wells; imaging-only wells "
                    "can still be used for generation."
                )
            else:
                self.dropped_wells = {"imaging_only": imaging_only, "rna_only": rna_only}
                self.imaging = self.imaging[~self.imaging.obs[k.sample].isin(imaging_only)].copy()
                self.rnaseq = self.rnaseq[~self.rnaseq.obs[k.sample].isin(rna_only)].copy()
        if problems:
            raise PhenoseqError("invalid screen:\n- " + "\n- ".join(problems))
        common = img_wells.index.intersection(rna_wells.index)
        wells = img_wells.loc[common].rename(columns={"n_cells": "n_imaging"})
        wells["n_rna"] = rna_wells.loc[common, "n_cells"]
        wells["split"] = [k.split_of(r) or "none" for r in wells[k.replicate]]
        self.wells = wells
        problems = validate.check_training_wells(wells, k)
        if not self.allow_unseen:
            problems += validate.check_training_treatments(wells, k)
        if problems:
            raise PhenoseqError("invalid screen:\n- " + "\n- ".join(problems))
        # On the cells kept (after dropping unpaired wells), so the counts match what is trained on.
        self.warnings = modality_warnings(self.imaging, self.sources[0], "imaging") + modality_warnings(
            self.rnaseq, self.sources[1], self.rna_kind
        )

    @classmethod
    def read(
        cls,
        imaging_path: str | os.PathLike,
        rnaseq_path: str | os.PathLike,
        keys: ScreenKeys | None = None,
        rna_layer: str | None = None,
        **kwargs,
    ) -> "PairedScreen":
        """Read both ``.h5ad`` files and validate them as a pair (see the class for ``rna_layer`` and ``kwargs``)."""
        imaging = read_h5ad(imaging_path)
        rnaseq = read_h5ad(rnaseq_path)
        return cls(imaging, rnaseq, keys=keys or ScreenKeys(), sources=(str(imaging_path), str(rnaseq_path)),
                   rna_layer=rna_layer, **kwargs)

    def wells_in(self, split: str) -> list[str]:
        """Sample ids of the paired wells in a split (``"train"``, ``"val"``, ``"test"``, ``"test_he"``)."""
        return self.wells.index[self.wells["split"] == split].tolist()

    def treatments_in(self, split: str) -> list[str]:
        """Sorted treatments with at least one paired well in ``split``."""
        w = self.wells
        return sorted(w.loc[w["split"] == split, self.keys.treatment].astype(str).unique().tolist())

    def control_wells(self, split: str = "train") -> list[str]:
        """Paired wells of ``split`` whose group column says ``"control"`` (e.g. DMSO)."""
        w = self.wells
        return w.index[(w["split"] == split) & (w[self.keys.group].astype(str) == CONTROL)].tolist()

    def hold_out(self, treatments: list[str], train_on_tests: bool = False) -> "PairedScreen":
        """The same screen with every well of ``treatments`` moved to split ``"unseen"``, in both modalities.

        The unseen-compound protocol: a generator fitted on the returned screen's training (and validation)
        wells has never seen these treatments in either modality. Cells are shared with ``self``, not copied.

        ``train_on_tests``: the other treatments' wells of every split but ``"train"`` and ``"val"`` (the test
        splits, ``"test"`` and ``"test_he"`` by default) join the training split. With the held-out compounds as
        the test, those wells are paired data a user would train on, and they carry what the training split
        alone may lack (e.g. the RNA of another experimental round). Validation wells stay validation wells;
        wells in no split stay out. Off here, so the screen keeps its splits unless asked; the unseen-compound
        benchmark (:func:`phenoseq.evaluate.evaluate_unseen`) turns it on by default.
        """
        k = self.keys
        unknown = sorted(set(treatments) - set(self.wells[k.treatment].astype(str)))
        if unknown:
            raise PhenoseqError(f"cannot hold out treatments {validate.preview(unknown)}: not in the screen")
        out = copy.copy(self)
        out.wells = self.wells.copy()
        out.wells.loc[out.wells[k.treatment].astype(str).isin(treatments), "split"] = UNSEEN
        if train_on_tests:
            out.wells.loc[~out.wells["split"].isin(["train", "val", "none", UNSEEN]), "split"] = "train"
        out.allow_unseen = True
        n_train = len(out.wells_in("train"))
        if n_train < validate.MIN_TRAINING_WELLS:
            raise PhenoseqError(
                f"holding out treatments {validate.preview(treatments)} leaves {n_train} training well(s); at least "
                f"{validate.MIN_TRAINING_WELLS} are needed ({validate.WHY_TWO_WELLS}). Hold out fewer treatments."
            )
        return out

    def subset(self, modality: str, wells: list[str]) -> ad.AnnData:
        """Cells of ``modality`` (``"imaging"`` or ``"rnaseq"``) that belong to ``wells``, as a view."""
        adata = getattr(self, modality)
        return adata[adata.obs[self.keys.sample].isin(wells).to_numpy()]

    def summary(self) -> dict:
        """Counts a person wants to see first: wells, cells per well, treatments, wells per split."""
        k = self.keys
        w = self.wells
        return {
            "wells": int(len(w)),
            "treatments": int(w[k.treatment].nunique()),
            "imaging_cells": int(self.imaging.n_obs),
            "rna_cells": int(self.rnaseq.n_obs),
            "features": int(self.imaging.n_vars),
            "genes": int(self.rnaseq.n_vars),
            "imaging_cells_per_well": _quantiles(w["n_imaging"]),
            "rna_cells_per_well": _quantiles(w["n_rna"]),
            "wells_per_split": {s: int(n) for s, n in w["split"].value_counts().sort_index().items()},
            "dropped_wells": self.dropped_wells,
        }


def _quantiles(counts: pd.Series) -> dict[str, float]:
    return {"min": int(counts.min()), "median": float(counts.median()), "max": int(counts.max())}
