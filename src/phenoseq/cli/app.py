"""The typer application and the error handling shared by every command."""

from __future__ import annotations

import signal
import sys

import typer
from rich.markup import escape

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


def run(*args) -> int:
    """Run the command line in-process, e.g. ``run("info", "imaging.h5ad")``; return the exit status.

    Usage errors give 2 (click's handling); a :class:`PhenoseqError` prints one clear message and gives 2;
    anything else is a bug and keeps its traceback.
    """
    try:
        app(args=[str(a) for a in args])
    except PhenoseqError as exc:
        from phenoseq.console import err_console

        # escape: messages quote user text and install hints ("phenoseq[features]") that rich would take as markup
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
        return 2
    except SystemExit as exc:  # click always ends this way in standalone mode
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0


def _terminate(signum, frame) -> None:
    # SIGTERM (a scheduler's kill, a closed terminal) unwinds like Ctrl-C, so that half-written temporary
    # files are removed by the writers' cleanup instead of being left behind.
    raise SystemExit(128 + signum)


def main() -> None:
    """The ``phenoseq`` entry point."""
    signal.signal(signal.SIGTERM, _terminate)
    sys.exit(run(*sys.argv[1:]))
