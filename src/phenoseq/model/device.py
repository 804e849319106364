"""Where the network runs (``cpu``, ``cuda``/``cuda:N`` or ``auto``) and the matching mixed precision
(``auto``: bf16 only where the hardware makes it faster than fp32).

Random numbers are always drawn on the CPU from seeded generators and then moved, so a seed gives the same
noise on every device; results on one device are reproducible run to run (CUDA kernels and bf16 make them
differ slightly from the CPU's).
"""

from __future__ import annotations

import contextlib

import torch

from phenoseq.errors import PhenoseqError

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """``"auto"``: the first CUDA GPU when there is one, else the CPU; ``"cuda:N"`` picks a GPU."""
    if isinstance(name, torch.device):
        return name
    kind = str(name).split(":")[0]
    if kind not in DEVICES:
        raise PhenoseqError(f"unknown device {name!r}; choose one of {list(DEVICES)} (or cuda:N)")
    if kind == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise PhenoseqError(f"device {name!r}: this PyTorch ({torch.__version__}) sees no CUDA GPU; use "
                                "--device cpu (or auto), or install a CUDA build of PyTorch on a GPU machine")
        index = torch.device(name).index or 0
        if index >= torch.cuda.device_count():
            raise PhenoseqError(f"device {name!r}: there are {torch.cuda.device_count()} CUDA GPU(s)")
    return torch.device(name)


def bf16_is_faster(device: torch.device | str = "cpu") -> bool:
    """Whether bf16 matmuls run faster than fp32 on ``device``: a CUDA GPU with bf16 support, or a CPU with AMX
    tiles. AVX512-BF16 alone is not enough: on such a CPU (Xeon, no AMX, PyTorch 2.13) bf16 matmuls ran at
    about half the fp32 rate and training at 0.65× (``benchmarks/bench_speed.py --precision``); without either,
    bf16 is emulated and training ran 11–17× slower."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type != "cpu":
        return False
    probe = getattr(torch.cpu, "_is_amx_tile_supported", None)
    return probe is not None and bool(probe())


def resolve_precision(precision: str, device: torch.device | str = "cpu") -> str:
    """``"bf16"`` or ``"fp32"``: ``"auto"`` becomes bf16 only where :func:`bf16_is_faster` holds."""
    if precision == "auto":
        return "bf16" if bf16_is_faster(device) else "fp32"
    return precision


def autocast(precision: str, device: torch.device | str = "cpu"):
    """bf16 autocast on the network's device when ``precision`` resolves to bf16; nothing for fp32."""
    if resolve_precision(precision, device) == "bf16":
        return torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
