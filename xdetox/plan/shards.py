"""How many generate shards keep every GPU pod busy: a per-group suggestion for ``plan --estimate``.

A generate shard pays a fixed cost before its first token (pod start, image pull, loading the
weights, vLLM's engine start: ``Throughput.step_overhead_s``) and then generates its share of the
group's tokens. A pod is busy while it generates; with N shards its busy share is
``(W/N) / (W/N + o)`` for a group of W one-GPU seconds of generation and overhead o. The
suggestion is the largest N that keeps that share at or above ``BUSY_TARGET``:
``N = floor(W (1 - B) / (B o))``, at least 1. More shards finish sooner only while GPUs are idle;
past N they mostly buy more overhead. Same throughput assumptions as the rest of the estimate.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from xdetox.kinds import steps as step_kinds
from xdetox.plan.estimate import (
    DEFAULT_THROUGHPUT,
    Throughput,
    prompt_count,
    runs_on_transformers,
    size_class,
)
from xdetox.plan.model import Plan

BUSY_TARGET = 0.9


@dataclass(frozen=True)
class ShardAdvice:
    model: str
    backend: str
    prompts: int
    samples: int
    shards: int  # the spec's count
    groups: int  # generate groups with these same figures (arms, models of one size, seeds)
    work_s: float  # one GPU, the whole group, no overhead
    overhead_s: float
    suggested: int

    def busy(self, shards: int | None = None) -> float:
        n = shards or self.shards
        return (self.work_s / n) / (self.work_s / n + self.overhead_s)

    def pod_minutes(self, shards: int | None = None) -> float:
        n = shards or self.shards
        return (self.work_s / n + self.overhead_s) / 60


def suggested_shards(work_s: float, overhead_s: float, busy: float = BUSY_TARGET) -> int:
    return max(1, math.floor(work_s * (1 - busy) / (busy * overhead_s)))


@dataclass(frozen=True)
class ShardWork:
    """What one shard group of a kind costs on one GPU, as its declaration's ``shard_work`` says."""

    size: str  # rows group by it: models of one size class with equal figures are one row
    model: str  # the size class and the model, e.g. "tiny (builtin:tiny)"
    backend: str
    prompts: int
    samples: int
    work_s: float  # one GPU, the whole group, no overhead
    overhead_s: float  # per shard: pod start, weights, engine


def generate_work(params: Mapping[str, Any], throughput: Throughput) -> ShardWork:
    """A generate group: prompts x samples x max_new_tokens at the size class's token rate."""
    gen = params["generation"]
    prompts, _ = prompt_count(params["prompts"])
    cls = size_class(str(params["model"]["source"]))
    backend = "transformers" if runs_on_transformers(gen) else str(gen.get("backend", "vllm"))
    rate = throughput.generate_tokens_per_s[cls]
    if backend == "transformers":
        rate /= throughput.transformers_slowdown
    beams = int(gen.get("num_beams") or 1)  # every beam is decoded: beams x the tokens of one sample
    work = prompts * int(gen["samples"]) * beams * int(gen["max_new_tokens"]) / rate
    return ShardWork(size=cls, model=f"{cls} ({params['model']['source']})", backend=backend, prompts=prompts,
                     samples=int(gen["samples"]), work_s=work, overhead_s=throughput.step_overhead_s[cls])


def _work_hook(entry: str) -> Callable[[Mapping[str, Any], Throughput], ShardWork]:
    module, _, name = entry.partition(":")
    return getattr(importlib.import_module(module), name)  # type: ignore[no-any-return]


def advise(plan: Plan, throughput: Throughput = DEFAULT_THROUGHPUT) -> list[ShardAdvice]:
    """One row per distinct (model size, backend, prompts, samples, shard count) of shard groups whose
    kind declares ``shard_work`` (generate)."""
    groups: dict[str, tuple[str, Mapping[str, Any]]] = {}
    counts: dict[str, int] = {}
    for step in plan.steps:
        hook = step_kinds.get(step.kind).shard_work
        if hook is not None:
            groups.setdefault(step.output_prefix, (hook, step.params))
            counts[step.output_prefix] = step.shard.count if step.shard is not None else 1
    rows: dict[tuple[Any, ...], ShardAdvice] = {}
    for prefix, (hook, p) in groups.items():
        w = _work_hook(hook)(p, throughput)
        key = (w.size, w.backend, w.prompts, w.samples, counts[prefix], round(w.work_s, 3))
        old = rows.get(key)
        rows[key] = ShardAdvice(
            model=w.model if old is None else old.model, backend=w.backend,
            prompts=w.prompts, samples=w.samples, shards=counts[prefix],
            groups=1 if old is None else old.groups + 1, work_s=w.work_s, overhead_s=w.overhead_s,
            suggested=suggested_shards(w.work_s, w.overhead_s),
        )
    return list(rows.values())


def render_advice(rows: list[ShardAdvice]) -> Any:
    from rich.table import Table

    table = Table(title=f"generate shards (busy = share of a pod's time spent generating; "
                        f"suggested keeps it >= {BUSY_TARGET:.0%})")
    for col in ("model", "backend", "groups", "prompts x samples", "GPU-min/group", "shards", "busy",
                "pod min", "suggested", "busy", "pod min"):
        table.add_column(col, justify="left" if col in ("model", "backend") else "right")
    for r in rows:
        table.add_row(r.model, r.backend, str(r.groups), f"{r.prompts:,} x {r.samples}", f"{r.work_s / 60:,.1f}",
                      str(r.shards), f"{r.busy():.0%}", f"{r.pod_minutes():,.1f}",
                      str(r.suggested), f"{r.busy(r.suggested):.0%}", f"{r.pod_minutes(r.suggested):,.1f}")
    return table
