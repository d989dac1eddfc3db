"""Step kind ``score``: Score one generate shard with the spec's scorer kind (xdetox.kinds.scorers); perplexity is its own step kind.

Planned per generate shard of the arm; the setting's evaluation reads each prompt set's shards.
Implementation: xdetox.steps.score.run.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from xdetox.kinds.steps import register
from xdetox.kinds.steps.base import StepKind
from xdetox.kinds.steps.planning import ArmScope
from xdetox.kinds.steps.refs import ScorerDump, ScoreRef
from xdetox.manifest import Shard, digest


class ScoreParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    scorer: ScorerDump
    #: further scorers every row is also scored with (absent for one-scorer specs: their keys stay)
    also: list[ScorerDump] = Field(default_factory=list)
    #: always null: perplexity is its own step kind (xdetox.kinds.steps.perplexity); the field stays
    #: so that score steps planned before that keep their keys
    perplexity: None


def plan(scope: ArmScope) -> None:
    s, m, arm = scope.spec, scope.model.model, scope.arm
    # "perplexity": None keeps the keys of score steps planned before perplexity had its own step
    # kind (xdetox.kinds.steps.perplexity): their committed outputs are still reused
    params: dict[str, Any] = {"scorer": s.scoring.model_dump(mode="json"), "perplexity": None}
    if s.compare_scorers:  # only then: one-scorer specs keep their step keys
        params["also"] = [c.model_dump(mode="json") for c in s.compare_scorers]
    for g in scope.generations:
        ps = g.prompt_set
        group = digest({"kind": "score", "params": params, "generations": g.group})
        keys = []
        n = len(g.keys)
        for i, gk in enumerate(g.keys):  # one score shard per generate shard, same split
            keys.append(scope.add("score", f"score {m.id}/{arm.role} {ps.id} {i + 1}/{n}", params,
                                  {"generations": [gk]}, Shard(index=i, count=n), output_prefix=f"scores/{group}"))
        scope.setting.evaluate_scores(ScoreRef.of(m.id, arm.role, ps.id, ps.languages), keys)


KIND = register(StepKind(
    name="score", run="xdetox.steps.score:run", image="score", resources="score",
    gpu_role="score-gpu", cpu_role="score-cpu", sharded=True,
    estimate="xdetox.plan.estimate:estimate_score", runs_scorer=True, scope="arm", plan=plan,
    params_model=ScoreParams,
))
