"""The command line's surface: every command group module is registered, in --help order (a module
left out of xdetox.cli.COMMAND_MODULES would silently drop its commands). New commands may be
added anywhere; these must stay, in this order."""

from __future__ import annotations

import typer

from xdetox.cli import app

TOP = ["validate", "schema", "plan", "run", "step", "status", "report", "compare", "metrics", "argo", "scores",
       "scorer"]
GROUPS = {
    "argo": ["render", "render-goldens", "publish", "submit", "status", "logs", "record-outcome", "check-nightly",
             "make-reference", "render-check", "submit-check"],
    "scores": ["export", "import"],
    "scorer": ["check"],
}


def _in_order(have: list[str], want: list[str]) -> bool:
    return [c for c in have if c in want] == want


def test_top_level_commands_in_help_order() -> None:
    have = list(typer.main.get_command(app).commands)  # type: ignore[attr-defined]
    assert _in_order(have, TOP), have


def test_sub_command_groups() -> None:
    cli = typer.main.get_command(app)
    for name, want in GROUPS.items():
        have = list(cli.commands[name].commands)  # type: ignore[attr-defined]
        assert _in_order(have, want), (name, have)
