"""Model and training settings, with named presets. Everything here is saved in the checkpoint JSON."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace

from phenoseq.errors import PhenoseqError

# Settings saved under an earlier name (model.json of phenoseq 0.1.0); read under the new one.
RENAMED = {"rna_input": "rna_kind", "cells_per_well": "batch_cells_per_well"}

# Allowed values of the text settings; numeric ranges are in ModelConfig._RANGES.
CHOICES = {
    "rna_kind": ("counts", "expression"),
    "prediction": ("v", "eps"),
    "precision": ("auto", "bf16", "fp32"),
    "sampler": ("dpm++2m", "ddim"),
}


@dataclass(frozen=True)
class ModelConfig:
    # RNA space
    n_latent: int = 50
    n_top_genes: int = 2000
    rna_kind: str = "counts"  # what the RNA file holds: "counts" or "expression" (already normalised, e.g. bulk)
    rna_embedding: str | None = None  # train in this obsm embedding (e.g. "X_embedding" from scGPT) instead of PCA
    # network
    dim: int = 128
    depth: int = 3
    heads: int = 4
    tokens: int = 1  # RNA tokens per cell; more tokens buy capacity at a near-linear cost in speed
    # True: a regression gives each well's mean (model/anchor.py) and the diffusion model generates each cell's
    # deviation from it; False: the diffusion model generates whole cells (phenoseq <= 0.1 behaviour)
    anchor: bool = True
    # diffusion
    prediction: str = "v"  # what the network predicts: "v" (velocity) or "eps" (noise)
    logsnr_min: float = -15.0  # the cosine schedule's log signal-to-noise range (t = 1 … t = 0)
    logsnr_max: float = 15.0
    context_size: int = 64  # imaging cells in one RNA cell's context set
    pool_size: int = 128  # imaging cells encoded per well per batch; sets are drawn from this pool
    context_dropout: float = 0.1  # for classifier-free guidance
    # training
    batch_size: int = 512
    batch_cells_per_well: int = 16  # RNA cells of one well in a training batch (they share the well's encoded pool)
    lr: float = 2e-3
    weight_decay: float = 0.01
    warmup_steps: int = 100
    max_epochs: int = 200
    patience: int = 20  # epochs without validation improvement before stopping
    time_limit: float | None = None  # seconds; stop (and keep the best weights) after this long
    grad_clip: float = 1.0
    ema_decay: float = 0.995
    # "bf16" autocast on the network's device, "fp32", or "auto": bf16 where it beats fp32 (CUDA GPUs with bf16,
    # CPUs with AMX), else fp32 (a CPU with AVX512-BF16 but no AMX ran bf16 matmuls at ~0.5x fp32; an AVX2-only
    # one emulates bf16, ~100x slower). Resolved where the network runs, not when saved.
    precision: str = "auto"
    # sampling defaults
    sampler: str = "dpm++2m"
    steps: int = 12
    guidance: float = 1.0

    # (lowest, highest, lowest excluded): every numeric setting is checked against its range on creation, so a
    # bad value fails before any data is read, whether it comes from --set, the API or a model.json.
    _RANGES = {
        "n_latent": (1, None, False), "n_top_genes": (1, None, False), "dim": (1, None, False),
        "depth": (1, None, False), "heads": (1, None, False), "tokens": (1, None, False),
        "context_size": (1, None, False), "pool_size": (1, None, False), "context_dropout": (0, 1, False),
        "batch_size": (1, None, False), "batch_cells_per_well": (1, None, False), "lr": (0, None, True),
        "weight_decay": (0, None, False), "warmup_steps": (0, None, False), "max_epochs": (1, None, False),
        "patience": (1, None, False), "time_limit": (0, None, True), "grad_clip": (0, None, True),
        "ema_decay": (0, 1, False), "steps": (1, None, False), "guidance": (0, None, False),
    }

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in CHOICES:
                if value not in CHOICES[f.name]:
                    raise PhenoseqError(f"model setting {f.name}={value!r} is not allowed; choose one of "
                                        f"{list(CHOICES[f.name])}")
            elif f.name == "anchor":
                if not isinstance(value, bool):
                    raise PhenoseqError(f"model setting anchor={value!r} must be true or false")
            elif f.name == "rna_embedding":
                if value is not None and (not isinstance(value, str) or not value):
                    raise PhenoseqError(f"model setting rna_embedding={value!r} must name an obsm key, e.g. X_embedding")
            else:
                _check_number(f.name, value, f.type, self._RANGES.get(f.name))
        if self.logsnr_min >= self.logsnr_max:
            raise PhenoseqError(f"model settings logsnr_min={self.logsnr_min} must be below logsnr_max={self.logsnr_max}")
        if self.dim % self.heads:
            raise PhenoseqError(f"model setting dim={self.dim} must be divisible by heads={self.heads} (each attention "
                                f"head gets dim / heads channels); e.g. dim={self.heads * max(1, round(self.dim / self.heads))}")

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
        if not isinstance(d, dict):
            raise PhenoseqError(f"model settings must be a mapping of name to value, got {type(d).__name__}")
        unknown = sorted(set(d) - known)
        if unknown:
            raise PhenoseqError(f"unknown model settings {unknown}; known settings: {sorted(known)}")
        return replace(cls(), **d)

    def to_dict(self) -> dict:
        return asdict(self)


def _check_number(name: str, value, annotation: str, bounds) -> None:
    """Type and range check of one numeric setting (``annotation`` is the field's type as written)."""
    optional = "None" in annotation
    if value is None and optional:
        return
    want_int = annotation.startswith("int")
    ok_type = isinstance(value, int) if want_int else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok_type:
        kind = "a whole number" if want_int else "a number"
        raise PhenoseqError(f"model setting {name}={value!r} must be {kind}"
                            + (" (or null)" if optional else "") + f", e.g. --set {name}=" + ("32" if want_int else "0.1"))
    if not math.isfinite(value):
        raise PhenoseqError(f"model setting {name}={value!r} must be finite")
    if bounds is None:
        return
    low, high, open_low = bounds
    if (value <= low if open_low else value < low) or (high is not None and value > high):
        rng = f"{'>' if open_low else '>='} {low}" + (f" and <= {high}" if high is not None else "")
        raise PhenoseqError(f"model setting {name}={value!r} is out of range; it must be {rng}")


PRESETS: dict[str, dict] = {
    "cpu": {},
    "tiny": {"dim": 32, "depth": 1, "heads": 2, "tokens": 2, "n_latent": 16, "batch_size": 256, "max_epochs": 5,
             "context_size": 8, "pool_size": 16},
    "paper": {"dim": 1024, "depth": 6, "heads": 8, "tokens": 4, "lr": 3e-4, "batch_size": 256},
}
