"""The build_model step: build a builtin model offline and publish it under models/<key>/.

params: {"source": "builtin:tiny", "seed": int}.
"""

from __future__ import annotations

from typing import Any

from xdetox.steps.context import StepContext

BUILDERS = {"builtin:tiny"}


def run(ctx: StepContext) -> dict[str, Any]:
    source = ctx.params["source"]
    if source not in BUILDERS:
        raise ValueError(f"params.source: unknown builtin model {source!r}; available: {', '.join(sorted(BUILDERS))}")
    from xdetox.models.tiny import build_tiny_model

    folder = ctx.scratch / "model"
    info = build_tiny_model(folder, seed=int(ctx.params.get("seed", 1234)))
    ctx.log(f"built {source}: {info['parameters']} parameters, loss {info['first_loss']} -> {info['final_loss']} "
            f"in {info['seconds']} s")
    ctx.put_dir("", folder)
    return info
