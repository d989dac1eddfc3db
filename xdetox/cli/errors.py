"""How every ``xdetox`` command ends when something goes wrong: exit codes, the two consoles, one
error line, and the traceback only when asked for (``xdetox -v`` or XDETOX_DEBUG=1).

Commands turn the errors they expect into ``raise fail(...)`` inside their ``except`` clause; the
command group (``ErrorGroup``) catches whatever a command did not, so that no error a user can
cause ends in a bare Python traceback. With ``-v`` both paths print the traceback of the exception
being handled before the error line (the exit code stays the same).
"""

from __future__ import annotations

import sys
import traceback
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from typer.core import TyperGroup

# re-exported: CLI modules import them from here (the retry expression reads them too)
from xdetox.exit_codes import EXIT_FAILED, EXIT_INVALID, EXIT_RETRIABLE

DEBUG_ENV = "XDETOX_DEBUG"  # the environment's -v, for pods whose command line is rendered

out = Console()
err = Console(stderr=True)

_verbose = False


def set_verbose(verbose: bool) -> None:
    """Set by the global ``-v`` option before any command runs."""
    global _verbose
    _verbose = verbose


def show_traceback() -> None:
    """With -v: the traceback of the exception being handled (none outside an ``except``)."""
    exc = sys.exc_info()[1]
    if _verbose and exc is not None:
        sys.stderr.write("".join(traceback.format_exception(exc)))
        sys.stderr.flush()


def fail(message: str, code: int = EXIT_INVALID) -> typer.Exit:
    """Print one error line (after the traceback, with -v) and return the Exit to raise."""
    show_traceback()
    err.print(f"[bold red]error:[/bold red] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def store_failed(e: BaseException) -> typer.Exit:
    """A store that failed after its own retries: one line naming the operation and object, exit 1."""
    return fail(f"store: {e}", EXIT_FAILED)


def retriable(e: BaseException) -> bool:
    """Transient: the network or a server, not the step's input or code (an error may say so itself).

    A StoreError is one the store could not get past with its own retries (an S3 outage, throttling):
    worth another pod later. A missing object (NotFoundError) is not: it will still be missing.
    """
    from xdetox.store import NotFoundError, StoreError

    if isinstance(e, NotFoundError):
        return False
    return bool(getattr(e, "retriable", False)) or isinstance(e, ConnectionError | TimeoutError | StoreError)


def step_exit_code(e: BaseException) -> int:
    """How a failed step ends: 2 for a committed step computed under another setting (the
    operator's to fix: threads, device, library versions), 75 for a transient failure, else 1."""
    from xdetox.steps.environment import EnvironmentMismatch

    if isinstance(e, EnvironmentMismatch):
        return EXIT_INVALID
    return EXIT_RETRIABLE if retriable(e) else EXIT_FAILED


def load_spec(spec_path: Path) -> Any:
    """The spec (its calibration maps pinned), or every problem named by file and field path and exit 2."""
    from xdetox.scoring.calibrated import pin_calibration
    from xdetox.spec import SpecError
    from xdetox.spec import load_spec as load

    try:
        return pin_calibration(load(spec_path), str(spec_path))  # a changed map is a new step key
    except SpecError as e:
        show_traceback()
        for p in e.problems:
            err.print(f"[red]✗[/red] {p.render(str(spec_path))}", highlight=False, soft_wrap=True)
        raise typer.Exit(EXIT_INVALID) from None


def open_store(uri: str, where: str) -> Any:
    """Open the store ``uri`` (named ``where`` in the message: an option or spec field), or exit 2."""
    from xdetox.store import open_store as open_uri

    try:
        return open_uri(uri)
    except ValueError as e:  # UnsafeKeyError is a ValueError too
        raise fail(f"{where}: {e}") from None


def open_spec_store(option: str | None, spec_store: str) -> Any:
    """The store a command names: ``--store``, else the spec's ``store`` field (named in the error)."""
    return open_store(option, "--store") if option else open_store(spec_store, "spec field 'store'")


def describe(e: BaseException) -> tuple[str, int]:
    """An exception no command caught, as (one line, exit code).

    Errors a user causes (bad spec, files, store URIs; a store that stays down) name what is wrong
    and exit 2 (1 for the store); anything else is a bug or an unforeseen case, reported as such.
    """
    from xdetox.records import RecordError
    from xdetox.spec import SpecError
    from xdetox.store import StoreError, UnsafeKeyError

    if isinstance(e, SpecError):
        return str(e), EXIT_INVALID
    if isinstance(e, StoreError):
        return f"store: {e}", EXIT_FAILED
    if isinstance(e, RecordError | UnsafeKeyError):
        return str(e), EXIT_INVALID
    if isinstance(e, UnicodeDecodeError):
        return f"not UTF-8 text: {e}", EXIT_INVALID
    if isinstance(e, OSError) and e.filename is not None:
        return f"{e.filename}: {e.strerror or e}", EXIT_INVALID
    hint = "" if _verbose else f" (run `xdetox -v …` or set {DEBUG_ENV}=1 for the traceback)"
    return f"unexpected {type(e).__name__}: {e}{hint}", EXIT_FAILED


class ErrorGroup(TyperGroup):
    """The CLI's command groups: an exception that escapes a command ends as one error line."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise  # typer.Exit from fail(), help, usage errors: already said
        except Exception as e:  # noqa: BLE001 - the last place to turn a traceback into one line
            message, code = describe(e)
            raise fail(message, code) from None

