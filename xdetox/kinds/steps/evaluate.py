"""Step kind ``evaluate``: One setting's score shards (and alignments) to metrics.json.

Implementation: xdetox.steps.evaluate.run.
"""

from __future__ import annotations

from xdetox.kinds.steps import register
from xdetox.kinds.steps.base import StepKind

KIND = register(StepKind(
    name="evaluate", run="xdetox.steps.evaluate:run", image="score", resources="evaluate",
    gpu_role="cpu",
))
