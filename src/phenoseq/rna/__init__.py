"""RNA counts → the latent space the model generates in, and back to genes."""

from phenoseq.rna.space import RNASpace, highly_variable_genes, log_normalise

__all__ = ["RNASpace", "highly_variable_genes", "log_normalise"]
