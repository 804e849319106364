"""RNA counts → the latent space the model generates in, and back to genes."""

from phenoseq.rna.space import EmbeddingSpace, RNASpace, highly_variable_genes, log_normalise, space_from_state

__all__ = ["EmbeddingSpace", "RNASpace", "space_from_state", "highly_variable_genes", "log_normalise"]
