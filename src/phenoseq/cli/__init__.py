"""The ``phenoseq`` command line: a thin layer over the Python API (one module per command group)."""

from phenoseq.cli.app import app, main, run

__all__ = ["app", "main", "run"]
