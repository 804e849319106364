"""Results of the three kinds the report draws: single-cell seen wells, single-cell unseen compounds, bulk.

A tiny screen (9 treatments) and small settings keep them fast (about a second each); the report does not
care how good the figures are.
"""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def config():
    from phenoseq.evaluate import BenchmarkConfig

    return BenchmarkConfig(n_boot=50, max_cells_per_well=10, sets_per_well=3, cells_per_set=5, pooled_context=16,
                           fidelity_cells=10, embedding_cells=5, cells_per_well=10, max_iter=50)


def _space(screen, **kwargs):
    from phenoseq.rna.space import RNASpace

    return RNASpace.fit(screen.subset("rnaseq", screen.wells_in("train")), n_latent=16, **kwargs)


def _baselines(screen, space, control: bool = False):
    """Ridge and its shuffled-imaging control, and the control baseline if asked (the evaluation adds the
    training mean): few methods keep the tests fast."""
    from phenoseq.generate.baselines import ControlBaseline, RidgeBaseline, ShuffledImaging

    ridge = RidgeBaseline(screen, space)
    out = {"control": ControlBaseline(screen, space)} if control else {}
    return out | {"ridge": ridge, "shuffled_ridge": ShuffledImaging(ridge, sample_key=screen.keys.sample)}


@pytest.fixture(scope="module")
def screen_data():
    """(imaging, rnaseq) of a tiny simulated screen: DMSO and 8 compounds in 3 MoA groups. Read-only."""
    from phenoseq.simulate import SimulationConfig, simulate_screen

    groups = [["HDAC inhibitor", 3, True], ["MEK inhibitor", 3, True], ["BET inhibitor", 2, False]]
    return simulate_screen(SimulationConfig(imaging_cells_per_well=30, rna_cells_per_well=20, n_genes=200,
                                            n_features=40, moa_groups=groups, seed=1))


@pytest.fixture(scope="module")
def screen(screen_data):
    from phenoseq.io import PairedScreen

    imaging, rnaseq = screen_data
    return PairedScreen(imaging.copy(), rnaseq.copy())


@pytest.fixture(scope="module")
def seen(screen, config):
    """Single-cell, held-out wells of seen treatments (the WE split only, for speed): identification, fidelity,
    embedding, arrays."""
    from dataclasses import replace

    from phenoseq.evaluate import evaluate

    space = _space(screen)
    return evaluate(screen, space, _baselines(screen, space), config=replace(config, test_splits=("test",)),
                    moa_key="MoA")


@pytest.fixture(scope="module")
def unseen(screen, config):
    """Single-cell, unseen compounds (2-fold compound hold-out): well-level figures and fidelity only."""
    from phenoseq.evaluate import evaluate_unseen

    return evaluate_unseen(screen, lambda held: _baselines(held, _space(held), control=True), n_folds=2,
                           config=config, moa_key="MoA")


@pytest.fixture(scope="module")
def bulk(screen_data, config):
    """Bulk: one expression profile per well (every standard baseline); well-level figures and scaled scores."""
    from phenoseq.evaluate import evaluate
    from phenoseq.generate.baselines import standard_baselines
    from phenoseq.io import PairedScreen
    from phenoseq.io.readers import aggregate_wells
    from phenoseq.rna import log_normalise

    imaging, rnaseq = screen_data
    rna = rnaseq.copy()
    rna.X = log_normalise(rna.X)
    screen = PairedScreen(aggregate_wells(imaging), aggregate_wells(rna), rna_kind="expression")
    space = _space(screen, kind="expression")
    return evaluate(screen, space, standard_baselines(screen, space), config=config)
