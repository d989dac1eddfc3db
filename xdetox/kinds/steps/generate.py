"""Step kind ``generate``: Sample continuations of one prompt set from one model arm, one shard of the prompts per step.

Planned per arm and prompt set, ``sharding.generate`` shards each (one Argo task per group). The
generation settings are the spec's with the model's own (``models[].generation``) over them.
Implementation: xdetox.steps.generate.run.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from xdetox.kinds.steps import register
from xdetox.kinds.steps.base import StepKind
from xdetox.kinds.steps.planning import ArmScope, GenerationGroup
from xdetox.kinds.steps.refs import ModelRef
from xdetox.manifest import Shard, digest
from xdetox.spec.models import GenerationSpec, PromptSet


class GenerateParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: ModelRef  # the arm generated from
    prompts: PromptSet
    generation: GenerationSpec  # its seed resolved


def plan(scope: ArmScope) -> None:
    s, m, arm = scope.spec, scope.model.model, scope.arm
    settings = s.generation_for(m)  # the spec's generation with this model's own settings over it
    gen = settings.model_dump(mode="json")
    gen["seed"] = settings.seed if settings.seed is not None else s.seed
    template = m.generation.template if m.generation is not None else None
    n = s.sharding.generate
    for ps in s.prompts:
        shown = ps if template is None else ps.model_copy(update={"template": template})
        params = {"model": arm.params, "prompts": shown.model_dump(mode="json"), "generation": gen}
        group = digest({"kind": "generate", "params": params, "inputs": arm.inputs})
        keys = [scope.add("generate", f"generate {m.id}/{arm.role} {ps.id} {i + 1}/{n}", params, arm.inputs,
                          Shard(index=i, count=n), output_prefix=f"generations/{group}") for i in range(n)]
        scope.generations.append(GenerationGroup(prompt_set=ps, group=group, keys=keys))


KIND = register(StepKind(
    name="generate", run="xdetox.steps.generate:run", image="generate", resources="generate",
    gpu_role="generate", sharded=True, shm=True,
    estimate="xdetox.plan.estimate:estimate_generate", scope="arm", plan=plan,
    shard_work="xdetox.plan.shards:generate_work", params_model=GenerateParams,
))
