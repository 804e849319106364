"""Model and training settings, with named presets. Everything here is saved in the checkpoint JSON."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

from phenoseq.errors import PhenoseqError


@dataclass(frozen=True)
class ModelConfig:
    # RNA space
    n_latent: int = 50
    n_top_genes: int = 2000
    rna_input: str = "counts"  # "counts" or "expression" (already normalised, e.g. bulk)
    rna_embedding: str | None = None  # train in this obsm embedding (e.g. "X_embedding" from scGPT) instead of PCA
    # network
    dim: int = 128
    depth: int = 3
    heads: int = 4
    tokens: int = 1  # RNA tokens per cell; more tokens buy capacity at a near-linear cost in speed
    # diffusion
    prediction: str = "v"
    context_size: int = 64  # imaging cells in one RNA cell's context set
    pool_size: int = 128  # imaging cells encoded per well per batch; sets are drawn from this pool
    context_dropout: float = 0.1  # for classifier-free guidance
    # training
    batch_size: int = 512
    cells_per_well: int = 16  # RNA cells of one well in a batch (they share the well's encoded pool)
    lr: float = 2e-3
    weight_decay: float = 0.01
    warmup_steps: int = 100
    max_epochs: int = 200
    patience: int = 20  # epochs without validation improvement before stopping
    time_limit: float | None = None  # seconds; stop (and keep the best weights) after this long
    grad_clip: float = 1.0
    ema_decay: float = 0.995
    precision: str = "bf16"  # "bf16" autocast on CPU (2.5–3× faster matmuls) or "fp32"
    # sampling defaults
    sampler: str = "dpm++2m"
    steps: int = 12
    guidance: float = 1.0

    @classmethod
    def preset(cls, name: str, **overrides) -> "ModelConfig":
        """A named size: ``"cpu"`` (default, trains in minutes on 2 cores) or ``"paper"`` (dim 1024, 6 layers,
        8 heads, the published size; meant for a GPU)."""
        if name not in PRESETS:
            raise PhenoseqError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
        return cls.from_dict({**PRESETS[name], **overrides})

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise PhenoseqError(f"unknown model settings {unknown}; known settings: {sorted(known)}")
        return replace(cls(), **d)

    def to_dict(self) -> dict:
        return asdict(self)


PRESETS: dict[str, dict] = {
    "cpu": {},
    "tiny": {"dim": 32, "depth": 1, "heads": 2, "tokens": 2, "n_latent": 16, "batch_size": 256, "max_epochs": 5,
             "context_size": 8, "pool_size": 16},
    "paper": {"dim": 1024, "depth": 6, "heads": 8, "tokens": 4, "lr": 3e-4, "batch_size": 256, "precision": "bf16"},
}
