"""Simulated paired screens for demos and tests (see :mod:`phenoseq.simulate.screen` for the story)."""

from phenoseq.simulate.screen import SimulationConfig, simulate_screen, treatment_table

__all__ = ["SimulationConfig", "simulate_screen", "treatment_table"]
