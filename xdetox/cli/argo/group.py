"""The ``xdetox argo`` command group and what its commands share: spec + cluster config loading,
render options, and the schema/lint check every rendered manifest passes before it leaves."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from xdetox.cli.app import app
from xdetox.cli.errors import fail, load_spec

argo_app = typer.Typer(name="argo", help="Run on Kubernetes with Argo Workflows.", no_args_is_help=True)
app.add_typer(argo_app, name="argo")

SpecArg = Annotated[Path, typer.Argument(help="experiment spec (YAML)")]
ClusterOpt = Annotated[Path | None, typer.Option("--cluster-config", "-c", help="cluster settings (YAML)")]


def load_spec_plan_cluster(spec_path: Path, cluster: Path | None) -> tuple[Any, Any, Any]:
    """(spec, plan, cluster config), or exit 2 naming what is wrong in which file."""
    from xdetox.executors.argo.config import ClusterConfigError, load_cluster_config
    from xdetox.plan import plan as make_plan

    spec = load_spec(spec_path)
    try:
        cfg = load_cluster_config(cluster)
    except ClusterConfigError as e:
        raise fail(str(e)) from None
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
