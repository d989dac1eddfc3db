"""``xdetox argo render-check|submit-check``: a scorer check (``xdetox scorer check`` in one pod on
the score image) as an Argo Workflow."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from xdetox.cli.argo.group import (
    ClusterOpt,
    OutputOpt,
    argo_app,
    check_manifest,
    load_cluster,
    submit_workflow,
    write_rendered,
)
from xdetox.cli.errors import fail, out

JobArg = Annotated[Path, typer.Argument(help="scorer-check job (jobs/checks/<name>.yaml)")]


def _load_check(job_path: Path, cluster: Path | None) -> tuple[Any, Any]:
    from xdetox.executors.argo.scorer_check import load_job
    from xdetox.spec import SpecError

    try:
        job = load_job(job_path)
    except SpecError as e:
        raise fail(str(e)) from None
    return job, load_cluster(cluster)


@argo_app.command("render-check")
def render_check_cmd(
    job: JobArg,
    output: OutputOpt,
    cluster_config: ClusterOpt = None,
) -> None:
    """Render a scorer check (`xdetox scorer check` in one pod on the score image) as an Argo Workflow."""
    from xdetox.executors.argo.scorer_check import render_check, render_check_template

    j, cfg = _load_check(job, cluster_config)
    write_rendered(output, render_check(j, cfg), render_check_template(j, cfg), str(job))
    out.print(f"[green]✓[/green] scorer check {j.name} → {output}/workflow.yaml, {output}/workflowtemplate.yaml")


@argo_app.command("submit-check")
def submit_check(
    job: JobArg,
    cluster_config: ClusterOpt = None,
) -> None:
    """Submit a scorer check as an Argo Workflow; results go to the job's `results` prefix."""
    from xdetox.executors.argo.scorer_check import render_check

    j, cfg = _load_check(job, cluster_config)
    manifest = render_check(j, cfg)
    check_manifest(manifest, "the rendered workflow")
    submit_workflow(manifest, cfg.namespace, f"    results: {j.results}/check.json")
