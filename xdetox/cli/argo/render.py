"""``xdetox argo render|render-goldens``: a spec as Argo manifests; the committed goldens of jobs/."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from xdetox.cli.argo.group import (
    ClusterOpt,
    OutputOpt,
    SpecArg,
    argo_app,
    load_spec_plan_cluster,
    render_options,
    write_rendered,
)
from xdetox.cli.errors import EXIT_FAILED, err, fail, out


@argo_app.command()
def render(
    spec: SpecArg,
    output: OutputOpt,
    cluster_config: ClusterOpt = None,
    reference: Annotated[Path | None, typer.Option(help="nightly reference values: adds the check task")] = None,
) -> None:
    """Render a spec's plan as an Argo Workflow and a WorkflowTemplate (validated and linted)."""
    from xdetox.executors.argo.render import render as render_wf
    from xdetox.executors.argo.render import render_template

    s, p, cfg = load_spec_plan_cluster(spec, cluster_config)
    opts = render_options(spec, reference)
    try:
        wf, wt = render_wf(p, s, cfg, opts), render_template(p, s, cfg, opts)
    except ValueError as e:
        raise fail(f"{spec}: {e}") from None
    write_rendered(output, wf, wt, str(spec))
    tasks = len(wf["spec"]["templates"][0]["dag"]["tasks"])
    out.print(f"[green]✓[/green] {p.run_id}: {len(p.steps)} steps in {tasks} DAG tasks → {output}/workflow.yaml, "
              f"{output}/workflowtemplate.yaml")


@argo_app.command("render-goldens")
def render_goldens(
    check: Annotated[bool, typer.Option("--check", help="only report differences; exit 1 if any")] = False,
) -> None:
    """Regenerate the golden Workflows (argo/) and WorkflowTemplates (the chart's files/) from jobs/."""
    from xdetox.executors.argo import goldens

    root = goldens.repo_root()
    if check:
        diffs = goldens.differences(root)
        for d in diffs:
            err.print(d, highlight=False)
        if diffs:
            raise typer.Exit(EXIT_FAILED)
        out.print("[green]✓[/green] the golden Workflows and WorkflowTemplates are up to date")
        return
    for rel in goldens.write(root):
        out.print(f"wrote {rel}")
