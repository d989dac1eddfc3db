"""The ``xdetox`` command line (Typer + Rich). Heavy libraries load lazily, per command."""

from xdetox.cli.main import app

__all__ = ["app"]
