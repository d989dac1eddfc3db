"""Step kind ``evaluate``: One setting's score shards (and alignments) to metrics.json.

Planned once per setting, over everything the setting's arm hooks left for it to evaluate.
Implementation: xdetox.steps.evaluate.run.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from xdetox.kinds.steps import register
from xdetox.kinds.steps.base import StepKind
from xdetox.kinds.steps.planning import SettingScope
from xdetox.kinds.steps.refs import AlignmentRef, ScoreRef
from xdetox.spec.models import MetricsSpec


class EvaluateParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    metrics: MetricsSpec
    arms: list[ScoreRef]  # one per (model, arm, prompt set) scored
    alignments: list[AlignmentRef] = Field(default_factory=list)  # absent without alignment
    scorer_kind: str
    training_method: str


def plan(scope: SettingScope) -> None:
    s = scope.spec
    params = {"metrics": s.metrics.model_dump(mode="json"), "arms": [r.model_dump(mode="json", exclude_none=True) for r in scope.scores],
              "scorer_kind": s.scoring.kind, "training_method": s.training.method}
    if scope.alignments:  # typed, so the step never parses input names; absent without alignment
        params["alignments"] = [r.model_dump(mode="json") for r in scope.alignments]
    scope.evaluate_key = scope.add("evaluate", f"evaluate {scope.label}", params, scope.evaluation_inputs)


KIND = register(StepKind(
    name="evaluate", run="xdetox.steps.evaluate:run", image="score", resources="evaluate",
    gpu_role="cpu", scope="setting", plan=plan, output_dir="evaluations", params_model=EvaluateParams,
))
