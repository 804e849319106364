"""Simulated 5-channel Cell Painting fields whose cell appearance follows the simulator's latent state.

For every well of :func:`phenoseq.simulate.simulate_screen` (same treatments, replicates, rounds, the same
treatment effects and experimental-round shifts), each field draws its own cells with the screen's story,
``z = h + r · e_t + w_well + b_batch``, and renders them. Only the first ``visible_dims`` coordinates of
``z`` reach the pixels, through a fixed random linear map to ten appearance parameters (squashed by tanh):

====  =============================================  ======================================
 a0   nucleus radius                                 DNA area, all nuclear shape features
 a1   nucleus elongation                             eccentricity, axis lengths
 a2   DNA brightness                                 DNA intensity
 a3   chromatin texture amplitude                    DNA texture / std
 a4   cell-to-nucleus size ratio                     cell and cytoplasm area
 a5   ER brightness (perinuclear gradient)           ER intensity, radial distribution
 a6   RNA brightness and nucleoli                    RNA intensity and texture
 a7   AGP brightness (cortical rim)                  AGP intensity, radial distribution
 a8   mitochondria brightness / number              Mito intensity, texture
 a9   mitochondria spread (perinuclear ↔ dispersed)  Mito radial distribution
====  =============================================  ======================================

so morphology carries the treatment signal of the morphology-visible MoA groups and not of the others.
Fields are Y × X uint16 with an uneven illumination, a camera offset and shot noise, so the featurizer's
background correction has something to do. The pixels are random draws: they are not the cells of the
screen's ``imaging.h5ad`` but cells from the same well distributions.
"""

from __future__ import annotations

import os
import string
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage as ndi

from phenoseq import progress as _progress
from phenoseq.io.keys import ScreenKeys
from phenoseq.simulate.screen import SimulationConfig, _World

CHANNELS = ("DNA", "ER", "RNA", "AGP", "Mito")
N_APPEARANCE = 10


def well_name(index: int) -> str:
    """Plate position of the ``index``-th well, filling a 384-well layout row by row (A01..A24, B01, ...;
    rows after P continue as Q, R, ... then AA, so any number of wells gets a unique name)."""
    row, col = divmod(index, 24)
    letters = string.ascii_uppercase
    name = letters[row] if row < 26 else letters[row // 26 - 1] + letters[row % 26]
    return f"{name}{col + 1:02d}"


def _appearance(zv: np.ndarray, mix: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Per-cell rendering parameters from visible latents ``zv`` (n × v). A little cell-level noise keeps
    cells of one latent state from being pixel-identical."""
    a = np.tanh(0.8 * zv @ mix + rng.normal(scale=0.15, size=(len(zv), N_APPEARANCE)))
    u = (a + 1) / 2  # 0..1
    return {
        "nuc_r": 6.5 * np.exp(0.2 * a[:, 0]),
        "aspect": 1.05 + 0.45 * u[:, 1],
        "dna": np.exp(0.45 * a[:, 2]),
        "dna_tex": 0.1 + 0.35 * u[:, 3],
        "cell_ratio": 2.1 * np.exp(0.18 * a[:, 4]),
        "er": np.exp(0.5 * a[:, 5]),
        "rna": np.exp(0.5 * a[:, 6]),
        "agp": np.exp(0.5 * a[:, 7]),
        "mito": np.exp(0.5 * a[:, 8]),
        "mito_spread": 0.25 + 0.5 * u[:, 9],
    }


def _place(radii: np.ndarray, size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Centres (k × 2, y/x) of the cells that fit without much overlap, and their indices."""
    centres, kept = [], []
    for i, r in enumerate(radii):
        margin = 0.5 * r
        for _ in range(40):
            c = rng.uniform(margin, size - margin, size=2)
            if all(np.hypot(*(c - centres[j])) > 0.9 * (r + radii[kept[j]]) for j in range(len(centres))):
                centres.append(c)
                kept.append(i)
                break
    return np.array(centres).reshape(-1, 2), np.array(kept, dtype=int)


def render_field(app: dict[str, np.ndarray], size: int, rng: np.random.Generator) -> np.ndarray:
    """Render cells with appearance ``app`` (arrays of length n) into a C × size × size uint16 stack
    (channels :data:`CHANNELS`). Cells that do not fit are left out."""
    radii = app["nuc_r"] * app["cell_ratio"]
    centres, kept = _place(radii, size, rng)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    img = np.zeros((len(CHANNELS), size, size), np.float32)
    if len(kept) == 0:
        return img.astype(np.uint16)
    # Cells: each pixel belongs to the cell whose (wobbly) boundary it is deepest inside. Work on each
    # cell's bounding box only: the full-field arrays per cell were most of the rendering time.
    norm = np.full((size, size), np.inf, np.float32)
    owner = np.full((size, size), -1, np.int32)
    boxes = []
    for k, (i, (cy, cx)) in enumerate(zip(kept, centres)):
        reach = 1.25 * radii[i]
        box = (
            slice(max(0, int(cy - reach)), min(size, int(cy + reach) + 2)),
            slice(max(0, int(cx - reach)), min(size, int(cx + reach) + 2)),
        )
        boxes.append(box)
        by, bx = yy[box], xx[box]
        theta = np.arctan2(by - cy, bx - cx)
        phase3, phase5 = rng.uniform(0, 2 * np.pi, size=2)
        wobble = 1 + 0.12 * np.sin(3 * theta + phase3) + 0.08 * np.sin(5 * theta + phase5)
        d = np.hypot(by - cy, bx - cx) / (radii[i] * wobble)
        better = (d < norm[box]) & (d < 1)
        norm[box][better], owner[box][better] = d[better], k
    cell = owner >= 0
    # Texture fields shared by the field's cells (cheaper than one per cell, same statistics).
    tex = {c: ndi.gaussian_filter(rng.normal(size=(size, size)).astype(np.float32), 1.2) for c in ("DNA", "RNA", "AGP")}
    tex = {c: t / (t.std() + 1e-6) for c, t in tex.items()}
    nucleus = np.zeros((size, size), bool)
    spots = np.zeros((2, size, size), np.float32)  # impulses for nucleoli (RNA) and mitochondria
    dna, er, rna, agp = (np.zeros((size, size), np.float32) for _ in range(4))
    for k, (i, (cy, cx)) in enumerate(zip(kept, centres)):
        box = boxes[k]
        oy, ox = box[0].start, box[1].start
        mine = owner[box] == k
        nrm = norm[box]
        ang = rng.uniform(0, np.pi)
        a_ax, b_ax = app["nuc_r"][i] * np.sqrt(app["aspect"][i]), app["nuc_r"][i] / np.sqrt(app["aspect"][i])
        ny, nx = cy + rng.normal(scale=1.0), cx + rng.normal(scale=1.0)
        u = (xx[box] - nx) * np.cos(ang) + (yy[box] - ny) * np.sin(ang)
        v = -(xx[box] - nx) * np.sin(ang) + (yy[box] - ny) * np.cos(ang)
        nuc = mine & ((u / a_ax) ** 2 + (v / b_ax) ** 2 <= 1)
        nucleus[box] |= nuc
        cyto = mine & ~nuc
        t_dna, t_rna, t_agp = tex["DNA"][box], tex["RNA"][box], tex["AGP"][box]
        dna[box][nuc] = app["dna"][i] * np.clip(1 + app["dna_tex"][i] * t_dna[nuc], 0.2, None)
        er[box][cyto] = app["er"][i] * (1.1 - 0.8 * nrm[cyto])
        er[box][nuc] = 0.15 * app["er"][i]
        rna[box][cyto] = 0.5 * app["rna"][i] * np.clip(1 + 0.3 * t_rna[cyto], 0.2, None)
        agp[box][mine] = app["agp"][i] * (0.35 + 0.65 * nrm[mine] ** 3) * np.clip(1 + 0.25 * t_agp[mine], 0.2, None)
        # Nucleoli: 1–3 bright RNA spots inside the nucleus.
        py, px = np.nonzero(nuc)
        if len(py):
            pick = rng.integers(0, len(py), size=int(rng.integers(1, 4)))
            np.add.at(spots[0], (py[pick] + oy, px[pick] + ox), 6.0 * app["rna"][i])
        # Mitochondria: puncta in the cytoplasm, concentrated near the nucleus when the spread is small.
        py, px = np.nonzero(cyto)
        if len(py):
            weight = np.exp(-nrm[py, px] / app["mito_spread"][i])
            n_spots = int(rng.poisson(25 * app["mito"][i]))
            pick = rng.choice(len(py), size=n_spots, p=weight / weight.sum())
            np.add.at(spots[1], (py[pick] + oy, px[pick] + ox), 3.0)
    rna += ndi.gaussian_filter(spots[0], 1.0)
    mito = ndi.gaussian_filter(spots[1], 1.0) + 0.15 * np.where(cell & ~nucleus, 1.0, 0.0)
    for c, chan in enumerate((dna, er, rna, agp, mito)):
        img[c] = ndi.gaussian_filter(chan, 0.8)  # optics: no edge is perfectly sharp
    # Uneven illumination (brighter centre, random tilt), camera offset, shot and read noise.
    oy, ox = rng.uniform(0.3, 0.7, size=2) * size
    illum = 1 - 0.3 * ((yy - oy) ** 2 + (xx - ox) ** 2) / size**2 + 0.1 * (xx / size - 0.5) * rng.normal()
    counts = img * illum[None] * 8000.0 + 200.0
    counts = rng.poisson(np.clip(counts, 0, None)).astype(np.float32) + rng.normal(scale=10.0, size=counts.shape)
    return np.clip(counts, 0, 65535).astype(np.uint16)


def _round(rep: int) -> str:
    # simulate_screen's layout: replicates 1 and 2 are the second experimental round.
    return "round2" if rep in (1, 2) else "round1"


def _wells(config: SimulationConfig, world: _World, keys: ScreenKeys) -> list[dict]:
    """One record per well, in simulate_screen's order: replicate-major, then treatment."""
    rows = []
    for rep in range(1, config.n_replicates + 1):
        batch = _round(rep)
        for t_idx, (treatment, row) in enumerate(world.treatments.iterrows()):
            rows.append(
                {
                    "well": well_name(len(rows)),
                    keys.sample: f"R{rep}-{treatment}",
                    keys.treatment: treatment,
                    keys.replicate: str(rep),
                    keys.batch: batch,
                    keys.group: "control" if treatment == "DMSO" else "treated",
                    "MoA": row["MoA"],
                    "_t_idx": t_idx,
                }
            )
    return rows


def write_image_fields(
    config: SimulationConfig | None,
    out_dir: str | os.PathLike,
    progress: _progress.Progress | None = None,
    fields_per_well: int = 1,
    size: int = 256,
    cells_per_field: tuple[int, int] = (15, 30),
    keys: ScreenKeys | None = None,
) -> Path:
    """Render ``fields_per_well`` fields per well of the simulated screen into ``out_dir``.

    Writes ``{well}_s{site}.tif`` (uint16 C × Y × X, channels DNA, ER, RNA, AGP, Mito, named in the file's
    metadata) for sites 1..fields_per_well, and ``platemap.csv`` (columns ``well`` and the ``keys`` columns
    plus ``MoA``). Deterministic given ``config.seed``. Returns ``out_dir``. Featurize with
    ``phenoseq featurize OUT_DIR --platemap OUT_DIR/platemap.csv --out FILE.h5ad``.
    """
    import tifffile

    from phenoseq.io.files import atomic_path

    c = config or SimulationConfig()
    k = keys or ScreenKeys()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    # The world and round shifts are drawn exactly as simulate_screen draws them (same seed, same order),
    # so the wells share the screen's treatment effects; cells come from an independent stream.
    rng = np.random.default_rng(c.seed)
    world = _World(c, rng)
    rounds = sorted({_round(rep) for rep in range(1, c.n_replicates + 1)})
    batch_latent = {b: rng.normal(scale=c.batch_sd, size=c.latent_dim) for b in rounds}
    cells_rng = np.random.default_rng([c.seed, 0x1A6E])
    mix = cells_rng.normal(size=(c.visible_dims, N_APPEARANCE)) / np.sqrt(c.visible_dims)
    wells = _wells(c, world, k)
    for rec in _progress.get(progress).track(wells, "rendering image fields"):
        t_idx = rec["_t_idx"]
        well_shift = cells_rng.normal(scale=c.well_sd, size=c.latent_dim) + batch_latent[rec[k.batch]]
        for site in range(1, fields_per_well + 1):
            n = int(cells_rng.integers(cells_per_field[0], cells_per_field[1] + 1))
            responds = cells_rng.random(n) < world.responder[t_idx]
            r = np.where(responds, cells_rng.gamma(8.0, 1 / 8.0, n), cells_rng.uniform(0.0, 0.15, n))
            z = cells_rng.normal(size=(n, c.latent_dim)) + r[:, None] * world.effects[t_idx] + well_shift
            stack = render_field(_appearance(z[:, : c.visible_dims], mix, cells_rng), size, cells_rng)
            with atomic_path(out / f"{rec['well']}_s{site}.tif") as tmp:
                tifffile.imwrite(tmp, stack, metadata={"axes": "CYX", "channels": list(CHANNELS)})
    table = pd.DataFrame([{key: v for key, v in rec.items() if key != "_t_idx"} for rec in wells])
    with atomic_path(out / "platemap.csv") as tmp:
        table.to_csv(tmp, index=False)
    return out
