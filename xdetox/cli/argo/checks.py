"""``xdetox argo render-check|submit-check``: a scorer check (``xdetox scorer check`` in one pod on
the score image) as an Argo Workflow."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from xdetox.cli.argo.group import ClusterOpt, argo_app, check_manifest
from xdetox.cli.errors import EXIT_FAILED, fail, out

JobArg = Annotated[Path, typer.Argument(help="scorer-check job (jobs/checks/<name>.yaml)")]


def _load_check(job_path: Path, cluster: Path | None) -> tuple[Any, Any]:
    from xdetox.executors.argo.config import ClusterConfigError, load_cluster_config
    from xdetox.executors.argo.scorer_check import load_job
    from xdetox.spec import SpecError

    try:
        job = load_job(job_path)
    except SpecError as e:
        raise fail(str(e)) from None
    try:
        cfg = load_cluster_config(cluster)
    except ClusterConfigError as e:
        raise fail(str(e)) from None
    return job, cfg


@argo_app.command("render-check")
def render_check_cmd(
    job: JobArg,
    output: Annotated[Path, typer.Option("-o", "--output", help="folder for workflow.yaml and workflowtemplate.yaml")],
    cluster_config: ClusterOpt = None,
) -> None:
    """Render a scorer check (`xdetox scorer check` in one pod on the score image) as an Argo Workflow."""
    from xdetox.executors.argo.goldens import dump
    from xdetox.executors.argo.scorer_check import render_check, render_check_template

    j, cfg = _load_check(job, cluster_config)
    wf, wt = render_check(j, cfg), render_check_template(j, cfg)
    check_manifest(wf, "the rendered Workflow")
    check_manifest(wt, "the rendered WorkflowTemplate")
    output.mkdir(parents=True, exist_ok=True)
    (output / "workflow.yaml").write_text(dump(wf, str(job)), encoding="utf-8")
    (output / "workflowtemplate.yaml").write_text(dump(wt, str(job)), encoding="utf-8")
    out.print(f"[green]✓[/green] scorer check {j.name} → {output}/workflow.yaml, {output}/workflowtemplate.yaml")


@argo_app.command("submit-check")
def submit_check(
    job: JobArg,
    cluster_config: ClusterOpt = None,
) -> None:
    """Submit a scorer check as an Argo Workflow; results go to the job's `results` prefix."""
    from xdetox.executors.argo import submit as sub
    from xdetox.executors.argo.scorer_check import render_check

    j, cfg = _load_check(job, cluster_config)
    manifest = render_check(j, cfg)
    check_manifest(manifest, "the rendered workflow")
    target = sub.target_from_env(cfg.namespace)
    try:
        created = sub.submit(manifest, target)
    except sub.SubmitError as e:
        raise fail(str(e), EXIT_FAILED) from None
    name = (created.get("metadata") or {}).get("name", "?")
    out.print(f"[green]submitted[/green] {name} in namespace {target.namespace} via {target.via}")
    out.print(f"watch: xdetox argo status {name}    logs: xdetox argo logs {name}    results: {j.results}/check.json")
    sys.stdout.flush()
