"""Synthetic cells for imaging wells, in the shared output contract (see :mod:`phenoseq.generate.output`)."""

from phenoseq.generate.output import LATENT_KEY, synthetic_adata, well_metadata

__all__ = ["LATENT_KEY", "synthetic_adata", "well_metadata"]
