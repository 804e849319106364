"""The training loop: AdamW with warm-up and cosine decay, gradient clipping, EMA, validation-based early
stopping, and a state that can be saved at any epoch boundary and resumed to the same result. Under torchrun
the same loop runs data-parallel (:mod:`phenoseq.model.distributed`)."""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from phenoseq import progress as progress_mod
from phenoseq.errors import PhenoseqError
from phenoseq.model.config import ModelConfig
from phenoseq.model.data import WellBatches, WellImaging, draw_context
from phenoseq.model.denoiser import ContextSet, Denoiser
from phenoseq.model.device import autocast
from phenoseq.model.diffusion import Diffusion
from phenoseq.model.distributed import Ranks, rank_generators

VALIDATION_SEED = 12_345


@dataclass
class Split:
    """RNA cells of one split: standardised latents ``(N, d)`` and each cell's well code ``(N,)`` (its row in
    :class:`~phenoseq.model.data.WellImaging`)."""

    latents: torch.Tensor
    well_codes: np.ndarray


@dataclass
class TrainState:
    """Everything that changes during training (saved in the checkpoint, so ``resume`` can continue)."""

    epoch: int = 0
    step: int = 0
    best_val: float = math.inf
    best_epoch: int = 0
    bad_epochs: int = 0
    done: bool = False
    history: list[dict] = field(default_factory=list)


class Trainer:
    """Owns the optimiser and EMA of a :class:`Denoiser`; ``run`` trains until early stopping or a limit."""

    def __init__(self, denoiser: Denoiser, diffusion: Diffusion, config: ModelConfig, seed: int) -> None:
        self.net, self.diffusion, self.config, self.seed = denoiser, diffusion, config, seed
        self.ema = copy.deepcopy(denoiser).requires_grad_(False)
        self.best = copy.deepcopy(self.ema.state_dict())
        decay, no_decay = [], []
        for name, p in denoiser.named_parameters():
            (no_decay if p.ndim < 2 or "pos" in name or "null" in name else decay).append(p)
        groups = [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
        try:  # one kernel over all parameters: a 7x faster step on a CPU, ~10% of a training step
            self.optimizer = torch.optim.AdamW(groups, lr=config.lr, betas=(0.9, 0.99), fused=True)
        except RuntimeError:  # torch < 2.4 fuses AdamW on GPUs only
            self.optimizer = torch.optim.AdamW(groups, lr=config.lr, betas=(0.9, 0.99))
        self.state = TrainState()

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    def to(self, device: torch.device) -> "Trainer":
        """Move the network, EMA, best weights and optimiser moments to ``device`` (the optimiser keeps the
        same parameters: ``Module.to`` moves them in place)."""
        self.net.to(device)
        self.ema.to(device)
        self.best = {k: v.to(device) for k, v in self.best.items()}
        for state in self.optimizer.state.values():
            for name, value in state.items():
                if name != "step" and isinstance(value, torch.Tensor):  # Adam keeps its step count on the CPU
                    state[name] = value.to(device)
        return self

    def state_dict(self) -> tuple[dict[str, torch.Tensor], dict]:
        """(CPU tensors ``net.*``, ``ema.*``, ``best.*``, ``optim.*``; JSON metadata) — everything resume needs."""
        tensors = {f"net.{k}": v for k, v in self.net.state_dict().items()}
        tensors.update({f"ema.{k}": v for k, v in self.ema.state_dict().items()})
        tensors.update({f"best.{k}": v for k, v in self.best.items()})
        optim = self.optimizer.state_dict()
        for idx, state in optim["state"].items():
            for name, value in state.items():
                tensors[f"optim.{idx}.{name}"] = value if value.ndim else value.reshape(1)  # safetensors: no 0-d
        tensors = {k: v.detach().cpu() for k, v in tensors.items()}
        meta = {"train_state": vars(self.state),
                "optimizer": {"param_groups": optim["param_groups"],
                              "state_keys": {str(i): list(s) for i, s in optim["state"].items()}}}
        return tensors, meta

    def load_state_dict(self, tensors: dict[str, torch.Tensor], meta: dict) -> None:
        """Inverse of :meth:`state_dict` (strict: a missing, renamed or resized tensor raises)."""
        self.net.load_state_dict(_prefixed(tensors, "net."))
        self.ema.load_state_dict(_prefixed(tensors, "ema."))
        self.best = _prefixed(tensors, "best.")
        copy.deepcopy(self.net).load_state_dict(self.best)  # the best weights must fit the network too
        opt = meta["optimizer"]
        state = {int(i): {name: _unscalar(tensors[f"optim.{i}.{name}"], name) for name in names}
                 for i, names in opt["state_keys"].items()}
        self.optimizer.load_state_dict({"state": state, "param_groups": opt["param_groups"]})
        self.state = TrainState(**meta["train_state"])

    def lr_at(self, step: int, total: int) -> float:
        c = self.config
        if step < c.warmup_steps:
            return c.lr * (step + 1) / c.warmup_steps
        frac = min(1.0, (step - c.warmup_steps) / max(1, total - c.warmup_steps))
        return c.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))

    def loss(self, net: Denoiser, imaging: WellImaging, split: Split, wells: np.ndarray, idx: np.ndarray,
             rng: np.random.Generator, gen: torch.Generator, drop_prob: float) -> torch.Tensor:
        """Diffusion loss of the RNA cells ``idx`` (``(W, C)`` rows of ``split``), which belong to ``wells``."""
        c, device = self.config, self.device
        ctx = draw_context(imaging, wells, idx.shape[1], c.pool_size, c.context_size, rng, drop_prob).to(device)
        latents = split.latents[torch.from_numpy(idx.reshape(-1))].to(device)
        t = torch.rand(len(latents), generator=gen).to(device)  # drawn on the CPU: the same on every device
        noise = torch.randn(latents.shape, generator=gen).to(device)
        x_t, target = self.diffusion.noisy(latents, t, noise)
        pred = net(x_t, t, ContextSet(net.encode(ctx.pools), ctx.member, ctx.drop))
        return torch.mean((pred.float() - target) ** 2)

    @torch.no_grad()
    def validate(self, imaging: WellImaging, val: Split) -> float:
        """Mean loss of the EMA weights on the validation split, with fixed noise (comparable across epochs)."""
        rng = np.random.default_rng(VALIDATION_SEED)
        gen = torch.Generator().manual_seed(VALIDATION_SEED)
        batches = WellBatches(val.well_codes, self.config.batch_size * 4, self.config.batch_cells_per_well)
        losses = []
        with autocast(self.config.precision, self.device):
            for wells, idx in batches.epoch(rng):
                losses.append(float(self.loss(self.ema, imaging, val, wells, idx, rng, gen, 0.0)))
        return float(np.mean(losses))

    def _ema_update(self) -> None:
        decay = min(self.config.ema_decay, (1 + self.state.step) / (10 + self.state.step))
        with torch.no_grad():
            for e, p in zip(self.ema.parameters(), self.net.parameters()):
                e.lerp_(p, 1 - decay)

    def run(self, imaging: WellImaging, train: Split, val: Split | None,
            progress: progress_mod.Progress | None = None, max_epochs: int | None = None,
            on_epoch_end: Callable[[], None] | None = None, ranks: Ranks = Ranks()) -> TrainState:
        """Train from the current state until early stopping, ``max_epochs`` (total), or the time limit.

        ``on_epoch_end`` runs after each finished epoch, when the state is consistent (for checkpoints).
        ``ranks``: this process's place in a data-parallel run (its process group already joined); each global
        batch's wells are shared out between the ranks, and their gradients averaged (:mod:`.distributed`).
        """
        c, s = self.config, self.state
        max_epochs = c.max_epochs if max_epochs is None else max_epochs
        batches = WellBatches(train.well_codes, c.batch_size, c.batch_cells_per_well)
        if batches.n_wells < ranks.world_size:
            raise PhenoseqError(
                f"a training batch holds {batches.n_wells} wells, fewer than the {ranks.world_size} processes that "
                "would share it; start fewer processes, or raise batch_size / lower batch_cells_per_well (--set)")
        total_steps = c.max_epochs * batches.steps
        start = time.monotonic()
        self.net.train()
        with progress_mod.get(progress).task("training", total=max_epochs) as bar:
            bar.update(s.epoch)
            while not s.done and s.epoch < max_epochs:
                # Each epoch's randomness depends only on (seed, epoch) — and the rank, for a rank's own contexts
                # and noise — so a resumed run repeats it exactly. All ranks draw the same batches.
                rng = np.random.default_rng([self.seed, s.epoch])
                if ranks.world_size == 1:
                    own_rng, gen = rng, torch.Generator().manual_seed(self.seed * 100_003 + s.epoch)
                else:
                    own_rng, gen = rank_generators(self.seed, s.epoch, ranks.rank)
                losses = []
                for wells, idx in batches.epoch(rng):
                    mine, weight = ranks.share(len(wells)), ranks.share_weight(len(wells))
                    for group in self.optimizer.param_groups:
                        group["lr"] = self.lr_at(s.step, total_steps)
                    with autocast(c.precision, self.device):
                        loss = weight * self.loss(self.net, imaging, train, wells[mine], idx[mine], own_rng, gen,
                                                  c.context_dropout)
                    self.optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    ranks.average_gradients(self.net)
                    torch.nn.utils.clip_grad_norm_(self.net.parameters(), c.grad_clip)
                    self.optimizer.step()
                    s.step += 1
                    self._ema_update()
                    losses.append(float(loss.detach()))
                s.epoch += 1
                record = {"epoch": s.epoch, "train_loss": ranks.mean(float(np.mean(losses)))}
                if val is not None and len(val.latents):
                    record["val_loss"] = ranks.from_main(self.validate(imaging, val) if ranks.is_main else math.nan)
                    if record["val_loss"] < s.best_val - 1e-4:
                        s.best_val, s.best_epoch, s.bad_epochs = record["val_loss"], s.epoch, 0
                        self.best = copy.deepcopy(self.ema.state_dict())
                    else:
                        s.bad_epochs += 1
                        s.done = s.bad_epochs >= c.patience
                else:
                    self.best = copy.deepcopy(self.ema.state_dict())
                    s.best_epoch = s.epoch
                s.history.append(record)
                info = f"loss {record['train_loss']:.3f}" + (f" val {record['val_loss']:.3f}" if "val_loss" in record else "")
                if s.done:
                    info += f" (early stop; best epoch {s.best_epoch})"
                bar.update(1, info=info)
                if on_epoch_end is not None:
                    on_epoch_end()
                out_of_time = c.time_limit is not None and time.monotonic() - start > c.time_limit
                if ranks.from_main(float(out_of_time)):  # every rank stops at the epoch rank 0 stops at
                    break
        if s.epoch >= c.max_epochs:
            s.done = True
        ranks.check_in_sync(self.net)
        self.net.eval()
        return s


def _prefixed(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}


def _unscalar(value: torch.Tensor, name: str) -> torch.Tensor:
    return value.reshape(()) if name == "step" else value
