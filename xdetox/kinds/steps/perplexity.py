"""Step kind ``perplexity``: Conditional perplexity of one generate shard's rows under a reference LM.

Implementation: xdetox.steps.perplexity.run. Its own step, not part of ``score``: a Perspective
score step is a CPU pod holding the namespace's one API permit, and a forward pass over a
reference model needs a GPU; in one pod the GPU would idle for days behind the API's quota (and
the permit would wait on GPU scheduling). Apart, the perplexity key also does not depend on the
scorer, so changing the scorer reuses the perplexities.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from xdetox.kinds.steps import register
from xdetox.kinds.steps.base import StepKind
from xdetox.kinds.steps.planning import ArmScope
from xdetox.kinds.steps.refs import ModelRef, ScoreRef
from xdetox.manifest import Shard, digest
from xdetox.spec.models import PerplexitySpec


class PerplexityParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    perplexity: PerplexitySpec
    #: the generating arm, when perplexity is taken under the model that generated the rows
    model: ModelRef | None = None


def plan(scope: ArmScope) -> None:
    """One perplexity shard per generate shard, when the spec asks for perplexity; the evaluation
    reads them beside the score shards of the same prompt set (``perplexity_input`` of its arm)."""
    s, m, arm = scope.spec, scope.model.model, scope.arm
    ppl = s.metrics.perplexity
    if ppl is None:
        return
    params: dict[str, Any] = {"perplexity": ppl.model_dump(mode="json")}
    self_ppl = ppl.reference == "self"  # perplexity under the model that generated the rows
    if self_ppl:
        params["model"] = arm.params
    for g in scope.generations:
        ps = g.prompt_set
        group = digest({"kind": "perplexity", "params": params, "generations": g.group})
        keys = []
        n = len(g.keys)
        for i, gk in enumerate(g.keys):
            inputs = {"generations": [gk]}
            if self_ppl and arm.inputs:
                inputs["model"] = arm.inputs["model"]
            keys.append(scope.add("perplexity", f"perplexity {m.id}/{arm.role} {ps.id} {i + 1}/{n}", params,
                                  inputs, Shard(index=i, count=n), output_prefix=f"perplexity/{group}"))
        # the score hook, registered before this one, has listed the arm's score shards
        score_input = ScoreRef.of(m.id, arm.role, ps.id, ps.languages).input
        scope.setting.evaluate_perplexity(score_input, f"perplexity:{m.id}:{arm.role}:{ps.id}", keys)


KIND = register(StepKind(
    name="perplexity", run="xdetox.steps.perplexity:run", image="score", resources="perplexity",
    gpu_role="score-gpu", cpu_role="score-cpu", sharded=True,
    estimate="xdetox.plan.estimate:estimate_perplexity", scope="arm", plan=plan,
    params_model=PerplexityParams,
))
