"""Fixtures for the benchmark tests: an RNA space on the small screen and known-answer generators."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="module")
def screen(small_screen_data):
    """The small screen, shared by a test module (read-only: tests that change data build their own)."""
    from phenoseq.io import PairedScreen

    imaging, rnaseq = small_screen_data
    return PairedScreen(imaging.copy(), rnaseq.copy())


@pytest.fixture(scope="module")
def space(screen):
    from phenoseq.rna.space import RNASpace

    return RNASpace.fit(screen.subset("rnaseq", screen.wells_in("train")), n_latent=20)


@pytest.fixture(scope="module")
def fast_config():
    from phenoseq.evaluate import BenchmarkConfig

    return BenchmarkConfig(n_boot=200, max_cells_per_well=40, sets_per_well=10, cells_per_set=5, fidelity_cells=30,
                           embedding_cells=10, cells_per_well=30, pooled_context=16)


class RealCells:
    """A known-answer generator: a well's synthetic cells are real RNA cells of ``source_of(well)``, resampled.

    Context sets (``"<well>::set<j>"``) get cells of their well's source, so the matched-context profiles work.
    """

    def __init__(self, screen, space, name: str, source_of=None):
        k = screen.keys
        rna = screen.rnaseq
        self.name, self.rna_space, self.keys = name, space, k
        self._latent = space.transform(rna)
        self._samples = rna.obs[k.sample].astype(str).to_numpy()
        self._source_of = source_of or (lambda w: w)
        self._screen = screen

    def generate(self, imaging, cells_per_well, seed=0, progress=None):
        from phenoseq.generate.output import SET_SEPARATOR, synthetic_adata, well_metadata
        from phenoseq.generate.seeds import well_rng

        ids = sorted(imaging.obs[self.keys.sample].astype(str).unique())
        latent, labels = [], []
        for sid in ids:
            pool = np.flatnonzero(self._samples == self._source_of(sid.split(SET_SEPARATOR)[0]))
            pick = well_rng(seed, sid, "oracle").choice(pool, size=cells_per_well, replace=len(pool) < cells_per_well)
            latent.append(self._latent[pick])
            labels += [sid] * cells_per_well
        return synthetic_adata(np.concatenate(latent), labels, well_metadata(imaging, self.keys), self.keys,
                               seeds=np.zeros(len(labels)), settings={"model": self.name},
                               decode=self.rna_space.decode, genes=self.rna_space.genes)


def real_as_synthetic(screen, space, source_of: dict[str, str], name: str):
    """Synthetic cells whose latent is the real RNA cells of ``source_of[well]`` (a known-answer generator)."""
    from phenoseq.generate.output import synthetic_adata, well_metadata

    k = screen.keys
    rna = screen.subset("rnaseq", sorted(set(source_of.values())))
    Z = space.transform(rna)
    samples = rna.obs[k.sample].astype(str).to_numpy()
    latent, labels = [], []
    for well, source in source_of.items():
        rows = Z[samples == source]
        latent.append(rows)
        labels += [well] * len(rows)
    return synthetic_adata(np.concatenate(latent), labels, well_metadata(screen.imaging, k), k,
                           seeds=np.zeros(len(labels)), settings={"model": name}, decode=space.decode,
                           genes=space.genes)


def evaluated_wells(screen) -> list[str]:
    return screen.wells_in("train") + screen.wells_in("test") + screen.wells_in("test_he")


@pytest.fixture(scope="module")
def oracle(screen, space):
    """Synthetic := the real RNA cells of the same well."""
    return real_as_synthetic(screen, space, {w: w for w in evaluated_wells(screen)}, "oracle")


@pytest.fixture(scope="module")
def wrong(screen, space):
    """Synthetic := the real RNA cells of a well of another treatment (same replicate), in every well.

    The wrong treatment differs between training and test wells: a consistent relabelling would still carry
    the treatment (a classifier trained on synthetic cells learns any fixed mapping).
    """
    k = screen.keys
    wells = screen.wells
    source = {}
    for w in evaluated_wells(screen):
        same_rep = wells.index[(wells[k.replicate] == wells.loc[w, k.replicate])].sort_values().tolist()
        offset = 7 if wells.loc[w, "split"] == "train" else 13
        source[w] = same_rep[(same_rep.index(w) + offset) % len(same_rep)]
    return real_as_synthetic(screen, space, source, "wrong")
