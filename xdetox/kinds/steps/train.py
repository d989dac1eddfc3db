"""Step kind ``train``: DPO or SFT fine-tuning of one model on one training setting (checkpointed, resumable).

Implementation: xdetox.steps.train.run.
"""

from __future__ import annotations

from xdetox.kinds.steps import register
from xdetox.kinds.steps.base import StepKind

KIND = register(StepKind(
    name="train", run="xdetox.steps.train:run", image="train", resources="train",
    gpu_role="train", shm=True,
    estimate="xdetox.plan.estimate:estimate_train",
))
