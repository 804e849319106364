"""The ``phenoseq`` command line: a thin layer over the Python API (one module per command group)."""

from phenoseq.cli.app import app, main

__all__ = ["app", "main"]
