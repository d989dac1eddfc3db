"""The ``xdetox`` Typer application and its global options; commands add themselves to ``app``
from their group's module (``xdetox.cli.main`` imports them all, in ``--help`` order)."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from xdetox.cli.errors import DEBUG_ENV, ErrorGroup, set_verbose

app = typer.Typer(
    name="xdetox",
    help="Cross-lingual LLM detoxification experiments: train in one language, measure in many.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=ErrorGroup,
)


@app.callback()
def _global_options(
    verbose: Annotated[bool, typer.Option(
        "--verbose", "-v",
        help=f"show tracebacks of errors and third-party logs, warnings and progress bars (or {DEBUG_ENV}=1)")]
    = False,
) -> None:
    """Library output and error detail follow the CLI's verbosity (set before any command imports
    the libraries)."""
    from xdetox.cli.library_output import configure_library_output

    verbose = verbose or bool(os.environ.get(DEBUG_ENV))
    set_verbose(verbose)
    configure_library_output(verbose)
