"""``xdetox validate|schema|plan``: check a spec and its data, print its schema, show its plan."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from xdetox.cli.app import app
from xdetox.cli.errors import EXIT_INVALID, err, load_spec, out


def _data_problems(s: Any) -> list[str]:
    """Open each data path the spec names (local or S3) and parse it, as the steps will, so that a
    bad path or file fails here and not after a GPU was requested."""
    from xdetox.prompts import load_prompt_set
    from xdetox.store import StoreError

    problems: list[str] = []
    for i, ps in enumerate(s.prompts):
        try:
            load_prompt_set(ps)
        except (ValueError, OSError, StoreError) as e:
            problems.append(f"prompts[{i}] (id {ps.id!r}, source {ps.source!r}): {e}")
    training = s.training
    if training is not None and training.method != "none" and training.data is not None:
        from xdetox.training.data import load_training_set

        try:
            load_training_set(training.data.model_dump(), training.method, training.hyper.sft_template
                              if hasattr(training.hyper, "sft_template") else None)
        except (ValueError, OSError, StoreError) as e:
            problems.append(f"training.data: {e}")
    return problems


@app.command()
def validate(
    spec: Annotated[Path, typer.Argument(help="experiment spec (YAML)")],
    data: Annotated[bool, typer.Option(help="also open every prompt set and training file the spec names")] = True,
) -> None:
    """Check a spec and its data; exit 0 when valid, 2 with every problem named by field path when not."""
    s = load_spec(spec)
    from xdetox.spec import expand_matrix

    if data:
        problems = _data_problems(s)
        for problem in problems:
            err.print(f"[red]✗[/red] {spec}: {problem}", highlight=False, soft_wrap=True)
        if problems:
            raise typer.Exit(EXIT_INVALID)
    n = len(expand_matrix(s))
    out.print(f"[green]✓[/green] {spec}: valid ({n} setting{'s' if n != 1 else ''})")


@app.command()
def schema() -> None:
    """Print the JSON schema of an experiment spec."""
    from xdetox.spec import ExperimentSpec

    sys.stdout.write(json.dumps(ExperimentSpec.model_json_schema(), indent=2) + "\n")


@app.command()
def plan(
    spec: Annotated[Path, typer.Argument(help="experiment spec (YAML)")],
    as_json: Annotated[bool, typer.Option("--json", help="print the plan as JSON")] = False,
    estimate: Annotated[bool, typer.Option("--estimate", help="also estimate GPU-hours and counts")] = False,
) -> None:
    """Print the steps of a spec's plan, their dependencies and shard counts."""
    from xdetox.cli import plan_extras
    from xdetox.plan import plan as make_plan

    s = load_spec(spec)
    p = make_plan(s)
    if as_json:
        sys.stdout.write(json.dumps(plan_extras.plan_json(p), indent=2) + "\n")
        return
    table = Table(title=f"plan {p.run_id}: {len(p.steps)} steps, {len(p.settings)} settings")
    for col in ("#", "kind", "key", "label", "shard", "depends on"):
        table.add_column(col)
    index = {st.key: i for i, st in enumerate(p.steps)}
    for i, st in enumerate(p.steps):
        shard = f"{st.shard.index + 1}/{st.shard.count}" if st.shard else ""
        deps = ", ".join(str(index[d]) for d in st.deps())
        table.add_row(str(i), st.kind, st.key, st.label, shard, deps)
    out.print(table)
    counts = ", ".join(f"{k}: {v}" for k, v in p.counts().items())
    out.print(f"steps by kind: {counts}")
    out.print(plan_extras.settings_line(p))
    if estimate:
        plan_extras.print_estimate(p, s, out)
