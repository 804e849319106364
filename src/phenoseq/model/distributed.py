"""Data-parallel training over the processes torchrun starts (torch.distributed: gloo on the CPU, NCCL on CUDA
GPUs).

``torchrun --nproc_per_node N --no-python phenoseq train ...`` runs N copies of the command. Each reads the
screen and fits the same RNA space and scalers (deterministic); then every global training batch of wells is
cut into N disjoint shares, one per rank, so together the ranks take the steps one process takes at the same
``batch_size``, on disjoint cells. After each backward pass the gradients are averaged by one all-reduce, so the
ranks' weights stay identical (checked at the end). Rank 0 alone validates (and broadcasts the loss, so every
rank stops at the same epoch), writes checkpoints, calibrates and saves the model, whose ``model.json`` records
``"world_size"``.

Why not ``DistributedDataParallel``: it overlaps its all-reduces with the backward pass in buckets whose layout
it rebuilds after the first step of each run. With three or more ranks a sum's rounding depends on where a value
sits in the bucket, so a resumed run (whose first step uses the initial layout) would drift from the run it
continues. One all-reduce over all gradients in parameter order rounds alike at every step; for a network of
this size the overlap it gives up is small.

A run launched without torchrun is a world of one: nothing here changes it.
"""

from __future__ import annotations

import contextlib
import datetime
import os
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch
import torch.distributed as dist

from phenoseq.errors import PhenoseqError

GROUP_TIMEOUT = datetime.timedelta(hours=2)


@dataclass(frozen=True)
class Ranks:
    """Where this process stands in a data-parallel run (``Ranks()``: a single process)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0  # the rank on this machine: which GPU the process uses

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def share(self, n: int) -> slice:
        """This rank's rows of an ``n``-row global batch: contiguous, sizes differing by at most one."""
        base, extra = divmod(n, self.world_size)
        start = self.rank * base + min(self.rank, extra)
        return slice(start, start + base + (self.rank < extra))

    def share_weight(self, n: int) -> float:
        """What this rank's mean loss over its share is multiplied by, so that the ranks' gradients averaged
        are the gradient of the whole batch's mean loss (1 in a world of one, and for equal shares)."""
        mine = self.share(n)
        return (mine.stop - mine.start) * self.world_size / n

    def device(self, device: torch.device) -> torch.device:
        """Each process of a multi-GPU run takes the GPU of its local rank (the one GPU it sees, where the
        scheduler shows each process a single GPU)."""
        if device.type != "cuda" or self.world_size == 1:
            return device
        count = torch.cuda.device_count()
        if count == 1:
            return torch.device("cuda", 0)
        if self.local_rank >= count:
            raise PhenoseqError(f"rank {self.rank} has LOCAL_RANK={self.local_rank} but sees {count} GPUs; start at "
                                "most one process per GPU on each machine (torchrun --nproc_per_node)")
        return torch.device("cuda", self.local_rank)

    # Collectives; in a world of one each returns its argument.
    def mean(self, value: float) -> float:
        """The mean of ``value`` over the ranks."""
        if self.world_size == 1:
            return value
        t = torch.tensor([value], dtype=torch.float64, device=_comm_device())
        dist.all_reduce(t)
        return float(t.item()) / self.world_size

    def from_main(self, value: float) -> float:
        """Rank 0's ``value`` on every rank (decisions every rank must take alike: stop, keep the best weights)."""
        if self.world_size == 1:
            return value
        t = torch.tensor([value], dtype=torch.float64, device=_comm_device())
        dist.broadcast(t, src=0)
        return float(t.item())

    def average_gradients(self, module: torch.nn.Module) -> None:
        """Replace each parameter's gradient by its mean over the ranks: one all-reduce of all gradients laid
        end to end in parameter order (module docstring)."""
        if self.world_size == 1:
            return
        params = list(module.parameters())
        for p in params:
            if p.grad is None:  # every rank must send the same layout
                p.grad = torch.zeros_like(p)
        flat = torch.cat([p.grad.reshape(-1) for p in params])
        dist.all_reduce(flat)
        flat /= self.world_size
        for p, g in zip(params, flat.split([p.numel() for p in params])):
            p.grad.copy_(g.view_as(p))

    def check_in_sync(self, module: torch.nn.Module) -> None:
        """Refuse to go on when this rank's weights differ from rank 0's (they must agree bit for bit)."""
        if self.world_size == 1:
            return
        # Bit patterns, so that weights gone NaN alike on every rank still agree (that failure is reported elsewhere).
        mine = torch.cat([p.detach().reshape(-1).float() for p in module.parameters()]).view(torch.int32)
        mine = mine.to(_comm_device())
        main = mine.clone()
        dist.broadcast(main, src=0)
        agree = torch.tensor([float(torch.equal(mine, main))], device=mine.device)
        dist.all_reduce(agree, op=dist.ReduceOp.MIN)
        if agree.item() != 1.0:
            raise PhenoseqError(f"rank {self.rank}: the ranks' weights diverged during data-parallel training; "
                                "this is a bug in phenoseq (or a faulty device): please report it")


def current_ranks() -> Ranks:
    """This process's ranks: those of a process group already set up, else those torchrun gives it in ``RANK``,
    ``WORLD_SIZE`` and ``LOCAL_RANK`` (a single process when they are unset); refuses values torchrun would never
    set."""
    values = {}
    for name, default in (("RANK", 0), ("WORLD_SIZE", 1), ("LOCAL_RANK", 0)):
        raw = os.environ.get(name)
        try:
            values[name] = default if raw in (None, "") else int(raw)
        except ValueError:
            raise PhenoseqError(f"environment variable {name}={raw!r} must be a whole number (torchrun sets it); "
                                "unset it to train in one process") from None
    if dist.is_available() and dist.is_initialized():
        return Ranks(dist.get_rank(), dist.get_world_size(), values["LOCAL_RANK"])
    ranks = Ranks(values["RANK"], values["WORLD_SIZE"], values["LOCAL_RANK"])
    if ranks.world_size < 1 or not 0 <= ranks.rank < ranks.world_size or ranks.local_rank < 0:
        raise PhenoseqError(f"RANK={ranks.rank}, WORLD_SIZE={ranks.world_size}, LOCAL_RANK={ranks.local_rank} do not "
                            "describe a process of a data-parallel run; launch with torchrun, or unset them")
    return ranks


@contextlib.contextmanager
def process_group(device: torch.device) -> Iterator[Ranks]:
    """Join torchrun's process group for the duration (gloo on the CPU, NCCL on CUDA) and yield this process's
    :class:`Ranks`. A group the caller set up already is used as it is and left open; without torchrun this
    yields ``Ranks()`` and does nothing."""
    ranks = current_ranks()
    if ranks.world_size > 1 and not dist.is_available():
        raise PhenoseqError("this PyTorch build has no torch.distributed; train in one process (without torchrun)")
    if ranks.world_size == 1 or dist.is_initialized():
        yield ranks
        return
    if device.type == "cuda":
        torch.cuda.set_device(ranks.device(device))
    # Rank 0 validates, checkpoints and ends the run alone while the others wait in a collective: allow it time.
    dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo", timeout=GROUP_TIMEOUT)
    try:
        yield ranks
    finally:
        dist.destroy_process_group()


def _comm_device() -> torch.device:
    """NCCL moves CUDA tensors only; gloo moves CPU tensors."""
    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")


def rank_generators(seed: int, epoch: int, rank: int) -> tuple[np.random.Generator, torch.Generator]:
    """Rank ``rank``'s own generators in ``epoch`` (for its contexts and noise), independent across ranks."""
    sequence = np.random.SeedSequence([seed, epoch, 1 + rank])
    return np.random.default_rng(sequence), torch.Generator().manual_seed(int(sequence.generate_state(1)[0]))
