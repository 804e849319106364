"""Bad synthetic input is a clear PhenoseqError, raised before any work."""

from __future__ import annotations

import numpy as np
import pytest

from phenoseq.errors import PhenoseqError
from phenoseq.evaluate import evaluate


def _drop_latent(adata):
    del adata.obsm["X_phenoseq"]
    return adata


@pytest.mark.parametrize(
    "break_it, message",
    [
        (_drop_latent, "X_phenoseq"),
        (lambda a: _with_latent(a, a.obsm["X_phenoseq"][:, :5]), "dimensions"),
        (lambda a: _rename_well(a), "not in the imaging data"),
        (lambda a: a[~a.obs["Replicate"].astype(str).isin(["3"]).to_numpy()].copy(), "training wells"),
        (lambda a: a[~a.obs["Sample_ID"].astype(str).isin(["R4-DMSO"]).to_numpy()].copy(), "cover 27 of the 28"),
    ],
)
def test_bad_synthetic_input_is_a_clear_error(screen, space, oracle, fast_config, break_it, message):
    with pytest.raises(PhenoseqError, match=message):
        evaluate(screen, space, synthetic={"bad": break_it(oracle.copy())}, config=fast_config)


def _with_latent(adata, latent):
    out = adata.copy()
    out.obsm["X_phenoseq"] = np.ascontiguousarray(latent)
    return out


def _rename_well(adata):
    out = adata.copy()
    obs = out.obs.copy()
    obs["Sample_ID"] = obs["Sample_ID"].astype(str)
    obs.iloc[0, obs.columns.get_loc("Sample_ID")] = "R9-NOWHERE"
    out.obs = obs
    return out


def test_reserved_and_empty_names(screen, space, oracle, fast_config):
    for name in ("reference", "replicate"):
        with pytest.raises(PhenoseqError, match="reserved"):
            evaluate(screen, space, synthetic={name: oracle}, config=fast_config)
    with pytest.raises(PhenoseqError, match="nothing to evaluate"):
        evaluate(screen, space, synthetic={}, config=fast_config)
