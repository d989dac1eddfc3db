"""Step kind ``generate``: Sample continuations of one prompt set from one model arm, one shard of the prompts per step.

Implementation: xdetox.steps.generate.run.
"""

from __future__ import annotations

from xdetox.kinds.steps import register
from xdetox.kinds.steps.base import StepKind

KIND = register(StepKind(
    name="generate", run="xdetox.steps.generate:run", image="generate", resources="generate",
    gpu_role="generate", sharded=True, shm=True,
    estimate="xdetox.plan.estimate:estimate_generate",
))
