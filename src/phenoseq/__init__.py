"""phenoseq: Cell Painting morphology → single-cell transcriptomes with a conditional diffusion model.

The pipeline, one subpackage per stage::

    io → featurize / rna → model → generate → evaluate → report

``simulate`` makes paired screens for demos and tests; ``cli`` is a thin layer over this API.
"""

from phenoseq.errors import PhenoseqError

__version__ = "0.1.0"

__all__ = ["PhenoseqError", "PhenoSeq", "pl", "__version__"]


def __getattr__(name: str):
    # Lazy so that `import phenoseq` (and the CLI's start-up) does not import torch.
    if name == "PhenoSeq":
        from phenoseq.phenoseq import PhenoSeq

        return PhenoSeq
    if name == "pl":  # plotting, scanpy-style: phenoseq.pl.scaled_scores(result), ...
        import phenoseq.pl as pl

        return pl
    raise AttributeError(f"module 'phenoseq' has no attribute {name!r}")
