"""The ``xdetox`` command line (Typer + Rich). Heavy libraries load lazily, per command.

Each command group's module adds its commands to ``xdetox.cli.app.app`` when imported; they are
imported here, in the order ``xdetox --help`` lists them. Exit codes and error handling:
``xdetox.cli.errors``.
"""

import importlib

COMMAND_MODULES = (
    "xdetox.cli.spec_cmds",  # validate, schema, plan
    "xdetox.cli.run_cmds",  # run
    "xdetox.cli.step_cmd",  # step
    "xdetox.cli.status_cmd",  # status
    "xdetox.cli.report_cmds",  # report, compare
    "xdetox.cli.metrics_cmds",  # metrics
    "xdetox.cli.argo",  # argo …
    "xdetox.cli.scores_cmds",  # scores …
    "xdetox.cli.scorer_cmds",  # scorer …
)
for _module in COMMAND_MODULES:
    importlib.import_module(_module)

from xdetox.cli.app import app  # noqa: E402 - after its commands are added

__all__ = ["COMMAND_MODULES", "app"]
