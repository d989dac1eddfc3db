"""``xdetox argo …``: render, check and submit experiments to Argo Workflows; nightly checks.

Importing this package adds the group and its commands to the CLI, in the order ``xdetox argo
--help`` lists them. Heavy imports (Hera, kubernetes) happen inside the commands, so ``xdetox
--help`` stays fast.
"""

import importlib

from xdetox.cli.argo.group import argo_app

for _module in ("xdetox.cli.argo.render", "xdetox.cli.argo.workflows", "xdetox.cli.argo.nightly",
                "xdetox.cli.argo.checks"):
    importlib.import_module(_module)

__all__ = ["argo_app"]
