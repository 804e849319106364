"""The typer application and the error handling shared by every command."""

from __future__ import annotations

import sys

import typer

from phenoseq.cli import commands_data
from phenoseq.errors import PhenoseqError

app = typer.Typer(
    name="phenoseq",
    help="Generate single-cell transcriptomes from Cell Painting morphology.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

commands_data.register(app)


def _register_optional() -> None:
    # Command groups that live in later pipeline stages register themselves here when present.
    import importlib

    for name in ("commands_model", "commands_evaluate", "commands_inputs", "commands_featurize"):
        try:
            module = importlib.import_module(f"phenoseq.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"phenoseq.cli.{name}":
                raise
            continue
        module.register(app)


_register_optional()


def main() -> None:
    """Entry point: run the app; a :class:`PhenoseqError` becomes a one-paragraph message and exit 2."""
    try:
        app(standalone_mode=False)
    except PhenoseqError as exc:
        from phenoseq.cli.console import err_console

        err_console.print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(2)
    except (typer.Exit, SystemExit) as exc:
        code = getattr(exc, "exit_code", getattr(exc, "code", 0))
        sys.exit(code)
    except Exception as exc:  # click's usage errors arrive here in non-standalone mode
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        if isinstance(exc, click.exceptions.Abort):
            sys.exit(130)
        raise
