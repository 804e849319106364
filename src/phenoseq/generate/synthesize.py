"""Sampling synthetic RNA latents for imaging wells, in batches of bounded size.

Each well gets its own seed (from the run's seed and the well's sample id), which fixes its imaging pool,
each synthetic cell's context set and the starting noise: a well's cells are the same whichever other
wells are generated with it and whatever the batch size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from phenoseq import progress as progress_mod
from phenoseq.generate.seeds import well_seed
from phenoseq.model.data import WellImaging, random_sets
from phenoseq.model.denoiser import ContextSet, Denoiser
from phenoseq.model.device import autocast
from phenoseq.model.diffusion import Diffusion


@dataclass(frozen=True)
class SamplingSettings:
    cells_per_well: int
    context_size: int
    pool_size: int
    sampler: str
    steps: int
    guidance: float
    precision: str
    seed: int
    max_batch: int = 4096  # synthetic cells per network call: bounds memory


def _well_batch(net: Denoiser, imaging: WellImaging, wells: list[int], s: SamplingSettings, d: int):
    """Context (a grid of wells × ``cells_per_well``) and starting noise for the wells in ``wells``."""
    pools, member, noise, seeds = [], [], [], []
    pool_size = imaging.pool_size(s.pool_size)
    for w in wells:
        seed = well_seed(s.seed, str(imaging.names[w]))
        rng = np.random.default_rng(seed)
        pools.append(imaging.pool(w, pool_size, rng))
        member.append(random_sets(rng, (1, s.cells_per_well), pool_size, s.context_size))
        noise.append(torch.randn((s.cells_per_well, d), generator=torch.Generator().manual_seed(seed)))
        seeds.append(seed)
    device = next(net.parameters()).device
    ctx = ContextSet(
        tokens=net.encode(torch.stack(pools).to(device)),
        member=torch.from_numpy(np.concatenate(member)).to(device),
        drop=torch.zeros((len(wells), s.cells_per_well), dtype=torch.bool, device=device),
    )
    return ctx, torch.cat(noise).to(device), np.repeat(seeds, s.cells_per_well)  # noise drawn on the CPU


def _guided(net: Denoiser, ctx: ContextSet, guidance: float):
    """The model function for the sampler, with classifier-free guidance when ``guidance != 1``."""
    cond = net.condition(ctx)
    if guidance == 1.0:
        return lambda x, t: net(x, t, cond).float()
    uncond = net.condition(ContextSet(ctx.tokens, ctx.member, torch.ones_like(ctx.drop)))

    def fn(x, t):
        c, u = net(x, t, cond).float(), net(x, t, uncond).float()
        return u + guidance * (c - u)

    return fn


@torch.no_grad()
def sample_latents(net: Denoiser, diffusion: Diffusion, imaging: WellImaging, settings: SamplingSettings,
                   latent_dim: int, progress: progress_mod.Progress | None = None) -> tuple[np.ndarray, list, np.ndarray]:
    """Sample ``cells_per_well`` standardised latents for every well of ``imaging``.

    Returns ``(latents (n_wells * K, d), sample id of each cell, seed of each cell)``, wells in sorted order.
    """
    net.eval()
    wells_per_call = max(1, settings.max_batch // max(1, settings.cells_per_well))
    all_wells = list(range(len(imaging.names)))
    chunks = [all_wells[i:i + wells_per_call] for i in range(0, len(all_wells), wells_per_call)]
    latents, seeds = [], []
    with progress_mod.get(progress).task("generating", total=len(all_wells)) as bar:
        for chunk in chunks:
            with autocast(settings.precision, next(net.parameters()).device):
                ctx, noise, chunk_seeds = _well_batch(net, imaging, chunk, settings, latent_dim)
                x = diffusion.sample(_guided(net, ctx, settings.guidance), noise, settings.steps, settings.sampler)
            latents.append(x.float().cpu().numpy())
            seeds.append(chunk_seeds)
            bar.update(len(chunk))
    samples = list(np.repeat(imaging.names, settings.cells_per_well))
    return np.concatenate(latents), samples, np.concatenate(seeds)
