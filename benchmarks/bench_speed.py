"""Training and generation throughput of a preset on the default simulated screen.

Prints RNA cells/s during training (optimiser steps only: after a warm-up epoch, without validation) and
synthetic cells/s for generation with the default sampler and with 50-step DDIM, for every well of the
screen, after the device's fp32 and bf16 matmul rates (a 2048 x 2048 product), which tell whether bf16 pays
there. Targets for the ``cpu`` preset on a 2-core CPU: training ≥ 5,000 RNA cells/s, generation ≥ 2,000 cells/s
with the default sampler. ``--device cuda`` measures a GPU (bf16 autocast on it).

Under torchrun the training is data-parallel (each process takes a share of every batch; the figure counts
every process's cells) and generation is skipped:

    python benchmarks/bench_speed.py [--preset cpu] [--epochs 5] [--cells-per-well 100] [--no-anchor] [--device auto] [--precision auto]
    torchrun --standalone --nproc_per_node 2 benchmarks/bench_speed.py [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import time

import torch


def matmul_rate(dtype: torch.dtype, device: torch.device, n: int = 2048, repeats: int = 5) -> float:
    """GFLOP/s of an ``n x n`` matrix product in ``dtype`` on ``device``: the best of five timed rounds after a
    warm-up round, so that a cold start or a busy moment does not count."""
    a, b = (torch.randn(n, n, device=device, dtype=dtype) for _ in range(2))
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    seconds = []
    for _round in range(6):
        sync()
        start = time.perf_counter()
        for _ in range(repeats):
            a @ b
        sync()
        seconds.append(time.perf_counter() - start)
    return 2 * n**3 * repeats / min(seconds[1:]) / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--cells-per-well", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-anchor", action="store_true", help="the diffusion model without the well-mean anchor")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto")
    parser.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp32"],
                        help="auto: bf16 where it is faster than fp32 (CUDA GPUs, CPUs with AMX)")
    args = parser.parse_args()

    from phenoseq import PhenoSeq
    from phenoseq.io import PairedScreen
    from phenoseq.model.device import resolve_device, resolve_precision
    from phenoseq.model.distributed import process_group
    from phenoseq.simulate import SimulationConfig, simulate_screen

    imaging, rnaseq = simulate_screen(SimulationConfig(seed=args.seed))
    screen = PairedScreen(imaging, rnaseq)
    model = PhenoSeq(screen, preset=args.preset, seed=args.seed, anchor=not args.no_anchor,
                     precision=args.precision)
    requested = resolve_device(args.device)
    with process_group(requested) as ranks:
        device = ranks.device(requested)
        model.trainer.to(device)
        wells = screen.wells_in("train") + screen.wells_in("val")
        well_imaging = model._imaging(screen.subset("imaging", wells))
        train = model._split(well_imaging, "train")
        n_params = sum(p.numel() for p in model.denoiser.parameters())
        say = print if ranks.is_main else (lambda *a: None)
        say(f"preset {args.preset}: {n_params / 1e6:.2f} M parameters, {len(train.latents)} training RNA cells, "
            f"{ranks.world_size} process(es) × {torch.get_num_threads()} threads, device {device}, "
            f"precision {resolve_precision(model.config.precision, device)} ({model.config.precision})")

        if ranks.is_main:  # the other processes would only compete with it for the cores
            print("matmul 2048²: " + ", ".join(f"{name} {matmul_rate(dtype, device):.0f} GFLOP/s"
                                               for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16))))
        model.trainer.run(well_imaging, train, None, max_epochs=1, ranks=ranks)  # warm-up
        start = time.perf_counter()
        model.trainer.run(well_imaging, train, None, max_epochs=1 + args.epochs, ranks=ranks)
        seconds = time.perf_counter() - start
        say(f"training:   {args.epochs * len(train.latents) / seconds:8.0f} RNA cells/s "
            f"({args.epochs} epochs in {seconds:.1f} s)")
    if ranks.world_size > 1:
        return

    k = args.cells_per_well
    for label, kwargs in (("default", {}), ("ddim-50", {"sampler": "ddim", "steps": 50})):
        model.generate(screen.imaging[:2000], cells_per_well=2, device=device, **kwargs)  # warm-up
        start = time.perf_counter()
        syn = model.generate(screen.imaging, cells_per_well=k, device=device, **kwargs)
        seconds = time.perf_counter() - start
        meta = syn.uns["phenoseq"]
        print(f"generation: {syn.n_obs / seconds:8.0f} synthetic cells/s with {meta['sampler']} {meta['steps']} steps "
              f"({label}; {syn.n_obs} cells for {screen.imaging.obs['Sample_ID'].nunique()} wells in {seconds:.1f} s)")


if __name__ == "__main__":
    main()
