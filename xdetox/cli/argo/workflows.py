"""``xdetox argo publish|submit|status|logs|record-outcome``: a workflow's life on the cluster."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from xdetox.cli.argo.group import (
    ClusterOpt,
    SpecArg,
    argo_app,
    check_manifest,
    load_spec_plan_cluster,
    render_options,
    submit_workflow,
)
from xdetox.cli.errors import EXIT_FAILED, err, fail, out


@argo_app.command()
def publish(
    store: Annotated[str, typer.Option(help="store root URI (s3://… or file://…)")],
    spec_b64: Annotated[str | None, typer.Option("--spec-b64", help="the spec as base64 JSON (workflow parameter)")] = None,
    spec: Annotated[Path | None, typer.Option(help="the spec as a YAML file")] = None,
    expect_plan: Annotated[str | None, typer.Option(help="plan digest the workflow was rendered for")] = None,
) -> None:
    """Write spec, plan and every step manifest to the store (the workflow's first task)."""
    from xdetox.executors.argo.publish import PublishError, publish_from_payload
    from xdetox.executors.argo.render import spec_payload
    from xdetox.spec import SpecError, load_spec

    if (spec_b64 is None) == (spec is None):
        raise fail("give exactly one of --spec-b64 and --spec")
    try:
        payload = spec_b64 if spec_b64 is not None else spec_payload(load_spec(spec))  # type: ignore[arg-type]
        p, rs = publish_from_payload(store, payload, expect_plan)
    except (PublishError, SpecError, ValueError) as e:
        raise fail(str(e)) from None
    err.print(f"published {len(p.steps)} manifests of run {p.run_id} → {rs.uri}")


@argo_app.command()
def submit(
    spec: SpecArg,
    cluster_config: ClusterOpt = None,
    publish_first: Annotated[bool, typer.Option("--publish/--no-publish",
                                                help="write manifests to the store before submitting")] = True,
    template: Annotated[bool, typer.Option(help="create the WorkflowTemplate instead of a Workflow")] = False,
) -> None:
    """Submit a spec as an Argo Workflow (Argo Server from ARGO_SERVER/ARGO_TOKEN, else the Kubernetes API)."""
    from xdetox.executors.argo.publish import publish_manifests
    from xdetox.executors.argo.render import render as render_wf
    from xdetox.executors.argo.render import render_template
    from xdetox.store import StoreError, open_store

    s, p, cfg = load_spec_plan_cluster(spec, cluster_config)
    opts = render_options(spec, None)
    try:
        manifest = (render_template if template else render_wf)(p, s, cfg, opts)
    except ValueError as e:
        raise fail(f"{spec}: {e}") from None
    check_manifest(manifest, "the rendered workflow")
    if publish_first and not template:
        try:
            rs = publish_manifests(p, open_store(cfg.store.uri or s.store), s)
        except (StoreError, OSError, ValueError) as e:
            raise fail(f"publishing manifests failed: {e} (use --no-publish to leave it to the workflow)",
                        EXIT_FAILED) from None
        err.print(f"published {len(p.steps)} manifests → {rs.uri}")
    if template:
        raise fail("--template: install WorkflowTemplates with the Helm chart (charts/xdetox)")
    submit_workflow(manifest, cfg.namespace)


@argo_app.command()
def status(
    name: Annotated[str, typer.Argument(help="workflow name")],
    namespace: Annotated[str, typer.Option(help="namespace (or ARGO_NAMESPACE)")] = "xdetox",
) -> None:
    """Phase, progress and failed steps of a workflow."""
    from xdetox.executors.argo import submit as sub

    target = sub.target_from_env(namespace)
    try:
        st = sub.summarize(sub.get(name, target))
    except sub.SubmitError as e:
        raise fail(str(e), EXIT_FAILED) from None
    colour = {"Succeeded": "green", "Failed": "red", "Error": "red", "Running": "yellow"}.get(st.phase, "white")
    out.print(f"{st.name}: [{colour}]{st.phase}[/{colour}] {st.progress} "
              f"(started {st.started or '-'}, finished {st.finished or '-'})")
    if st.message:
        out.print(f"message: {st.message}", highlight=False)
    for n in st.running:
        out.print(f"  running: {n}", highlight=False)
    for n, msg in st.failed:
        out.print(f"  [red]failed[/red]: {n}: {msg}", highlight=False)
    if st.phase in {"Failed", "Error"}:
        raise typer.Exit(EXIT_FAILED)


@argo_app.command()
def logs(
    name: Annotated[str, typer.Argument(help="workflow name")],
    namespace: Annotated[str, typer.Option(help="namespace (or ARGO_NAMESPACE)")] = "xdetox",
    grep: Annotated[str | None, typer.Option(help="only lines containing this")] = None,
) -> None:
    """The step pods' logs of a workflow."""
    from xdetox.executors.argo import submit as sub

    target = sub.target_from_env(namespace)
    try:
        for line in sub.logs(name, target, grep):
            sys.stdout.write(line + "\n")
    except sub.SubmitError as e:
        raise fail(str(e), EXIT_FAILED) from None


@argo_app.command("record-outcome")
def record_outcome(
    store: Annotated[str, typer.Option(help="store root URI the run was written under")],
    run: Annotated[str, typer.Option(help="run id")],
    workflow: Annotated[str, typer.Option(help="workflow name ({{workflow.name}})")],
    status: Annotated[str, typer.Option(help="{{workflow.status}}")],
    failures: Annotated[str, typer.Option(help="{{workflow.failures}} (JSON)")] = "",
    duration: Annotated[str, typer.Option(help="{{workflow.duration}} (seconds)")] = "",
) -> None:
    """The workflow's onExit handler: write runs/<run>/outcomes/<workflow>.json to the store."""
    from xdetox.executors.argo.outcome import outcome_key, record
    from xdetox.executors.publish import run_store
    from xdetox.store import StoreError, open_store

    try:
        rs = run_store(open_store(store), run)
        body = record(rs, workflow, status, failures, duration)
    except (StoreError, ValueError) as e:
        raise fail(f"record-outcome: {e}", EXIT_FAILED) from None
    out.print(f"{workflow}: {status}, {body['failed_nodes']} failed node(s) → {rs.uri}/{outcome_key(workflow)}")
