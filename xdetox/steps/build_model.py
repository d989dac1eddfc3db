"""The build_model step: build a builtin model offline and publish it under models/<key>/.

params: {"source": a builtin variant (xdetox.models.tiny.TINY_VARIANTS), "seed": int}.
"""

from __future__ import annotations

from typing import Any

from xdetox.steps.context import StepContext


def run(ctx: StepContext) -> dict[str, Any]:
    from xdetox.models.tiny import TINY_VARIANTS, build_digest, build_tiny_model, cached_build

    source = ctx.params["source"]
    if source not in TINY_VARIANTS:
        raise ValueError(f"params.source: unknown builtin model {source!r}; available: {', '.join(TINY_VARIANTS)}")
    seed = int(ctx.params.get("seed", 1234))
    if TINY_VARIANTS[source]["cached"]:
        folder, info = cached_build(source, seed)
        how = "read from the cache" if info["cached"] else f"built in {info['seconds']} s"
        ctx.log(f"{source}: {info['parameters']} parameters, loss {info['first_loss']} -> {info['final_loss']}, "
                f"{how}, digest {info['digest'][:12]}")
        ctx.put_dir("", folder)
        return info
    folder = ctx.scratch / "model"
    info = build_tiny_model(folder, seed=seed, source=source)
    info["digest"] = build_digest(folder)
    ctx.log(f"built {source}: {info['parameters']} parameters, loss {info['first_loss']} -> {info['final_loss']} "
            f"in {info['seconds']} s")
    ctx.put_dir("", folder)
    return info
