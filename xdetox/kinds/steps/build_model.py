"""Step kind ``build_model``: Materialise a model source (builtin:tiny, hub id, path, s3://) into the store once, so every later step reads the same weights.

Planned per model whose source is ``builtin:``: the base arm then reads the built weights.
Implementation: xdetox.steps.build_model.run.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from xdetox.kinds.steps import register
from xdetox.kinds.steps.base import StepKind
from xdetox.kinds.steps.planning import ModelScope


class BuildModelParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    source: str  # builtin:<name>
    seed: int  # the builtin model's training seed


def plan(scope: ModelScope) -> None:
    m, s = scope.model, scope.spec
    if m.source.startswith("builtin:"):
        key = scope.add("build_model", f"build {m.source} ({m.id})", {"source": m.source, "seed": s.seed})
        scope.base.inputs = {"model": [key]}


KIND = register(StepKind(
    name="build_model", run="xdetox.steps.build_model:run", image="train", resources="build_model",
    gpu_role="train", scope="model", plan=plan, output_dir="models", params_model=BuildModelParams,
))
