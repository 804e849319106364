"""Checks on synthetic cells handed to the benchmark: every problem is a clear :class:`PhenoseqError`."""

from __future__ import annotations

import anndata as ad
import numpy as np

from phenoseq.errors import PhenoseqError
from phenoseq.generate.output import LATENT_KEY
from phenoseq.io.screen import PairedScreen
from phenoseq.io.validate import preview
from phenoseq.rna.space import RNASpace


def check_synthetic(synthetic: ad.AnnData, screen: PairedScreen, rna_space: RNASpace, name: str,
                    need_training: bool = True) -> set[str]:
    """Validate one synthetic AnnData against the screen and the RNA space; return its set of wells.

    Requires ``obsm["X_phenoseq"]`` of width ``rna_space.n_latent``, the sample column, wells that exist in
    the imaging data, and (``need_training``) cells for every training well (the synthetic classifiers train on
    them).
    """
    k = screen.keys
    if LATENT_KEY not in synthetic.obsm:
        raise PhenoseqError(
            f"{name}: obsm[{LATENT_KEY!r}] is missing (found {sorted(synthetic.obsm.keys())}); "
            "synthetic cells must carry their RNA latent. Use a file written by `phenoseq generate` or a baseline."
        )
    width = synthetic.obsm[LATENT_KEY].shape[1]
    if width != rna_space.n_latent:
        raise PhenoseqError(
            f"{name}: obsm[{LATENT_KEY!r}] has {width} dimensions but the model's RNA space has "
            f"{rna_space.n_latent}; the synthetic cells were made by a different model."
        )
    if not np.isfinite(np.asarray(synthetic.obsm[LATENT_KEY], dtype=np.float64)).all():
        raise PhenoseqError(f"{name}: obsm[{LATENT_KEY!r}] holds NaN/inf values; regenerate the synthetic cells.")
    X = synthetic.X
    if X is not None and synthetic.n_vars and not np.isfinite(X.data if hasattr(X, "data") and hasattr(X, "indptr")
                                                               else np.asarray(X)).all():
        raise PhenoseqError(f"{name}: X holds NaN/inf values; regenerate the synthetic cells.")
    if k.sample not in synthetic.obs.columns:
        raise PhenoseqError(f"{name}: obs has no {k.sample!r} column naming each synthetic cell's well.")
    if synthetic.n_obs == 0:
        raise PhenoseqError(f"{name}: holds no synthetic cells")
    wells = set(synthetic.obs[k.sample].astype(str))
    imaging_wells = set(screen.imaging.obs[k.sample].astype(str))
    unknown = wells - imaging_wells
    if unknown:
        raise PhenoseqError(
            f"{name}: wells {preview(sorted(unknown))} are not in the imaging data; synthetic cells must come from "
            "the screen being evaluated."
        )
    missing = set(screen.wells_in("train")) - wells if need_training else set()
    if missing:
        raise PhenoseqError(
            f"{name}: no synthetic cells for training wells {preview(sorted(missing))}; generate for the training and "
            "test wells (e.g. every well) so the synthetic classifiers can be trained."
        )
    return wells


def covered_splits(screen: PairedScreen, synthetic_wells: dict[str, set[str]], splits: tuple[str, ...]) -> list[str]:
    """Test splits present in the screen and covered by every synthetic set.

    A split covered by none is skipped; one covered only in part is an error (a partial test set would
    bias the comparison between methods).
    """
    out = []
    for split in splits:
        wells = set(screen.wells_in(split))
        if not wells:
            continue
        coverage = {name: wells & w for name, w in synthetic_wells.items()}
        if all(len(c) == len(wells) for c in coverage.values()):
            out.append(split)
        elif any(coverage.values()):
            name, have = next((n, c) for n, c in coverage.items() if len(c) != len(wells))
            raise PhenoseqError(
                f"{name}: synthetic cells cover {len(have)} of the {len(wells)} wells of split {split!r} "
                f"(missing {preview(sorted(wells - have))}); generate for all of them or for none."
            )
    if not out:
        raise PhenoseqError(
            f"no test split ({', '.join(splits)}) has synthetic cells for all of its wells; nothing to evaluate."
        )
    return out
