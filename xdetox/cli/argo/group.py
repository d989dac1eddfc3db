"""The ``xdetox argo`` command group and what its commands share: spec and cluster config loading,
render options, the schema/lint check every rendered manifest passes before it leaves, writing a
rendered pair and submitting one."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from xdetox.cli.app import app
from xdetox.cli.errors import EXIT_FAILED, fail, load_spec, out

argo_app = typer.Typer(name="argo", help="Run on Kubernetes with Argo Workflows.", no_args_is_help=True)
app.add_typer(argo_app, name="argo")

SpecArg = Annotated[Path, typer.Argument(help="experiment spec (YAML)")]
ClusterOpt = Annotated[Path | None, typer.Option("--cluster-config", "-c", help="cluster settings (YAML)")]
OutputOpt = Annotated[Path, typer.Option("-o", "--output", help="folder for workflow.yaml and workflowtemplate.yaml")]


def load_cluster(cluster: Path | None) -> Any:
    """The cluster config (the built-in defaults without a file), or exit 2 naming the bad key."""
    from xdetox.executors.argo.config import ClusterConfigError, load_cluster_config

    try:
        return load_cluster_config(cluster)
    except ClusterConfigError as e:
        raise fail(str(e)) from None


def load_spec_plan_cluster(spec_path: Path, cluster: Path | None) -> tuple[Any, Any, Any]:
    """(spec, plan, cluster config), or exit 2 naming what is wrong in which file."""
    from xdetox.plan import plan as make_plan

    spec = load_spec(spec_path)
    cfg = load_cluster(cluster)
    return spec, make_plan(spec), cfg


def render_options(spec_path: Path, reference: Path | None) -> Any:
    from xdetox.executors.argo.goldens import options_for
    from xdetox.executors.argo.render import RenderOptions

    if reference is not None:
        return RenderOptions(fresh_root=True, reference_json=reference.read_text(encoding="utf-8"))
    return options_for(spec_path)


def check_manifest(manifest: dict[str, Any], what: str) -> None:
    from xdetox.executors.argo import lint, schema

    problems = schema.errors(manifest) + lint.lint(manifest)
    if problems:
        raise fail(f"{what} is not a valid Argo manifest:\n  " + "\n  ".join(problems))


def write_rendered(output: Path, workflow: dict[str, Any], template: dict[str, Any], source: str) -> None:
    """Check both manifests, then write ``workflow.yaml`` and ``workflowtemplate.yaml`` under ``output``."""
    from xdetox.executors.argo.goldens import dump

    check_manifest(workflow, "the rendered Workflow")
    check_manifest(template, "the rendered WorkflowTemplate")
    output.mkdir(parents=True, exist_ok=True)
    (output / "workflow.yaml").write_text(dump(workflow, source), encoding="utf-8")
    (output / "workflowtemplate.yaml").write_text(dump(template, source), encoding="utf-8")


def submit_workflow(manifest: dict[str, Any], namespace: str, also: str = "") -> None:
    """Submit a checked Workflow (Argo Server from ARGO_SERVER/ARGO_TOKEN, else the Kubernetes API)
    and say how to follow it; exit 1 when the cluster refuses it."""
    from xdetox.executors.argo import submit as sub

    target = sub.target_from_env(namespace)
    try:
        created = sub.submit(manifest, target)
    except sub.SubmitError as e:
        raise fail(str(e), EXIT_FAILED) from None
    name = (created.get("metadata") or {}).get("name", "?")
    out.print(f"[green]submitted[/green] {name} in namespace {target.namespace} via {target.via}")
    out.print(f"watch: xdetox argo status {name}    logs: xdetox argo logs {name}{also}")
    sys.stdout.flush()
