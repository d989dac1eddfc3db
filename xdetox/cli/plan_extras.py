"""Extras for ``xdetox plan``: the paper-comparable settings count and ``--estimate``'s cost table.

``xdetox.cli.main.plan`` imports this module lazily and calls ``print_estimate(plan, spec, console)``;
``settings_line(plan)`` is the one-line count it can print with or without ``--estimate``.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console

from xdetox.plan.estimate import DEFAULT_THROUGHPUT, Throughput, estimate, evaluation_cells, render_estimate
from xdetox.plan.model import Plan
from xdetox.spec.models import ExperimentSpec
from xdetox.spec.recipes import resolve, trainer_settings


def plan_json(plan: Plan) -> dict[str, Any]:
    """The plan as JSON; each train step also carries ``trainer_settings``: what its trainer will be
    given, resolved from preset, model family and spec (``xdetox.spec.recipes``), under TRL's names."""
    doc = plan.model_dump(mode="json")
    for st in doc["steps"]:
        if st["kind"] == "train":
            params = st["params"]
            hyper, peft = resolve(params["training"], (params.get("model") or {}).get("source"))
            st["trainer_settings"] = trainer_settings(hyper, peft)
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
