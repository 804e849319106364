"""The denoiser: a small transformer that predicts the diffusion target for a noisy RNA latent, given a set
of imaging cells of the same well.

Shapes used throughout::

    W  wells in a batch                F  morphology features
    C  RNA cells per well in a batch   P  imaging cells encoded per well (the well's pool)
    B  = W·C RNA cells, well-major     n  imaging cells in one RNA cell's context set (n ≤ P)
    T  RNA tokens per cell             D  model width;  d  RNA latent size

How the pieces fit:

1. ``ContextEncoder`` turns each imaging cell into a token, *independently*, so a well's pool is encoded
   once per batch (``(W, P, F) → (W, P, D)``) and reused by every RNA cell of that well.
2. Each RNA cell has its own random set of ``n`` pool cells, given as a membership mask ``(W, C, P)``.
   Cross-attention runs per well — the ``C`` cells' queries against the well's ``P`` keys, masked to each
   cell's set — so no per-cell copy of keys and values is ever made. Attention over a set, and its mean,
   do not depend on the order of the set: the denoiser is permutation-invariant in it.
3. ``Block``: self-attention among the RNA cell's ``T`` tokens, cross-attention from those tokens to the
   context set (plus a learned "no context" token, which is all that is left when the context is dropped
   for classifier-free guidance), then an MLP; every sub-layer is modulated by adaptive layer norm
   (scale, shift, gate) from the time embedding plus the mean context token.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class ContextSet:
    """The context of a batch laid out as a grid of W wells × C RNA cells.

    ``tokens``: ``(W, P, D)`` encoded pools; ``member``: ``(W, C, P)`` bool, which pool cells form each RNA
    cell's set; ``drop``: ``(W, C)`` bool, True where the context is hidden (guidance training / the
    unconditional pass).
    """

    tokens: torch.Tensor
    member: torch.Tensor
    drop: torch.Tensor

    @property
    def cells_per_well(self) -> int:
        return self.member.shape[1]


@dataclass
class Conditioning:
    """A prepared context: the set summary ``(B, D)`` and per-block cross-attention keys/values/mask."""

    summary: torch.Tensor
    kv: list


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of continuous times ``t`` in [0, 1]: ``(B,) → (B, dim)``."""
    half = dim // 2
    freqs = torch.exp(-math.log(10_000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    angles = 1000.0 * t.float()[:, None] * freqs[None]
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)


class ContextEncoder(nn.Module):
    """Per-cell MLP: standardised morphology ``(..., F)`` → token ``(..., D)``."""

    def __init__(self, n_features: int, dim: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(n_features, dim), nn.GELU(), nn.Linear(dim, dim), nn.LayerNorm(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def _modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return x * (1 + scale[:, None]) + shift[:, None]


class Block(nn.Module):
    """Self-attention, cross-attention to the context set, MLP; each under adaLN (DiT-style, zero-init gates)."""

    def __init__(self, dim: int, heads: int, tokens_per_cell: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.heads, self.tokens_per_cell = heads, tokens_per_cell
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj_self = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=False)
        self.q_cross = nn.Linear(dim, dim)
        self.kv_cross = nn.Linear(dim, 2 * dim)  # applied to each well pool once, shared by its cells
        self.null_kv = nn.Parameter(torch.zeros(1, 1, 2 * dim))
        self.proj_cross = nn.Linear(dim, dim)
        self.norm3 = nn.LayerNorm(dim, elementwise_affine=False)
        self.mlp = nn.Sequential(nn.Linear(dim, int(dim * mlp_ratio)), nn.GELU(), nn.Linear(int(dim * mlp_ratio), dim))
        self.ada = nn.Linear(dim, 9 * dim)
        nn.init.zeros_(self.ada.weight)
        nn.init.zeros_(self.ada.bias)
        nn.init.normal_(self.null_kv, std=0.02)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        b, s, d = x.shape
        return x.view(b, s, self.heads, d // self.heads).transpose(1, 2)

    def _attend(self, q, k, v, mask=None) -> torch.Tensor:
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        b, h, s, dh = out.shape
        return out.transpose(1, 2).reshape(b, s, h * dh)

    def context_kv(self, ctx: ContextSet) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Keys, values ``(W, heads, 1 + P, D/heads)`` and mask ``(W, 1, C·T, 1 + P)``; fixed across sampling steps."""
        kv = self.kv_cross(ctx.tokens)  # projected once per pool token
        kv = torch.cat([self.null_kv.expand(len(kv), 1, -1).to(kv.dtype), kv], dim=1)
        k, v = kv.chunk(2, dim=-1)
        # The null token is always visible; a cell sees its own set unless its context is dropped.
        visible = ctx.member & ~ctx.drop[..., None]
        visible = torch.cat([torch.ones_like(visible[..., :1]), visible], dim=-1)  # (W, C, 1 + P)
        visible = visible.repeat_interleave(self.tokens_per_cell, dim=1)[:, None]
        # Additive form, made once: attention would otherwise convert a boolean mask at every call (every
        # sampling step).
        mask = torch.zeros(visible.shape, dtype=k.dtype, device=k.device).masked_fill_(~visible, -math.inf)
        return self._heads(k), self._heads(v), mask

    def forward(self, x: torch.Tensor, cond: torch.Tensor, kvm: tuple) -> torch.Tensor:
        s1, c1, g1, s2, c2, g2, s3, c3, g3 = self.ada(F.silu(cond)).chunk(9, dim=-1)
        h = _modulate(self.norm1(x), s1, c1)
        if self.tokens_per_cell == 1:
            # Attention over one token returns its value exactly (the softmax of one score is 1, and the
            # query and key get no gradient), so only the value projection is computed.
            d = h.shape[-1]
            attended = F.linear(h, self.qkv.weight[2 * d:], self.qkv.bias[2 * d:])
        else:
            q, k, v = self.qkv(h).chunk(3, dim=-1)
            attended = self._attend(self._heads(q), self._heads(k), self._heads(v))
        x = x + g1[:, None] * self.proj_self(attended)

        h = _modulate(self.norm2(x), s2, c2)
        k, v, mask = kvm
        b, t, d = h.shape
        q = self._heads(self.q_cross(h).reshape(k.shape[0], -1, d))  # the C·T queries of each well together
        out = self._attend(q, k, v, mask).reshape(b, t, d)
        x = x + g2[:, None] * self.proj_cross(out)

        h = _modulate(self.norm3(x), s3, c3)
        return x + g3[:, None] * self.mlp(h)


class Denoiser(nn.Module):
    """Predicts the diffusion target (v or ε) for noisy RNA latents ``x_t`` at times ``t`` given a context set.

    ``forward(x_t (B, d), t (B,), ctx) → (B, d)``; encode well pools first with :meth:`encode`.
    """

    def __init__(self, latent_dim: int, n_features: int, dim: int = 128, depth: int = 3, heads: int = 4,
                 tokens: int = 4) -> None:
        super().__init__()
        self.latent_dim, self.tokens, self.dim = latent_dim, tokens, dim
        self.encoder = ContextEncoder(n_features, dim)
        self.null_context = nn.Parameter(torch.zeros(dim))
        self.pool_proj = nn.Linear(dim, dim)
        self.time_mlp = nn.Sequential(nn.Linear(dim, dim), nn.SiLU(), nn.Linear(dim, dim))
        self.inp = nn.Linear(latent_dim, tokens * dim)
        self.pos = nn.Parameter(torch.randn(1, tokens, dim) * 0.02)
        self.blocks = nn.ModuleList(Block(dim, heads, tokens) for _ in range(depth))
        self.norm_out = nn.LayerNorm(dim, elementwise_affine=False)
        self.ada_out = nn.Linear(dim, 2 * dim)
        self.out = nn.Linear(tokens * dim, latent_dim)
        for layer in (self.ada_out, self.out):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def encode(self, pools: torch.Tensor) -> torch.Tensor:
        """``(W, P, F)`` standardised morphology of each well's pool → ``(W, P, D)`` tokens."""
        return self.encoder(pools)

    def condition(self, ctx: ContextSet) -> Conditioning:
        """Everything the network needs from a context set; computed once, reused at every sampling step."""
        member = ctx.member.to(ctx.tokens.dtype)
        summary = (member @ ctx.tokens) / member.sum(dim=-1, keepdim=True)  # (W, C, D): order-free set mean
        summary = summary.reshape(-1, self.dim)
        drop = ctx.drop.reshape(-1, 1)
        summary = torch.where(drop, self.null_context.to(summary.dtype).expand_as(summary), summary)
        return Conditioning(self.pool_proj(summary), [block.context_kv(ctx) for block in self.blocks])

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, ctx: ContextSet | Conditioning) -> torch.Tensor:
        cond = ctx if isinstance(ctx, Conditioning) else self.condition(ctx)
        c = self.time_mlp(timestep_embedding(t, self.dim).to(cond.summary.dtype)) + cond.summary
        h = self.inp(x_t).view(len(x_t), self.tokens, self.dim) + self.pos
        for block, kvm in zip(self.blocks, cond.kv):
            h = block(h, c, kvm)
        shift, scale = self.ada_out(F.silu(c)).chunk(2, dim=-1)
        h = _modulate(self.norm_out(h), shift, scale)
        return self.out(h.reshape(len(x_t), -1))
