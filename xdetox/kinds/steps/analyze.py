"""Step kind ``analyze``: Paper 1's toxic-neuron analysis of GPT-2-architecture models.

Implementation: xdetox.steps.analyze.run.
"""

from __future__ import annotations

from xdetox.kinds.steps import register
from xdetox.kinds.steps.base import StepKind

KIND = register(StepKind(
    name="analyze", run="xdetox.steps.analyze:run", image="train", resources="analyze",
    gpu_role="train",
    estimate="xdetox.plan.estimate:estimate_analyze",
))
