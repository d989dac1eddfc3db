"""What a step kind declares (``StepKind``): where and how its pods run and what runs it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StepKind:
    """One step kind. ``run`` is ``"module:function"`` taking a StepContext, imported only when a
    step of this kind runs (so declaring a kind pulls in no torch)."""

    name: str
    run: str
    #: the image whose dependencies it needs (train, generate, score)
    image: str
    #: the spec.resources entry that sizes its pods
    resources: str
    #: scheduling role of its pods when they ask for a GPU, and when they do not
    gpu_role: str = "cpu"
    cpu_role: str = "cpu"
    #: one Argo task per group, fanned out over shard indices
    sharded: bool = False
    #: a memory-backed /dev/shm (vLLM's workers; torch DataLoader workers)
    shm: bool = False
    #: "module:function" adding this step's cost to the estimate (xdetox.plan.estimate), or None
    #: for a kind whose cost is negligible CPU minutes; named, not imported, to keep layers apart
    estimate: str | None = None
    #: its pods run the spec's scorer: the scorer kind's declaration decides GPU, semaphore, secrets
    runs_scorer: bool = False

    def __post_init__(self) -> None:
        if ":" not in self.run:
            raise ValueError(f"step kind {self.name!r}: run must be 'module:function', got {self.run!r}")

    def role(self, gpus: int) -> str:
        return self.gpu_role if gpus > 0 else self.cpu_role
