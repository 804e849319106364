"""Simulated paired Cell Painting + scRNA-seq screens.

The generative story
--------------------
Every cell has a latent biological state ``z`` (``latent_dim`` numbers)::

    z = h + r · e_t + w_well + b_batch

* ``h ~ N(0, I)`` is baseline cell-to-cell heterogeneity (cell cycle, size, stress ...).
* ``e_t`` is the effect of treatment ``t`` (zero for DMSO). Compounds come in mechanism-of-action (MoA)
  groups: each group has a direction in latent space and each compound a potency and its own small
  deviation from the group direction, so compounds of one MoA look alike but not identical.
* ``r`` is the cell's response: a fraction of cells (the compound's responder rate) respond with
  ``r ~ Gamma`` around 1, the rest barely respond. Wells are therefore mixtures, not shifted blobs.
* ``w_well`` and ``b_batch`` are small well and experimental-round effects.

Morphology sees only **part** of the state: the first ``visible_dims`` coordinates go through a random
two-layer nonlinear map to ``n_features`` CellProfiler-like features, with a per-round technical offset and
measurement noise. Some MoA groups act only on the hidden coordinates, so those compounds are
transcriptionally active but morphologically silent.

Transcription sees all of ``z``: gene log-rates are ``mu_g + L_g · z`` with sparse loadings; counts are
negative binomial (gamma-Poisson) with gene-specific dispersion and a log-normal library size per cell.

The imaging and RNA cells of a well are **different** cells drawn from the same well distribution, as in
a real paired screen. Replicates 3, 4, 5 come from one experimental round and 1, 2 from a second one
(the scGeneScope layout: train 3, validate 5, test 4 "WE", test 1+2 "HE").
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from phenoseq.io.keys import ScreenKeys

MOA_GROUPS = [
    # (name, number of compounds, acts on morphology?)
    ("HDAC inhibitor", 4, True),
    ("tubulin destabiliser", 4, True),
    ("proteasome inhibitor", 4, True),
    ("MEK inhibitor", 4, True),
    ("glucocorticoid agonist", 4, False),
    ("BET inhibitor", 4, False),
    ("DNA intercalator", 3, True),
]


@dataclass
class SimulationConfig:
    """Sizes and effect strengths of a simulated screen. The defaults are calibrated (see
    ``benchmarks/bench_calibration.py``) so that single-cell treatment identification reaches about 0.2–0.35
    balanced accuracy from imaging alone and 0.4–0.55 from RNA, like the scGeneScope benchmark."""

    n_replicates: int = 5
    imaging_cells_per_well: int = 300
    rna_cells_per_well: int = 150
    n_genes: int = 2000
    n_features: int = 300
    latent_dim: int = 24
    visible_dims: int = 12
    effect_size: float = 4.5
    responder_rate: tuple[float, float] = (0.55, 0.95)
    well_sd: float = 0.15
    batch_sd: float = 0.25
    morph_noise: float = 0.6
    morph_batch_sd: float = 0.3
    library_size: float = 2500.0
    seed: int = 0
    moa_groups: list = field(default_factory=lambda: [list(g) for g in MOA_GROUPS])

    def to_dict(self) -> dict:
        return asdict(self)


def treatment_table(config: SimulationConfig) -> pd.DataFrame:
    """Treatments with their MoA and whether they act on morphology. DMSO is the control."""
    rows = [("DMSO", "control", True)]
    for name, n, visible in config.moa_groups:
        prefix = "".join(w[0] for w in name.split()).upper()
        rows += [(f"{prefix}-{i + 1}", name, visible) for i in range(n)]
    return pd.DataFrame(rows, columns=["Treatment", "MoA", "morphology_visible"]).set_index("Treatment")


class _World:
    """The fixed parameters of one simulated biology: effects, gene loadings, morphology map."""

    def __init__(self, config: SimulationConfig, rng: np.random.Generator) -> None:
        c = config
        self.treatments = treatment_table(c)
        d, v = c.latent_dim, c.visible_dims
        effects = [np.zeros(d)]
        self.responder = [0.0]
        for _name, n, visible in c.moa_groups:
            direction = rng.normal(size=d)
            if not visible:
                direction[:v] = 0.0
            direction /= np.linalg.norm(direction)
            for _ in range(n):
                dev = rng.normal(size=d)
                if not visible:
                    dev[:v] = 0.0
                vec = direction + 0.45 * dev / np.linalg.norm(dev)
                potency = rng.uniform(0.6, 1.5)
                effects.append(c.effect_size * potency * vec / np.linalg.norm(vec))
                self.responder.append(rng.uniform(*c.responder_rate))
        self.effects = np.stack(effects)
        # Morphology: two-layer random map of the visible coordinates.
        self.w1 = rng.normal(size=(v, 64)) / np.sqrt(v)
        self.b1 = rng.normal(scale=0.3, size=64)
        self.w2 = rng.normal(size=(64, c.n_features)) / np.sqrt(64)
        self.w_lin = rng.normal(size=(v, c.n_features)) / np.sqrt(v)
        self.feature_scale = np.exp(rng.normal(0.0, 1.0, size=c.n_features))
        self.feature_offset = rng.normal(0.0, 2.0, size=c.n_features) * self.feature_scale
        # Transcription: sparse loadings, each gene driven by a few latent coordinates.
        mask = rng.random((c.n_genes, d)) < 0.15
        self.loadings = mask * rng.normal(0.0, 0.35, size=(c.n_genes, d))
        self.gene_mu = rng.normal(0.0, 1.3, size=c.n_genes)
        self.dispersion = np.exp(rng.normal(np.log(3.0), 0.6, size=c.n_genes))  # NB shape θ_g
        self.noise = c.morph_noise

    def morphology(self, z: np.ndarray, batch_offset: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        zv = z[:, : self.w1.shape[0]]
        signal = np.tanh(zv @ self.w1 + self.b1) @ self.w2 + 0.5 * zv @ self.w_lin
        noisy = signal + batch_offset + rng.normal(scale=self.noise, size=signal.shape)
        return (noisy * self.feature_scale + self.feature_offset).astype(np.float32)

    def counts(self, z: np.ndarray, library_size: float, rng: np.random.Generator) -> sp.csr_matrix:
        logits = self.gene_mu + z @ self.loadings.T
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        lib = library_size * np.exp(rng.normal(0.0, 0.35, size=(len(z), 1)))
        mean = p * lib
        lam = rng.gamma(self.dispersion, mean / self.dispersion)
        return sp.csr_matrix(rng.poisson(lam).astype(np.float32))


def simulate_screen(config: SimulationConfig | None = None, keys: ScreenKeys | None = None) -> tuple[ad.AnnData, ad.AnnData]:
    """Simulate a paired screen.

    Returns
    -------
    (imaging, rnaseq)
        ``imaging``: AnnData, cells × ``n_features`` float32 morphology features.
        ``rnaseq``: AnnData, cells × ``n_genes`` raw counts (CSR, float32 holding integers).
        Both carry ``obs`` columns for sample, treatment, replicate, batch and group (names from ``keys``)
        plus ``MoA``; ``uns["simulation"]`` records the config (the MoA groups as ``moa_visible``: MoA → whether it
        acts on morphology).
    """
    c = config or SimulationConfig()
    k = keys or ScreenKeys()
    rng = np.random.default_rng(c.seed)
    world = _World(c, rng)
    rounds = {r: ("round2" if r in (1, 2) else "round1") for r in range(1, c.n_replicates + 1)}
    batch_latent = {b: rng.normal(scale=c.batch_sd, size=c.latent_dim) for b in sorted(set(rounds.values()))}
    batch_morph = {b: rng.normal(scale=c.morph_batch_sd, size=c.n_features) for b in batch_latent}

    img_parts, rna_parts, img_obs, rna_obs = [], [], [], []
    for rep in range(1, c.n_replicates + 1):
        batch = rounds[rep]
        for t_idx, (treatment, row) in enumerate(world.treatments.iterrows()):
            sample = f"R{rep}-{treatment}"
            well_shift = rng.normal(scale=c.well_sd, size=c.latent_dim) + batch_latent[batch]
            meta = {
                k.sample: sample,
                k.treatment: treatment,
                k.replicate: str(rep),
                k.batch: batch,
                k.group: "control" if treatment == "DMSO" else "treated",
                "MoA": row["MoA"],
            }
            for modality, n in (("img", c.imaging_cells_per_well), ("rna", c.rna_cells_per_well)):
                n_cells = max(2, int(round(n * rng.uniform(0.8, 1.2))))
                responds = rng.random(n_cells) < world.responder[t_idx]
                r = np.where(responds, rng.gamma(8.0, 1 / 8.0, n_cells), rng.uniform(0.0, 0.15, n_cells))
                z = rng.normal(size=(n_cells, c.latent_dim)) + r[:, None] * world.effects[t_idx] + well_shift
                ids = [f"{modality}-{sample}-{i:04d}" for i in range(n_cells)]
                if modality == "img":
                    img_parts.append(world.morphology(z, batch_morph[batch], rng))
                    img_obs.append(pd.DataFrame([meta] * n_cells, index=ids))
                else:
                    rna_parts.append(world.counts(z, c.library_size, rng))
                    rna_obs.append(pd.DataFrame([meta] * n_cells, index=ids))

    imaging = ad.AnnData(
        X=np.concatenate(img_parts),
        obs=_categorical(pd.concat(img_obs)),
        var=pd.DataFrame(index=_feature_names(c.n_features)),
    )
    rnaseq = ad.AnnData(
        X=sp.vstack(rna_parts).tocsr(),
        obs=_categorical(pd.concat(rna_obs)),
        var=pd.DataFrame(index=[f"GENE{g:05d}" for g in range(c.n_genes)]),
    )
    settings = {k2: list(v) if isinstance(v, tuple) else v for k2, v in c.to_dict().items() if k2 != "moa_groups"}
    # The groups as {MoA: morphology visible}: h5ad cannot store the mixed [name, n, flag] lists.
    settings["moa_visible"] = {str(name): bool(visible) for name, _n, visible in c.moa_groups}
    for adata, modality in ((imaging, "imaging"), (rnaseq, "rnaseq")):
        adata.uns["simulation"] = {"modality": modality, **settings}
    return imaging, rnaseq


def _categorical(obs: pd.DataFrame) -> pd.DataFrame:
    return obs.astype("category")


def _feature_names(n: int) -> list[str]:
    # CellProfiler-style names make the simulated table look like what users hold.
    compartments = ["Cells", "Cytoplasm", "Nuclei"]
    kinds = ["AreaShape", "Intensity", "Texture", "RadialDistribution", "Granularity"]
    channels = ["DNA", "ER", "RNA", "AGP", "Mito"]
    return [
        f"{compartments[i % 3]}_{kinds[(i // 3) % 5]}_{channels[(i // 15) % 5]}_{i:03d}" for i in range(n)
    ]
