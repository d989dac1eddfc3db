"""Step kind ``report``: Every setting's metrics to the run's report (HTML, Markdown, plots).

Implementation: xdetox.steps.report.run.
"""

from __future__ import annotations

from xdetox.kinds.steps import register
from xdetox.kinds.steps.base import StepKind

KIND = register(StepKind(
    name="report", run="xdetox.steps.report:run", image="score", resources="report",
    gpu_role="cpu",
))
