"""Generation straight to disk, a chunk of wells at a time: memory independent of the number of wells,
resumable after a kill, and shardable across processes or machines.

``OUT.h5ad`` and its well-level file are assembled at the end from parts kept in ``OUT.h5ad.parts/``:

* ``plan.json``: what the run is (model, imaging file, generation settings, chunking). A resumed run or a
  shard must match it, or it is refused.
* ``cells-00012.h5ad`` and ``wells-00012.h5ad``: chunk 12's synthetic cells and well-level rows. Each part is
  written atomically, so a part that exists is complete.

Chunk ``k`` holds wells ``[k·W, (k+1)·W)`` of the imaging file's sorted sample ids. By default ``W`` is a
multiple of the wells the sampler puts in one network call, so every network batch is the one an in-memory
``model.generate`` runs, and the merged files equal ``model.generate`` + ``model.wells`` byte for byte. The
result never depends on how many shards made the parts (only on ``W``). Imaging is read from disk
(``backed``) one chunk of wells at a time.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import anndata as ad
import numpy as np

from phenoseq import progress as progress_mod
from phenoseq.errors import PhenoseqError
from phenoseq.generate.output import check_output_size
from phenoseq.generate.synthesize import SamplingSettings
from phenoseq.io.concat import concat_h5ad
from phenoseq.io.files import atomic_path, read_h5ad
from phenoseq.model.device import resolve_device
from phenoseq.model.distributed import current_ranks
from phenoseq.phenoseq import PhenoSeq

PLAN = "plan.json"
NETWORK_CALLS_PER_CHUNK = 4  # a chunk of ~16k cells: enough work per part, ~150 MB of output held at once


@dataclass(frozen=True)
class GenerationSettings:
    """What ``model.generate`` and ``model.wells`` are called with (``None``: the model's default)."""

    cells_per_well: int = 100
    seed: int = 0
    sampler: str | None = None
    steps: int | None = None
    guidance: float | None = None
    level: float = 0.9
    device: str = "auto"  # where the network runs; part of the plan, since devices differ in rounding


def parts_dir(out: str | Path) -> Path:
    """Where the parts of ``out`` are kept while it is being made."""
    out = Path(out)
    return out.with_name(out.name + ".parts")


def part_path(parts: Path, kind: str, k: int) -> Path:
    """Chunk ``k``'s ``"cells"`` or ``"wells"`` part."""
    return parts / f"{kind}-{k:05d}.h5ad"


def default_chunk_wells(cells_per_well: int) -> int:
    """Wells per chunk: whole network calls of the sampler (see the module docstring)."""
    return NETWORK_CALLS_PER_CHUNK * max(1, SamplingSettings.max_batch // max(1, cells_per_well))


@dataclass
class Run:
    """One streamed generation: the model, the imaging file (backed), its wells, the plan and the parts folder."""

    model: PhenoSeq
    imaging: ad.AnnData
    samples: np.ndarray  # (n_cells,) sample id of each imaging cell, as str
    wells: np.ndarray  # sorted unique sample ids
    plan: dict
    parts: Path
    device: str  # where this process's network runs (the plan keeps only its kind)

    @property
    def n_chunks(self) -> int:
        return self.plan["n_chunks"]

    def chunk_wells(self, k: int) -> np.ndarray:
        w = self.plan["chunk_wells"]
        return self.wells[k * w:(k + 1) * w]

    def part(self, kind: str, k: int) -> Path:
        return part_path(self.parts, kind, k)

    def output_bytes(self) -> int:
        """About how many bytes the synthetic cells take (dense genes + latents, float32)."""
        space = self.model.rna_space
        cells = self.plan["settings"]["cells_per_well"] * self.plan["imaging"]["wells"]
        return cells * (len(space.genes or ()) + space.n_latent) * 4

    def done(self, k: int) -> bool:
        return self.part("cells", k).exists() and self.part("wells", k).exists()


def shard_chunks(n_chunks: int, shard: tuple[int, int] | None) -> range:
    """Chunks of shard ``(i, n)`` (0-based ``i``): a contiguous range; every chunk when ``shard`` is None."""
    if shard is None:
        return range(n_chunks)
    i, n = shard
    return range(i * n_chunks // n, (i + 1) * n_chunks // n)


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """``"i/N"`` (1-based, as Slurm array indices are usually written) → ``(i - 1, N)``; ``"rank"``: this
    torchrun process's share, ``(RANK, WORLD_SIZE)``."""
    if text is None:
        return None
    if text == "rank":
        ranks = current_ranks()
        if ranks.world_size == 1:
            raise PhenoseqError("--shard rank takes the shard from torchrun's RANK and WORLD_SIZE, which are not set; "
                                "launch with torchrun --nproc_per_node N, or give the shard as i/N")
        return ranks.rank, ranks.world_size
    try:
        i, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise PhenoseqError(f"--shard {text!r}: expected i/N with whole numbers, e.g. 3/8") from None
    if not 1 <= i <= n:
        raise PhenoseqError(f"--shard {text}: i must be between 1 and N")
    return i - 1, n


def open_run(model_dir: Path, imaging_path: Path, out: Path, settings: GenerationSettings,
             chunk_wells: int | None = None) -> Run:
    """Load the model, read the imaging file's obs (X stays on disk), check the inputs, and make the plan.

    Every check that can fail on the inputs runs here, before any sampling: features present, a sample
    column, finite morphology (one pass over the features, block by block).
    """
    model = PhenoSeq.load(model_dir)
    model.check_generation(settings.cells_per_well, settings.sampler, settings.steps, settings.guidance)
    # Resolved here (an unusable device is refused before any work) and its kind kept in the plan: shards and
    # resumed runs must run on the kind of device the first did, since devices round differently. Each torchrun
    # process of a multi-GPU machine takes the GPU of its local rank.
    device = current_ranks().device(resolve_device(settings.device))
    settings = replace(settings, device=device.type)
    if not 0 < settings.level < 1:
        raise PhenoseqError(f"the interval level must be between 0 and 1 (e.g. 0.9), got {settings.level}")
    imaging = read_h5ad(imaging_path, backed=True)  # X stays on disk (a zarr store is read whole by read_h5ad)
    source = str(imaging_path)
    model.check_imaging(imaging, source)
    _check_finite(imaging, model.feature_names, source)
    samples = imaging.obs[model.keys.sample].astype(str).to_numpy()
    wells = np.unique(samples)
    w = chunk_wells or default_chunk_wells(settings.cells_per_well)
    if w < 1:
        raise PhenoseqError(f"--chunk-wells must be at least 1, got {w}")
    stat = imaging_path.stat()
    plan = {
        "format": "phenoseq-parts", "version": 1,
        "model": hashlib.sha256((model_dir / "model.json").read_bytes()).hexdigest(),
        "imaging": {"path": str(imaging_path.resolve()), "bytes": _size(imaging_path), "mtime_ns": stat.st_mtime_ns,
                    "cells": int(imaging.n_obs), "wells": len(wells)},
        "settings": asdict(settings), "chunk_wells": int(w), "n_chunks": -(-len(wells) // w),
        "out": out.name,
    }
    # Memory for one chunk and its copy on the way to disk: the most a streamed run holds at once.
    check_output_size(w * settings.cells_per_well * 2, len(model.rna_space.genes or ()), model.rna_space.n_latent)
    return Run(model, imaging, samples, wells, plan, parts_dir(out), str(device))


def prepare(run: Run, resume: bool, overwrite: bool) -> bool:
    """Create the parts folder with the plan, or check an existing one against this run's plan; return
    whether the folder is new.

    An existing folder is refused unless ``resume`` (continue it: its plan must match) or ``overwrite``
    (start again).
    """
    plan_path = run.parts / PLAN
    if run.parts.exists() and overwrite and not resume:
        shutil.rmtree(run.parts)
    if plan_path.exists():
        existing = json.loads(plan_path.read_text())
        if isinstance(existing.get("settings"), dict) and isinstance(existing["settings"].get("device"), str):
            # plans of phenoseq <= 0.1 kept the device with its index (cuda:1); only its kind must match
            existing["settings"]["device"] = existing["settings"]["device"].split(":")[0]
        differ = sorted(k for k in set(existing) | set(run.plan) if existing.get(k) != run.plan.get(k))
        if differ:
            raise PhenoseqError(f"{run.parts} belongs to another run (it differs in {', '.join(differ)}); finish it with "
                                "the same model, imaging file and settings, or pass --overwrite to start again")
        if not resume:
            raise PhenoseqError(f"{run.parts} holds an unfinished run of this generation; pass --resume to finish it "
                                "(or --overwrite to start again)")
        return False
    with atomic_path(plan_path) as tmp:
        tmp.write_text(json.dumps(run.plan, indent=1))
    return True


def generate_to_disk(run: Run, resume: bool = False, overwrite: bool = False, shard: tuple[int, int] | None = None,
                     progress: progress_mod.Progress | None = None) -> int:
    """:func:`prepare` then :func:`generate_parts`. A run that fails before its first part leaves no folder."""
    fresh = prepare(run, resume, overwrite)
    try:
        return generate_parts(run, shard, progress)
    except BaseException:
        if fresh and not any(run.parts.glob("cells-*.h5ad")):
            shutil.rmtree(run.parts, ignore_errors=True)
        raise


def generate_parts(run: Run, shard: tuple[int, int] | None = None,
                   progress: progress_mod.Progress | None = None) -> int:
    """Make the missing parts of this process's chunks; return how many were made."""
    s = GenerationSettings(**run.plan["settings"])
    chunks = [k for k in shard_chunks(run.n_chunks, shard) if not run.done(k)]
    device = resolve_device(run.device)
    wells_total = sum(len(run.chunk_wells(k)) for k in chunks)
    with progress_mod.get(progress).task("generating", total=wells_total) as bar:
        for k in chunks:
            names = run.chunk_wells(k)
            rows = np.flatnonzero(np.isin(run.samples, names))
            sub = run.imaging[rows].to_memory() if run.imaging.isbacked else run.imaging[rows].copy()
            syn = run.model.generate(sub, cells_per_well=s.cells_per_well, seed=s.seed, sampler=s.sampler,
                                     steps=s.steps, guidance=s.guidance, source=run.plan["imaging"]["path"],
                                     device=device)
            wells = run.model.wells(syn, level=s.level)
            with atomic_path(run.part("wells", k)) as tmp_wells:
                wells.write_h5ad(tmp_wells)
            with atomic_path(run.part("cells", k)) as tmp_cells:  # last: a chunk is done when its cells exist
                syn.write_h5ad(tmp_cells)
            bar.update(len(names))
    return len(chunks)


def merge_parts(parts: Path, out: Path, wells_out: Path, inputs: tuple = ()) -> tuple[int, int]:
    """Concatenate every chunk's parts into ``out`` and ``wells_out`` (both appear together), then remove the
    parts folder. Refused while any chunk is missing. Returns ``(cells, wells)`` written."""
    plan_path = parts / PLAN
    if not plan_path.exists():
        raise PhenoseqError(f"{parts}: no {PLAN}; nothing to merge (run phenoseq generate first)")
    plan = json.loads(plan_path.read_text())
    names = {kind: [part_path(parts, kind, k) for k in range(plan["n_chunks"])] for kind in ("cells", "wells")}
    missing = [k for k in range(plan["n_chunks"]) if not (names["cells"][k].exists() and names["wells"][k].exists())]
    if missing:
        raise PhenoseqError(f"{parts}: {len(missing)} of {plan['n_chunks']} chunks are not made yet (e.g. chunk "
                            f"{missing[0]}); run the remaining shards (or generate --resume) before merging")
    with atomic_path(out, inputs) as tmp_cells, atomic_path(wells_out, inputs) as tmp_wells:
        concat_h5ad(names["cells"], tmp_cells)
        concat_h5ad(names["wells"], tmp_wells)
    shutil.rmtree(parts)
    return int(plan["settings"]["cells_per_well"]) * plan["imaging"]["wells"], plan["imaging"]["wells"]


def _check_finite(imaging: ad.AnnData, features: list[str], source: str, rows: int = 65_536) -> None:
    cols = imaging.var_names.get_indexer(features)
    for start in range(0, imaging.n_obs, rows):
        block = imaging.X[start:start + rows]
        block = block.toarray() if hasattr(block, "toarray") else np.asarray(block)
        if not np.isfinite(block[:, cols]).all():
            raise PhenoseqError(f"{source}: morphology features contain NaN/inf (cells {start}–{start + len(block) - 1}); "
                                "clean them before generating")


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size
