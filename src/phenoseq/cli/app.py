"""The typer application and the error handling shared by every command."""

from __future__ import annotations

import sys

import typer

from phenoseq.cli import commands_data, commands_evaluate, commands_featurize, commands_inputs, commands_model
from phenoseq.errors import PhenoseqError

app = typer.Typer(
    name="phenoseq",
    help="Generate single-cell transcriptomes from Cell Painting morphology.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

for module in (commands_data, commands_inputs, commands_featurize, commands_model, commands_evaluate):
    module.register(app)


def main() -> None:
    """Entry point. Usage errors exit 2 (click's handling); a :class:`PhenoseqError` prints one clear
    message and exits 2; anything else is a bug and keeps its traceback."""
    try:
        app()
    except PhenoseqError as exc:
        from phenoseq.cli.console import err_console

        err_console.print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(2)
