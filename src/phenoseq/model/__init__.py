"""The conditional diffusion model: denoiser network, diffusion process, training, and the PhenoSeq object."""

from phenoseq.model.config import ModelConfig
from phenoseq.model.diffusion import Diffusion

__all__ = ["Diffusion", "ModelConfig"]
