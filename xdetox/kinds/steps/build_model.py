"""Step kind ``build_model``: Materialise a model source (builtin:tiny, hub id, path, s3://) into the store once, so every later step reads the same weights.

Implementation: xdetox.steps.build_model.run.
"""

from __future__ import annotations

from xdetox.kinds.steps import register
from xdetox.kinds.steps.base import StepKind

KIND = register(StepKind(
    name="build_model", run="xdetox.steps.build_model:run", image="train", resources="build_model",
    gpu_role="train",
))
