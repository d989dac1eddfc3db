"""Step kind ``analyze_score``: the run's scorer judges one analyze step's greedy continuations.

Its own step, not part of ``analyze`` (issue 15 item 2): the analysis needs a GPU to decode and
edit the model, while a Perspective scorer waits days on the API's quota and must hold the
workflow's one Perspective permit. In one pod the GPU would idle behind the quota and a GPU pod
would carry the API key. Apart, the analyze pod only decodes and commits its continuations as
rows; this step scores them in a pod sized like a score pod (``runs_scorer``: the scorer kind's
declaration decides GPU, semaphore and secrets; Perspective: a CPU pod holding the permit) and
writes the analysis with its scores, which the report reads. Also, changing the scorer now
reuses the (GPU) analysis. Implementation: xdetox.steps.analyze_score.run.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from xdetox.kinds.steps import register
from xdetox.kinds.steps.analyze import ANALYSIS_KEY
from xdetox.kinds.steps.base import StepKind
from xdetox.kinds.steps.planning import ModelScope
from xdetox.kinds.steps.refs import ScorerDump


class AnalyzeScoreParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    scorer: ScorerDump  # the run's scorer spec (paper 1: Perspective)
    model_id: str  # the analysed model (the scored rows' model_id; the report names it)


def plan(scope: ModelScope) -> None:
    """One per analyze step of this model (the analyze hook, registered before, names its step in
    ``scope.extra``); the report lists the scored analysis in the analyze step's place."""
    analyze_key = scope.extra.get(ANALYSIS_KEY)
    if analyze_key is None:
        return  # this model is not analysed
    params = {"scorer": scope.spec.scoring.model_dump(mode="json"), "model_id": scope.model.id}
    key = scope.add("analyze_score", f"analyze score {scope.model.id}", params, {"analysis": [analyze_key]})
    analyses = scope.setting.run.analyses
    analyses[:] = [key if a == analyze_key else a for a in analyses]


KIND = register(StepKind(
    name="analyze_score", run="xdetox.steps.analyze_score:run", image="score", resources="score",
    gpu_role="score-gpu", cpu_role="score-cpu", runs_scorer=True,
    estimate="xdetox.plan.estimate:estimate_analyze_score", scope="model", plan=plan, output_dir="analysis",
    params_model=AnalyzeScoreParams,
))
