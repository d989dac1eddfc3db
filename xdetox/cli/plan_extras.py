"""Extras for ``xdetox plan``: the paper-comparable settings count and ``--estimate``'s cost table.

``xdetox.cli.main.plan`` imports this module lazily and calls ``print_estimate(plan, spec, console)``;
``settings_line(plan)`` is the one-line count it can print with or without ``--estimate``.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console

from xdetox.kinds import steps as step_kinds
from xdetox.plan.estimate import DEFAULT_THROUGHPUT, Throughput, estimate, evaluation_cells, render_estimate
from xdetox.plan.model import Plan
from xdetox.spec.models import ExperimentSpec


def plan_json(plan: Plan) -> dict[str, Any]:
    """The plan as JSON; a step whose kind declares ``explain`` also carries what it resolves from
    its params (train steps: ``trainer_settings``, what the trainer will be given under TRL's names)."""
    doc = plan.model_dump(mode="json")
    for st in doc["steps"]:
        explain = step_kinds.get(st["kind"]).explain
        if explain is not None:
            st.update(explain(st["params"]))
    return doc


def settings_line(plan: Plan) -> str:
    """Settings, distinct training runs and (setting x model x evaluation language) cells.

    The papers count cells as 'settings' (paper 2's 504); xdetox's settings are the spec's matrix
    and variants, with models and languages inside each.
    """
    trains = {k for st in plan.settings for k in st.train_keys}
    return (f"settings: {len(plan.settings)}; distinct training runs: {len(trains)}; "
            f"evaluation cells (setting x model x language, as the papers count settings): "
            f"{evaluation_cells(plan)}")


def print_estimate(plan: Plan, spec: ExperimentSpec, console: Console,
                   throughput: Throughput = DEFAULT_THROUGHPUT) -> None:
    est = estimate(plan, throughput)
    console.print(settings_line(plan))
    console.print(render_estimate(est))
    total = est.total
    if total.perspective_days:
        qps = getattr(spec.scoring, "qps", None)
        console.print(f"Perspective: {total.scored_texts:,} texts at {qps} qps = {total.perspective_days:,.1f} days "
                      "of quota (raise scoring.qps to your quota, or score with a classifier)")
    from xdetox.plan.shards import advise, render_advice

    advice = advise(plan, throughput)
    if advice:
        console.print(render_advice(advice))
    for a in est.assumptions:
        console.print(f"[dim]assumption: {a}[/dim]")
