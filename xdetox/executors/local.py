"""The local executor: run a plan's steps on this machine in dependency order, with resume.

Steps run in this process, one at a time (the heavy libraries are imported once; on a 2-core
machine one step at a time is also the fastest). A committed step is skipped and reported as
cached. A step that fails stops the run, leaves everything committed so far in place, and names
the step; the next run picks up from there.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from xdetox.manifest import CommitRecord, StepManifest
from xdetox.plan import Plan
from xdetox.steps.runner import run_step
from xdetox.store import Store


@dataclass
class StepOutcome:
    key: str
    kind: str
    label: str
    status: str  # "ran" | "cached" | "failed"
    seconds: float = 0.0
    record: CommitRecord | None = None


@dataclass
class RunResult:
    run_id: str
    outcomes: list[StepOutcome] = field(default_factory=list)
    seconds: float = 0.0
    failed: StepOutcome | None = None
    error: BaseException | None = None

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)


class StepFailed(RuntimeError):
    def __init__(self, step: StepManifest, cause: BaseException) -> None:
        self.step = step
        self.cause = cause
        super().__init__(f"step {step.kind} {step.key} ({step.label}) failed: {type(cause).__name__}: {cause}")


def run_plan(
    plan: Plan,
    store: Store,
    console: Console | None = None,
    only: Callable[[StepManifest], bool] | None = None,
    show_progress: bool = True,
) -> RunResult:
    """Run every step of ``plan`` against the run-rooted ``store``."""
    console = console or Console(stderr=True)
    result = RunResult(plan.run_id)
    t0 = time.perf_counter()
    steps = [s for s in plan.steps if only is None or only(s)]
    progress = Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=not show_progress,
        transient=False,
    )
    with progress:
        overall = progress.add_task(f"run {plan.run_id}", total=len(steps))
        for step in steps:
            progress.update(overall, description=f"{step.kind}: {step.label}")
            s0 = time.perf_counter()
            try:
                record, cached = run_step(step, store, log=lambda m: progress.console.log(f"  [dim]{m}[/dim]"))
            except BaseException as e:  # noqa: BLE001 - reported with the step's name, then re-raised
                outcome = StepOutcome(step.key, step.kind, step.label, "failed", time.perf_counter() - s0)
                result.outcomes.append(outcome)
                result.failed, result.error = outcome, e
                result.seconds = time.perf_counter() - t0
                if isinstance(e, KeyboardInterrupt):
                    raise
                raise StepFailed(step, e) from e
            seconds = time.perf_counter() - s0
            if cached:  # committed by an earlier run: run_step read its record and ran nothing
                progress.console.log(f"[dim]cached[/dim]  {step.kind:<11} {step.label}")
            else:
                progress.console.log(f"[green]ran[/green]     {step.kind:<11} {step.label} ({seconds:.1f}s)")
            result.outcomes.append(StepOutcome(step.key, step.kind, step.label, "cached" if cached else "ran",
                                               seconds, record))
            progress.advance(overall)
        progress.update(overall, description=f"run {plan.run_id}: done")
    result.seconds = time.perf_counter() - t0
    return result
