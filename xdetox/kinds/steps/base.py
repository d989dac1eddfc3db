"""What a step kind declares (``StepKind``): how it is planned, where and how its pods run, and
what runs it."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel

from xdetox.spec.models import StepResources

#: where in the plan's nesting a kind's planning hook is called (see xdetox.kinds.steps.planning):
#: once per model of a setting, per arm of a model, per setting, or once for the whole run
Scope = Literal["model", "arm", "setting", "run"]
SCOPES: tuple[Scope, ...] = ("model", "arm", "setting", "run")


@dataclass(frozen=True)
class StepKind:
    """One step kind. ``run`` is ``"module:function"`` taking a StepContext, imported only when a
    step of this kind runs (so declaring a kind pulls in no torch)."""

    name: str
    run: str
    #: the image whose dependencies it needs (train, generate, score)
    image: str
    #: the spec.resources entry that sizes its pods (a kind from outside xdetox names its own and
    #: declares default_resources: the spec has no entry for it)
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
    #: (the only way a step gets the scorer's secrets: a GPU step that needs scores plans a scoring
    #: step after it, as analyze does with analyze_score, so no GPU pod holds an API permit)
    runs_scorer: bool = False
    #: where the planner calls ``plan`` (one of SCOPES); a kind without a hook is never planned
    scope: Scope | None = None
    #: the planning hook: takes the scope (ModelScope, ArmScope, SettingScope or RunScope of
    #: xdetox.kinds.steps.planning) and adds this kind's steps to it; a callable or "module:function"
    plan: Callable[[Any], None] | str | None = None
    #: the run-relative folder its outputs go under (``<output_dir>/<key>``) unless the hook says
    output_dir: str | None = None
    #: the Pydantic model of its params: the planner checks every step its hook makes against it
    #: (a kind without one takes any params)
    params_model: type[BaseModel] | None = None
    #: what ``xdetox plan --json`` shows beside a step's params: settings resolved from them that a
    #: reader wants to check (the trainer's), as extra fields of the step; None: nothing extra
    explain: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    #: its pods' size when spec.resources has no entry named ``resources``
    default_resources: StepResources | None = None
    #: "module:function" giving the shard advice's figures for one shard group of this kind
    #: (xdetox.plan.shards), or None when sharding it needs no advice
    shard_work: str | None = None

    def __post_init__(self) -> None:
        if ":" not in self.run:
            raise ValueError(f"step kind {self.name!r}: run must be 'module:function', got {self.run!r}")
        if (self.scope is None) != (self.plan is None):
            raise ValueError(f"step kind {self.name!r}: scope and plan go together (got scope={self.scope!r})")
        if self.scope is not None and self.scope not in SCOPES:
            raise ValueError(f"step kind {self.name!r}: scope must be one of {', '.join(SCOPES)}, got {self.scope!r}")

    def pod_resources(self, resources: BaseModel) -> StepResources:
        """Its pods' size: the spec's ``resources`` entry of this name, else the declared default."""
        res = getattr(resources, self.resources, None)
        if isinstance(res, StepResources):
            return res
        if self.default_resources is not None:
            return self.default_resources
        raise ValueError(f"step kind {self.name!r}: spec.resources has no entry {self.resources!r} and the kind "
                         "declares no default_resources")

    def role(self, gpus: int) -> str:
        return self.gpu_role if gpus > 0 else self.cpu_role

    def planner(self) -> Callable[[Any], None] | None:
        """The planning hook, imported when it is named by string."""
        if self.plan is None or callable(self.plan):
            return self.plan
        module, _, attr = self.plan.partition(":")
        return getattr(importlib.import_module(module), attr)  # type: ignore[no-any-return]
