"""``python -m xdetox.cli.main``: the ``xdetox`` command (commands: ``xdetox.cli``)."""

from __future__ import annotations

from xdetox.cli import app

__all__ = ["app", "main"]


def main() -> None:
    app()


if __name__ == "__main__":
    main()
