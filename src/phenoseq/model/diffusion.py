"""The diffusion process, kept apart from the network: schedule, training target, samplers.

Continuous time ``t ∈ [0, 1]``; ``x_t = α_t x_0 + σ_t ε`` with a cosine schedule written in log-SNR
(``λ_t = -2 log tan(a t + b)``, clipped to ``[λ_min, λ_max]`` so both ends are finite) and
``α² = sigmoid(λ)``, ``σ² = sigmoid(-λ)``. The network predicts ``v = α ε - σ x_0`` (default) or ``ε``.

Samplers take ``model_fn(x, t) → prediction`` (guidance already applied) and run from ``t = 1`` to ``0``:

* ``ddim``: deterministic DDIM (η = 0), first order; needs ~50 steps.
* ``dpm++2m``: DPM-Solver++(2M), second-order multistep in data prediction; good at ≤ 16 steps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

ModelFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
SAMPLERS = ("dpm++2m", "ddim")


@dataclass(frozen=True)
class Diffusion:
    prediction: str = "v"
    logsnr_min: float = -15.0
    logsnr_max: float = 15.0

    def __post_init__(self) -> None:
        if self.prediction not in ("v", "eps"):
            raise ValueError(f"prediction must be 'v' or 'eps', got {self.prediction!r}")

    # -- schedule ------------------------------------------------------------------------------------
    def logsnr(self, t: torch.Tensor) -> torch.Tensor:
        b = math.atan(math.exp(-0.5 * self.logsnr_max))
        a = math.atan(math.exp(-0.5 * self.logsnr_min)) - b
        return -2.0 * torch.log(torch.tan(a * t.double() + b)).to(torch.float64)

    def alpha_sigma(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        lam = self.logsnr(t)
        return torch.sigmoid(lam).sqrt().float(), torch.sigmoid(-lam).sqrt().float()

    # -- training ------------------------------------------------------------------------------------
    def noisy(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x_t, target)`` for clean ``x0`` ``(B, d)`` at times ``t`` ``(B,)`` with Gaussian ``noise``."""
        a, s = (v[:, None] for v in self.alpha_sigma(t))
        x_t = a * x0 + s * noise
        target = a * noise - s * x0 if self.prediction == "v" else noise
        return x_t, target

    def to_x0_eps(self, x_t: torch.Tensor, t: torch.Tensor, pred: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Network output → (predicted x_0, predicted ε)."""
        a, s = (v[:, None] for v in self.alpha_sigma(t))
        if self.prediction == "v":
            return a * x_t - s * pred, s * x_t + a * pred
        return (x_t - s * pred) / a, pred

    # -- sampling ------------------------------------------------------------------------------------
    def timesteps(self, steps: int) -> torch.Tensor:
        return torch.linspace(1.0, 0.0, steps + 1)

    @torch.no_grad()
    def sample(self, model_fn: ModelFn, noise: torch.Tensor, steps: int, sampler: str = "dpm++2m") -> torch.Tensor:
        """Integrate from pure ``noise`` ``(B, d)`` at ``t = 1`` to data at ``t = 0`` in ``steps`` model calls."""
        if sampler not in SAMPLERS:
            raise ValueError(f"unknown sampler {sampler!r}; choose one of {SAMPLERS}")
        if steps < 1:
            raise ValueError("steps must be at least 1")
        ts = self.timesteps(steps).to(noise.device)
        x = noise
        x0_prev, h_prev = None, None
        for i in range(steps):
            t, s = ts[i], ts[i + 1]
            tb = t.expand(len(x))
            x0, eps = self.to_x0_eps(x, tb, model_fn(x, tb))
            a_s, s_s = (v.item() for v in self.alpha_sigma(s[None]))
            if sampler == "ddim":
                x = a_s * x0 + s_s * eps
                continue
            a_t, s_t = (v.item() for v in self.alpha_sigma(t[None]))
            lam_t, lam_s = self.logsnr(t[None]).item(), self.logsnr(s[None]).item()
            h = 0.5 * (lam_s - lam_t)  # DPM-Solver's λ is log(α/σ): half the log-SNR
            d = x0
            # The last step to t = 0 spans a huge log-SNR range; extrapolating over it overshoots, so it is
            # taken first-order (DPM-Solver's "lower order final").
            if x0_prev is not None and i < steps - 1:
                r = h_prev / h
                d = (1 + 1 / (2 * r)) * x0 - (1 / (2 * r)) * x0_prev
            x = (s_s / s_t) * x - a_s * math.expm1(-h) * d
            x0_prev, h_prev = x0, h
        return x
