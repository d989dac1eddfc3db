"""``xdetox argo …``: render, check and submit experiments to Argo Workflows; nightly checks.

Registered into the main CLI by ``register(app)``. Heavy imports (Hera, kubernetes) happen inside
the commands, so ``xdetox --help`` stays fast.
"""

from __future__ import annotations

import base64
import binascii
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

argo_app = typer.Typer(name="argo", help="Run on Kubernetes with Argo Workflows.", no_args_is_help=True)
out = Console()
err = Console(stderr=True)
EXIT_INVALID = 2
EXIT_FAILED = 1

SpecArg = Annotated[Path, typer.Argument(help="experiment spec (YAML)")]
ClusterOpt = Annotated[Path | None, typer.Option("--cluster-config", "-c", help="cluster settings (YAML)")]


def _fail(message: str, code: int = EXIT_INVALID) -> typer.Exit:
    err.print(f"[bold red]error:[/bold red] {message}", highlight=False, soft_wrap=True, markup=True)
    return typer.Exit(code)


def _load(spec_path: Path, cluster: Path | None) -> tuple[Any, Any, Any]:
    from xdetox.executors.argo.config import ClusterConfigError, load_cluster_config
    from xdetox.plan import plan as make_plan
    from xdetox.scoring.calibrated import pin_calibration
    from xdetox.spec import SpecError, load_spec

    try:
        spec = pin_calibration(load_spec(spec_path), str(spec_path))  # a changed map is a new step key
    except SpecError as e:
        raise _fail(str(e)) from None
    try:
        cfg = load_cluster_config(cluster)
    except ClusterConfigError as e:
        raise _fail(str(e)) from None
    return spec, make_plan(spec), cfg


def _options(spec_path: Path, reference: Path | None) -> Any:
    from xdetox.executors.argo.goldens import options_for
    from xdetox.executors.argo.render import RenderOptions

    if reference is not None:
        return RenderOptions(fresh_root=True, reference_json=reference.read_text(encoding="utf-8"))
    return options_for(spec_path)


def _check(manifest: dict[str, Any], what: str) -> None:
    from xdetox.executors.argo import lint, schema

    problems = schema.errors(manifest) + lint.lint(manifest)
    if problems:
        raise _fail(f"{what} is not a valid Argo manifest:\n  " + "\n  ".join(problems))


@argo_app.command()
def render(
    spec: SpecArg,
    output: Annotated[Path, typer.Option("-o", "--output", help="folder for workflow.yaml and workflowtemplate.yaml")],
    cluster_config: ClusterOpt = None,
    reference: Annotated[Path | None, typer.Option(help="nightly reference values: adds the check task")] = None,
) -> None:
    """Render a spec's plan as an Argo Workflow and a WorkflowTemplate (validated and linted)."""
    from xdetox.executors.argo.goldens import dump
    from xdetox.executors.argo.render import render as render_wf
    from xdetox.executors.argo.render import render_template

    s, p, cfg = _load(spec, cluster_config)
    opts = _options(spec, reference)
    try:
        wf, wt = render_wf(p, s, cfg, opts), render_template(p, s, cfg, opts)
    except ValueError as e:
        raise _fail(f"{spec}: {e}") from None
    _check(wf, "the rendered Workflow")
    _check(wt, "the rendered WorkflowTemplate")
    output.mkdir(parents=True, exist_ok=True)
    (output / "workflow.yaml").write_text(dump(wf, str(spec)), encoding="utf-8")
    (output / "workflowtemplate.yaml").write_text(dump(wt, str(spec)), encoding="utf-8")
    tasks = len(wf["spec"]["templates"][0]["dag"]["tasks"])
    out.print(f"[green]✓[/green] {p.run_id}: {len(p.steps)} steps in {tasks} DAG tasks → {output}/workflow.yaml, "
              f"{output}/workflowtemplate.yaml")


@argo_app.command("render-goldens")
def render_goldens(
    check: Annotated[bool, typer.Option("--check", help="only report differences; exit 1 if any")] = False,
) -> None:
    """Regenerate argo/ (and the chart's WorkflowTemplates) from every spec in jobs/."""
    from xdetox.executors.argo import goldens

    root = goldens.repo_root()
    if check:
        diffs = goldens.differences(root)
        for d in diffs:
            err.print(d, highlight=False)
        if diffs:
            raise typer.Exit(EXIT_FAILED)
        out.print("[green]✓[/green] argo/ is up to date")
        return
    for rel in goldens.write(root):
        out.print(f"wrote {rel}")


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
        raise _fail("give exactly one of --spec-b64 and --spec")
    try:
        payload = spec_b64 if spec_b64 is not None else spec_payload(load_spec(spec))  # type: ignore[arg-type]
        p, rs = publish_from_payload(store, payload, expect_plan)
    except (PublishError, SpecError, ValueError) as e:
        raise _fail(str(e)) from None
    err.print(f"published {len(p.steps)} manifests of run {p.run_id} → {rs.uri}")


def _reference(reference: Path | None, reference_b64: str | None) -> Any:
    from pydantic import ValidationError

    from xdetox.executors.argo.nightly import Reference

    if (reference is None) == (reference_b64 is None):
        raise _fail("give exactly one of --reference and --reference-b64")
    try:
        if reference is not None:
            text, where = reference.read_text(encoding="utf-8"), str(reference)
        else:
            text, where = base64.b64decode(reference_b64 or "", validate=True).decode("utf-8"), "--reference-b64"
        return Reference.model_validate_json(text)
    except (OSError, binascii.Error, UnicodeDecodeError) as e:
        raise _fail(f"reference: {e}") from None
    except ValidationError as e:
        lines = [f"{where}: {'.'.join(str(x) for x in er['loc'])}: {er['msg']}" for er in e.errors()]
        raise _fail("\n".join(lines)) from None


@argo_app.command("check-nightly")
def check_nightly(
    store: Annotated[str, typer.Option(help="store root URI the run was written under")],
    run: Annotated[str, typer.Option(help="run id")] = "nightly",
    reference: Annotated[Path | None, typer.Option(help="reference values (JSON file)")] = None,
    reference_b64: Annotated[str | None, typer.Option("--reference-b64", help="reference values, base64")] = None,
) -> None:
    """Test a run's metrics against the reference seeds' distribution; write results/nightly-check.{json,md};
    exit 1 on regression."""
    from xdetox.executors.argo.nightly import CHECK_MD, check_run
    from xdetox.executors.publish import run_store
    from xdetox.store import open_store

    ref = _reference(reference, reference_b64)
    rs = run_store(open_store(store), run)
    ok, outcomes = check_run(rs, ref)
    table = Table(title=f"nightly check of {rs.uri} against {len(ref.seeds)} reference seeds")
    for col in ("figure", "reference", "value", "detects", "result"):
        table.add_column(col)
    for o in outcomes:
        table.add_row(o.name, f"{o.reference:.4g}", "missing" if o.value is None else f"{o.value:.4g}",
                      "exact" if o.kind == "exact" else f"±{o.tolerance:.3g}",
                      "[green]ok[/green]" if o.ok else f"[red]{o.reason}[/red]")
    out.print(table)
    n_noisy = sum(o.kind == "noisy" for o in outcomes)
    out.print(f"test: two-sided t prediction interval of the reference seeds, family-wise false-alarm rate "
              f"{ref.false_alarm_rate:g} (Bonferroni over {n_noisy} noisy figures); counts exact")
    out.print(f"written: {rs.uri}/{CHECK_MD}")
    if not ok:
        bad = sum(not o.ok for o in outcomes)
        err.print(f"[bold red]REGRESSION:[/bold red] {bad} of {len(outcomes)} figures outside what seed and "
                  "sampling noise explain")
        raise typer.Exit(EXIT_FAILED)
    out.print(f"[green]✓[/green] all {len(outcomes)} figures within seed and sampling noise")


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
        raise _fail(f"record-outcome: {e}", EXIT_FAILED) from None
    out.print(f"{workflow}: {status}, {body['failed_nodes']} failed node(s) → {rs.uri}/{outcome_key(workflow)}")


@argo_app.command("make-reference")
def make_reference_cmd(
    spec: SpecArg,
    seeds: Annotated[int, typer.Option(help="how many seeds to run (spec seed, +1, +2, ...); at least 5")] = 8,
    work: Annotated[str, typer.Option(help="store root for the seed runs (each under seed-<n>/)")] =
        "file://./xdetox-store/nightly-reference-runs",
    from_store: Annotated[list[str] | None, typer.Option("--from", help="use finished runs in these run stores "
                                                         "(<root>/runs/<run>) instead of running")] = None,
    output: Annotated[Path | None, typer.Option("-o", help="reference file; default jobs/<spec>-reference.json")] = None,
    false_alarm_rate: Annotated[float, typer.Option(help="family-wise false-alarm rate of one check")] = 0.05,
) -> None:
    """Run SPEC with several seeds on this machine (or read finished runs) and write the reference
    distribution the nightly check tests against. Refuses runs of different xdetox versions or specs."""
    import platform
    from datetime import UTC, datetime

    from xdetox.executors.argo.nightly import MIN_SEEDS, ReferenceError, make_reference
    from xdetox.executors.argo.reference_runs import collect, run_seed
    from xdetox.executors.local import StepFailed
    from xdetox.spec import SpecError, load_spec
    from xdetox.store import StoreError, open_store

    try:
        s = load_spec(spec)
    except SpecError as e:
        raise _fail(str(e)) from None
    try:
        if from_store:
            stores = [open_store(u) for u in from_store]
            how = f"finished runs {', '.join(from_store)}"
        else:
            if seeds < MIN_SEEDS:
                raise _fail(f"--seeds {seeds}: a reference needs at least {MIN_SEEDS} seeds")
            stores = [run_seed(s, s.seed + i, work, log=lambda m: err.print(m, highlight=False))
                      for i in range(seeds)]
            how = f"xdetox argo make-reference {spec} --seeds {seeds}"
        runs, version, digest = collect(stores)
        source = f"{how} on {datetime.now(UTC).date().isoformat()} ({platform.platform()})"
        ref = make_reference(runs, f"jobs/{spec.name}", digest, version, source, false_alarm_rate)
    except (ReferenceError, StoreError, ValueError) as e:
        raise _fail(str(e)) from None
    except StepFailed as e:
        raise _fail(str(e), EXIT_FAILED) from None
    target = output or spec.with_name(f"{spec.stem}-reference.json")
    target.write_text(ref.model_dump_json(indent=2) + "\n", encoding="utf-8")
    noisy = sum(f.kind == "noisy" for f in ref.figures)
    out.print(f"wrote {target}: {len(ref.figures)} figures ({noisy} noisy, {len(ref.figures) - noisy} exact) "
              f"from seeds {ref.seeds}")


@argo_app.command()
def submit(
    spec: SpecArg,
    cluster_config: ClusterOpt = None,
    publish_first: Annotated[bool, typer.Option("--publish/--no-publish",
                                                help="write manifests to the store before submitting")] = True,
    template: Annotated[bool, typer.Option(help="create the WorkflowTemplate instead of a Workflow")] = False,
) -> None:
    """Submit a spec as an Argo Workflow (Argo Server from ARGO_SERVER/ARGO_TOKEN, else the Kubernetes API)."""
    from xdetox.executors.argo import submit as sub
    from xdetox.executors.argo.publish import publish_manifests
    from xdetox.executors.argo.render import render as render_wf
    from xdetox.executors.argo.render import render_template
    from xdetox.store import StoreError, open_store

    s, p, cfg = _load(spec, cluster_config)
    opts = _options(spec, None)
    try:
        manifest = (render_template if template else render_wf)(p, s, cfg, opts)
    except ValueError as e:
        raise _fail(f"{spec}: {e}") from None
    _check(manifest, "the rendered workflow")
    if publish_first and not template:
        try:
            rs = publish_manifests(p, open_store(cfg.store.uri or s.store), s)
        except (StoreError, OSError, ValueError) as e:
            raise _fail(f"publishing manifests failed: {e} (use --no-publish to leave it to the workflow)",
                        EXIT_FAILED) from None
        err.print(f"published {len(p.steps)} manifests → {rs.uri}")
    target = sub.target_from_env(cfg.namespace)
    if template:
        raise _fail("--template: install WorkflowTemplates with the Helm chart (charts/xdetox)")
    try:
        created = sub.submit(manifest, target)
    except sub.SubmitError as e:
        raise _fail(str(e), EXIT_FAILED) from None
    name = (created.get("metadata") or {}).get("name", "?")
    out.print(f"[green]submitted[/green] {name} in namespace {target.namespace} via {target.via}")
    out.print(f"watch: xdetox argo status {name}    logs: xdetox argo logs {name}")
    sys.stdout.flush()


def _load_check(job_path: Path, cluster: Path | None) -> tuple[Any, Any]:
    from xdetox.executors.argo.config import ClusterConfigError, load_cluster_config
    from xdetox.executors.argo.scorer_check import load_job
    from xdetox.spec import SpecError

    try:
        job = load_job(job_path)
    except SpecError as e:
        raise _fail(str(e)) from None
    try:
        cfg = load_cluster_config(cluster)
    except ClusterConfigError as e:
        raise _fail(str(e)) from None
    return job, cfg


@argo_app.command("render-check")
def render_check_cmd(
    job: Annotated[Path, typer.Argument(help="scorer-check job (jobs/checks/<name>.yaml)")],
    output: Annotated[Path, typer.Option("-o", "--output", help="folder for workflow.yaml and workflowtemplate.yaml")],
    cluster_config: ClusterOpt = None,
) -> None:
    """Render a scorer check (`xdetox scorer check` in one pod on the score image) as an Argo Workflow."""
    from xdetox.executors.argo.goldens import dump
    from xdetox.executors.argo.scorer_check import render_check, render_check_template

    j, cfg = _load_check(job, cluster_config)
    wf, wt = render_check(j, cfg), render_check_template(j, cfg)
    _check(wf, "the rendered Workflow")
    _check(wt, "the rendered WorkflowTemplate")
    output.mkdir(parents=True, exist_ok=True)
    (output / "workflow.yaml").write_text(dump(wf, str(job)), encoding="utf-8")
    (output / "workflowtemplate.yaml").write_text(dump(wt, str(job)), encoding="utf-8")
    out.print(f"[green]✓[/green] scorer check {j.name} → {output}/workflow.yaml, {output}/workflowtemplate.yaml")


@argo_app.command("submit-check")
def submit_check(
    job: Annotated[Path, typer.Argument(help="scorer-check job (jobs/checks/<name>.yaml)")],
    cluster_config: ClusterOpt = None,
) -> None:
    """Submit a scorer check as an Argo Workflow; results go to the job's `results` prefix."""
    from xdetox.executors.argo import submit as sub
    from xdetox.executors.argo.scorer_check import render_check

    j, cfg = _load_check(job, cluster_config)
    manifest = render_check(j, cfg)
    _check(manifest, "the rendered workflow")
    target = sub.target_from_env(cfg.namespace)
    try:
        created = sub.submit(manifest, target)
    except sub.SubmitError as e:
        raise _fail(str(e), EXIT_FAILED) from None
    name = (created.get("metadata") or {}).get("name", "?")
    out.print(f"[green]submitted[/green] {name} in namespace {target.namespace} via {target.via}")
    out.print(f"watch: xdetox argo status {name}    logs: xdetox argo logs {name}    results: {j.results}/check.json")
    sys.stdout.flush()


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
        raise _fail(str(e), EXIT_FAILED) from None
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
        raise _fail(str(e), EXIT_FAILED) from None


def register(app: typer.Typer) -> None:
    app.add_typer(argo_app, name="argo")
