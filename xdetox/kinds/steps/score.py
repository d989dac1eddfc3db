"""Step kind ``score``: Score one generate shard with the spec's scorer kind (xdetox.kinds.scorers), plus optional perplexity.

Implementation: xdetox.steps.score.run.
"""

from __future__ import annotations

from xdetox.kinds.steps import register
from xdetox.kinds.steps.base import StepKind

KIND = register(StepKind(
    name="score", run="xdetox.steps.score:run", image="score", resources="score",
    gpu_role="score-gpu", cpu_role="score-cpu", sharded=True,
    estimate="xdetox.plan.estimate:estimate_score", runs_scorer=True,
))
