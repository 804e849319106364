"""Out-of-distribution scores for imaging wells: how unlike the training wells is a well's morphology?

A well is summarised by the mean of its cells in a PCA of the (standardised) training imaging cells. Its
score is the distance to the nearest training well, divided by the median distance of a training well to
its nearest *other* training well. A well is flagged when its score exceeds 1.5 × the largest such
leave-one-out score among the training wells: farther from every training well than any training well is
from the rest, by a margin. Synthetic cells of flagged wells extrapolate and deserve less trust.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.distance import cdist

from phenoseq.groups import group_means
from phenoseq.model.data import WellImaging


@dataclass
class OODScorer:
    components: np.ndarray  # (k, F)
    means: np.ndarray  # (W_train, k) training well means in PCA space
    scale: float
    threshold: float
    controls: np.ndarray | None = None  # (W_train,) bool: the training well is a negative control (e.g. DMSO)

    @classmethod
    def fit(cls, features: np.ndarray, samples: np.ndarray, n_components: int = 20,
            control_samples: list[str] | None = None) -> "OODScorer":
        """Fit on standardised training imaging cells ``(N, F)`` and their sample ids ``(N,)``;
        ``control_samples``: the training control wells (for :meth:`control_likeness`)."""
        centred = features - features.mean(axis=0)
        k = min(n_components, *centred.shape)
        _, _, vt = np.linalg.svd(centred[:: max(1, len(centred) // 20000)], full_matrices=False)
        components = vt[:k].astype(np.float32)
        names, means = group_means(features @ components.T, samples)
        controls = np.isin(names, list(control_samples)) if control_samples else None
        if len(means) < 2:
            return cls(components, means, 1.0, np.inf, controls)
        d = cdist(means, means)
        np.fill_diagonal(d, np.inf)
        loo = d.min(axis=1)
        scale = float(np.median(loo)) or 1.0
        return cls(components, means.astype(np.float32), scale, float(1.5 * loo.max() / scale), controls)

    def _well_means(self, imaging: WellImaging) -> np.ndarray:
        # One product per well: BLAS rounding depends on the matrix shape, and a well's score must not depend on
        # which other wells are scored with it (a chunked run equals the in-memory run byte for byte).
        features = imaging.features.numpy()
        return np.array([(features[s:s + n] @ self.components.T).mean(axis=0, dtype=np.float64)
                         for s, n in zip(imaging.starts, imaging.counts)]).reshape(len(imaging.names), -1)

    def score(self, imaging: WellImaging) -> np.ndarray:
        """``(n_wells,)`` scores for the wells of ``imaging`` (in its sorted well order)."""
        return (cdist(self._well_means(imaging), self.means).min(axis=1) / self.scale).astype(np.float32)

    def control_likeness(self, imaging: WellImaging) -> np.ndarray | None:
        """``(n_wells,)`` in (0, 1]: ``exp(−distance to the nearest training control well / scale)``; 1 = the
        well's morphology is a control's. None without training control wells. For a treated well it says
        "morphology shows no effect", which is where morphology cannot tell an inactive compound from one whose
        effect is only transcriptional."""
        if self.controls is None or not self.controls.any():
            return None
        d = cdist(self._well_means(imaging), self.means[self.controls]).min(axis=1) / self.scale
        return np.exp(-d).astype(np.float32)

    def leave_group_out_scores(self, groups: np.ndarray, imaging: WellImaging | None = None,
                               imaging_groups: np.ndarray | None = None) -> np.ndarray:
        """``(W_train,)`` score of each training well against the training wells of other groups (treatments):
        the scores a well of a treatment without training wells would get. ``groups`` in training-well order
        (sorted sample ids); wells of a lone group get inf. With ``imaging`` (other wells, e.g. validation
        wells) and their groups ``imaging_groups`` (in its sorted well order): one score per well of
        ``imaging`` instead."""
        groups = np.asarray(groups, dtype=object)
        if imaging is not None and (imaging_groups is None or len(imaging_groups) != len(imaging.names)):
            raise ValueError(f"leave_group_out_scores: {len(imaging.names)} wells need as many imaging_groups")
        if imaging is None:
            means, own = self.means, groups
        else:
            means, own = self._well_means(imaging), np.asarray(imaging_groups, dtype=object)
        d = cdist(means, self.means)
        d[own[:, None] == groups[None, :]] = np.inf
        return (d.min(axis=1) / self.scale).astype(np.float64)

    def state(self) -> tuple[dict[str, np.ndarray], dict]:
        """(tensors, JSON metadata) for a checkpoint."""
        tensors = {"ood.components": self.components, "ood.means": self.means,
                   "ood.scale": np.array([self.scale], dtype=np.float32)}
        if self.controls is not None:
            tensors["ood.controls"] = self.controls.astype(np.uint8)
        return tensors, {"threshold": self.threshold}

    @classmethod
    def from_state(cls, tensors: dict[str, np.ndarray], meta: dict, n_features: int) -> "OODScorer":
        """Inverse of :meth:`state`; the components must span ``n_features`` features."""
        comps, means = np.asarray(tensors["ood.components"]), np.asarray(tensors["ood.means"])
        if comps.ndim != 2 or comps.shape[1] != n_features or means.ndim != 2 or means.shape[1] != comps.shape[0]:
            raise ValueError(f"OOD tensors have shapes {comps.shape} and {means.shape}, which do not fit "
                             f"{n_features} features")
        controls = tensors.get("ood.controls")  # absent from models saved before it existed
        if controls is not None and np.asarray(controls).shape != (means.shape[0],):
            raise ValueError(f"tensor ood.controls has shape {np.asarray(controls).shape}, expected ({means.shape[0]},)")
        return cls(comps, means, float(tensors["ood.scale"][0]), float(meta["threshold"]),
                   None if controls is None else np.asarray(controls).astype(bool))
