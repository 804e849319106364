"""Feature hygiene and per-plate robust normalisation of single-cell morphology profiles (pycytominer conventions).

Order: feature selection on the raw values (NaN-heavy, near-zero variance, blocklist), then ``mad_robustize``
per plate against the control cells, then features with zero spread in the reference are dropped (dividing
by pycytominer's epsilon would blow them up to ~1e18), then cells still holding NaN are dropped. Everything
removed is recorded in ``adata.uns["phenoseq_hygiene"]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import anndata as ad
import numpy as np
import pandas as pd

from phenoseq.errors import PhenoseqError
from phenoseq.io.keys import ScreenKeys
from phenoseq.io.readers.blocklist import pycytominer_blocklist
from phenoseq.io.validate import preview

MAD_TO_SD = 1.4826  # scipy's scale="normal": makes the MAD of a normal sample estimate its SD


@dataclass
class Hygiene:
    """Feature selection and normalisation settings (defaults follow pycytominer).

    Parameters
    ----------
    feature_select
        Drop NaN-heavy, near-constant and blocklisted features.
    na_cutoff
        Drop features whose fraction of NaN cells exceeds this (pycytominer ``drop_na_columns``, 0.05).
    freq_cut, unique_cut
        pycytominer ``variance_threshold``: drop a feature when its second most common value is rarer than
        ``freq_cut`` × the most common one, or when it has fewer than ``unique_cut`` × n distinct values, or
        when it is constant.
    blocklist
        ``"pycytominer"`` (its standard 55 names), a list of names, or None.
    normalize
        ``"mad_robustize"`` ((x − median) / (1.4826·MAD + epsilon) per plate) or None.
    normalize_against
        ``"controls"`` (cells with ``Group == "control"``, pycytominer's ``negcon``) or ``"all"`` cells.
    normalize_by
        obs column grouping cells into plates; None = the reader's plate column.
    """

    feature_select: bool = True
    na_cutoff: float = 0.05
    freq_cut: float = 0.05
    unique_cut: float = 0.01
    blocklist: str | list[str] | None = "pycytominer"
    normalize: str | None = "mad_robustize"
    normalize_against: str = "controls"
    normalize_by: str | None = None
    epsilon: float = 1e-18

    def __post_init__(self) -> None:
        if self.normalize not in (None, "mad_robustize"):
            raise PhenoseqError(f"normalize must be 'mad_robustize' or None, got {self.normalize!r}")
        if self.normalize_against not in ("controls", "all"):
            raise PhenoseqError(f"normalize_against must be 'controls' or 'all', got {self.normalize_against!r}")
        if not 0 <= self.na_cutoff <= 1:
            raise PhenoseqError(f"na_cutoff is a fraction of cells in [0, 1], got {self.na_cutoff}")


def low_variance(X: np.ndarray, freq_cut: float, unique_cut: float) -> np.ndarray:
    """Boolean mask of features pycytominer's ``variance_threshold`` removes (NaNs ignored). X: cells × features."""
    n = X.shape[0]
    drop = np.zeros(X.shape[1], dtype=bool)
    for j in range(X.shape[1]):
        col = X[:, j]
        col = col[~np.isnan(col)]
        if col.size == 0:
            drop[j] = True
            continue
        _, counts = np.unique(col, return_counts=True)
        if counts.size < 2:
            drop[j] = True
            continue
        top2 = np.partition(counts, -2)[-2:]
        drop[j] = top2[0] / top2[1] < freq_cut or counts.size / n < unique_cut
    return drop


def mad_robustize(X: np.ndarray, plates: np.ndarray, reference: np.ndarray, epsilon: float = 1e-18) -> tuple[np.ndarray, np.ndarray]:
    """Per-plate ``(x − median_ref) / (1.4826·MAD_ref + epsilon)``.

    Parameters
    ----------
    X
        cells × features.
    plates
        Plate label per cell.
    reference
        Boolean per cell: the cells whose median and MAD define the scale (controls, or all).

    Returns
    -------
    The normalised matrix (float32) and a boolean mask of features whose reference MAD is 0 on some plate.
    """
    out = np.empty_like(X, dtype=np.float32)
    zero_mad = np.zeros(X.shape[1], dtype=bool)
    for plate in pd.unique(plates):
        rows = plates == plate
        # float64: raw CellProfiler values (areas ~1e5) with small MADs lose digits in float32
        ref = X[rows & reference].astype(np.float64)
        with np.errstate(all="ignore"):
            median = np.nanmedian(ref, axis=0)
            mad = np.nanmedian(np.abs(ref - median), axis=0) * MAD_TO_SD
        zero_mad |= ~(mad > 0)
        out[rows] = (X[rows].astype(np.float64) - median) / (mad + epsilon)
    return out, zero_mad


def apply_hygiene(adata: ad.AnnData, hygiene: Hygiene, keys: ScreenKeys, plate_column: str, source: str) -> ad.AnnData:
    """Feature selection and normalisation of an imaging AnnData (cells × features, dense float32 X).

    Returns a new AnnData; ``uns["phenoseq_hygiene"]`` lists the dropped features by reason and counts
    the dropped cells.
    """
    X = np.asarray(adata.X, dtype=np.float32)
    names = np.asarray(adata.var_names)
    report: dict = {"n_features_in": int(X.shape[1]), "n_cells_in": int(X.shape[0])}
    keep = np.ones(X.shape[1], dtype=bool)
    if hygiene.feature_select:
        nan_heavy = np.isnan(X).mean(axis=0) > hygiene.na_cutoff
        low_var = ~nan_heavy & low_variance(X, hygiene.freq_cut, hygiene.unique_cut)
        block = pycytominer_blocklist() if hygiene.blocklist == "pycytominer" else list(hygiene.blocklist or [])
        blocked = np.isin(names, block) & ~nan_heavy & ~low_var
        for reason, mask in (("nan_heavy", nan_heavy), ("low_variance", low_var), ("blocklist", blocked)):
            report[f"dropped_{reason}"] = names[mask].tolist()
        keep &= ~(nan_heavy | low_var | blocked)
    if not keep.any():
        raise PhenoseqError(
            f"{source}: all {X.shape[1]} features were removed by feature selection "
            f"({len(report['dropped_nan_heavy'])} with more than {hygiene.na_cutoff:.0%} NaN, "
            f"{len(report['dropped_low_variance'])} constant or near-constant, {len(report['dropped_blocklist'])} "
            "blocklisted). Check the input, or relax na_cutoff / freq_cut / unique_cut (--na-cutoff), or "
            "disable feature selection (--no-feature-select)."
        )
    X, names = X[:, keep], names[keep]
    if hygiene.normalize == "mad_robustize":
        by = hygiene.normalize_by or plate_column
        if by not in adata.obs.columns:
            raise PhenoseqError(
                f"{source}: cannot normalise per plate: no obs column {by!r}. Name the plate column "
                "(normalize_by / --plate-column) or pass normalize=None (--normalize none)."
            )
        plates = adata.obs[by].astype(str).to_numpy()
        if hygiene.normalize_against == "controls":
            if keys.group not in adata.obs.columns:
                raise PhenoseqError(
                    f"{source}: cannot normalise against controls: no {keys.group!r} column says which cells are "
                    "controls. Give a plate map (--platemap) or treatment column, or normalise against all cells "
                    "(--normalize-against all), or skip normalisation (--normalize none)."
                )
            reference = (adata.obs[keys.group].astype(str) == "control").to_numpy()
            without = sorted(set(plates) - set(plates[reference]))
            if without:
                raise PhenoseqError(
                    f"{source}: plates {preview(without)} have no control cells ({keys.group} == 'control'; "
                    f"controls = treatments {adata.uns.get('phenoseq_input', {}).get('controls', ['DMSO'])}). "
                    "Name the control treatments (--controls), normalise against all cells "
                    "(--normalize-against all), or skip normalisation (--normalize none)."
                )
        else:
            reference = np.ones(X.shape[0], dtype=bool)
        X, zero_mad = mad_robustize(X, plates, reference, hygiene.epsilon)
        report["normalize"] = f"mad_robustize by {by} against {hygiene.normalize_against}"
        report["dropped_zero_mad"] = names[zero_mad].tolist()
        if zero_mad.all():
            raise PhenoseqError(
                f"{source}: every feature has zero spread (MAD) in the reference cells of some plate, so none can "
                "be normalised; use more control cells, --normalize-against all, or --normalize none."
            )
        X, names = X[:, ~zero_mad], names[~zero_mad]
    complete = ~np.isnan(X).any(axis=1) if hygiene.feature_select or hygiene.normalize else np.ones(X.shape[0], bool)
    report["dropped_cells_with_nan"] = int((~complete).sum())
    if not complete.any():
        raise PhenoseqError(
            f"{source}: every cell has a NaN in some kept feature; lower na_cutoff (--na-cutoff) so such features are dropped."
        )
    out = ad.AnnData(
        X=X[complete], obs=adata.obs.iloc[np.flatnonzero(complete)].copy(), var=adata.var.loc[names].copy(),
        uns=dict(adata.uns),
    )
    out.uns["phenoseq_hygiene"] = report
    return out
