"""Step kind ``align``: Cross-lingual alignment of a model's hidden states on a parallel prompt set.

Implementation: xdetox.steps.align.run.
"""

from __future__ import annotations

from xdetox.kinds.steps import register
from xdetox.kinds.steps.base import StepKind

KIND = register(StepKind(
    name="align", run="xdetox.steps.align:run", image="train", resources="align",
    gpu_role="train",
    estimate="xdetox.plan.estimate:estimate_align",
))
