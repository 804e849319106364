"""Shared fixtures: small simulated screens and the real public data in ../shared (skipped when absent)."""

from __future__ import annotations

from pathlib import Path

import pytest

REAL_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"


@pytest.fixture(scope="session")
def real_data() -> Path:
    """``../shared/data/real`` beside the repository; tests using it skip when it is not there."""
    if not REAL_DATA.is_dir():
        pytest.skip(f"real public data not found at {REAL_DATA} (the shared/ folder is absent)")
    return REAL_DATA


@pytest.fixture(scope="session")
def small_config():
    """A small screen (all 28 treatments, few cells and genes) that simulates in about a second."""
    from phenoseq.simulate import SimulationConfig

    return SimulationConfig(imaging_cells_per_well=40, rna_cells_per_well=30, n_genes=300, n_features=60, seed=1)


@pytest.fixture(scope="session")
def small_screen_data(small_config):
    """(imaging, rnaseq) AnnData of the small screen. Treat as read-only; copy before changing."""
    from phenoseq.simulate import simulate_screen

    return simulate_screen(small_config)


@pytest.fixture
def small_screen(small_screen_data):
    """A validated :class:`~phenoseq.io.PairedScreen` over fresh copies of the small screen."""
    from phenoseq.io import PairedScreen

    imaging, rnaseq = small_screen_data
    return PairedScreen(imaging.copy(), rnaseq.copy())
