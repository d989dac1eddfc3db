"""``xdetox``: validate, plan, run and inspect experiments; ``xdetox step`` is every image's entrypoint."""

from __future__ import annotations

import importlib
import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(
    name="xdetox",
    help="Cross-lingual LLM detoxification experiments: train in one language, measure in many.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console()
err = Console(stderr=True)

EXIT_INVALID = 2  # bad input: spec, manifest, data
EXIT_FAILED = 1  # a step failed while running
EXIT_RETRIABLE = 75  # EX_TEMPFAIL: a transient failure; the Argo workflow retries it (render.RETRY_EXPRESSION)


def _retriable(e: BaseException) -> bool:
    """Transient: the network or a server, not the step's input or code (an error may say so itself).

    A StoreError is one the store could not get past with its own retries (an S3 outage, throttling):
    worth another pod later. A missing object (NotFoundError) is not: it will still be missing.
    """
    from xdetox.store import NotFoundError, StoreError

    if isinstance(e, NotFoundError):
        return False
    return bool(getattr(e, "retriable", False)) or isinstance(e, ConnectionError | TimeoutError | StoreError)


def _step_exit_code(e: BaseException) -> int:
    """2 for a committed step computed under another setting (the operator's to fix: threads,
    device, library versions), 75 for a transient failure, else 1."""
    from xdetox.steps.environment import EnvironmentMismatch

    if isinstance(e, EnvironmentMismatch):
        return EXIT_INVALID
    return EXIT_RETRIABLE if _retriable(e) else EXIT_FAILED


@app.callback()
def _verbosity(
    verbose: Annotated[bool, typer.Option("--verbose", "-v",
                                          help="show third-party logs, warnings and progress bars")] = False,
) -> None:
    """Library output follows the CLI's verbosity (before any command imports the libraries)."""
    from xdetox.cli.library_output import configure_library_output

    configure_library_output(verbose)


def _fail(message: str, code: int = EXIT_INVALID) -> typer.Exit:
    err.print(f"[bold red]error:[/bold red] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def _load(spec_path: Path):  # type: ignore[no-untyped-def]
    from xdetox.scoring.calibrated import pin_calibration
    from xdetox.spec import SpecError, load_spec

    try:
        return pin_calibration(load_spec(spec_path), str(spec_path))  # a changed map is a new step key
    except SpecError as e:
        for p in e.problems:
            err.print(f"[red]✗[/red] {p.render(str(spec_path))}", highlight=False, soft_wrap=True)
        raise typer.Exit(EXIT_INVALID) from None


def _debug() -> bool:
    return "--debug" in sys.argv or bool(__import__("os").environ.get("XDETOX_DEBUG"))


def _open_root(option: str | None, spec_store: str):  # type: ignore[no-untyped-def]
    """Open the store a command names, as one clear error (exit 2) when its URI is unusable."""
    from xdetox.store import open_store

    uri, where = (option, "--store") if option else (spec_store, "spec field 'store'")
    try:
        return open_store(uri)
    except ValueError as e:  # UnsafeKeyError is a ValueError too
        if _debug():
            raise
        raise _fail(f"{where}: {e}") from None


def _store_failed(e: BaseException) -> typer.Exit:
    """A store that failed after its retries, as one line (the traceback with XDETOX_DEBUG=1)."""
    if _debug():
        raise e
    return _fail(f"store: {e}", EXIT_FAILED)


def _data_problems(s) -> list[str]:  # type: ignore[no-untyped-def]
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
    s = _load(spec)
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
    from xdetox.plan import plan as make_plan

    s = _load(spec)
    p = make_plan(s)
    if as_json:
        from xdetox.cli.plan_extras import plan_json

        sys.stdout.write(json.dumps(plan_json(p), indent=2) + "\n")
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
    extras = importlib.import_module("xdetox.cli.plan_extras")
    out.print(extras.settings_line(p))
    if estimate:
        extras.print_estimate(p, s, out)


@app.command()
def run(
    spec: Annotated[Path, typer.Argument(help="experiment spec (YAML)")],
    store: Annotated[str | None, typer.Option(help="store URI (file://… or s3://…); default: the spec's")] = None,
    progress: Annotated[bool, typer.Option(help="show progress bars")] = True,
    offline_scores: Annotated[bool, typer.Option(
        "--offline-scores", help="API scorers use only the store's score cache; uncached texts stay missing")] = False,
    wait: Annotated[bool, typer.Option("--wait", help="if another run of this spec holds the store, wait for it")]
    = False,
    break_lease: Annotated[bool, typer.Option(
        "--break-lease", help="take over the lease of a run that stopped heartbeating (killed)")] = False,
) -> None:
    """Run an experiment on this machine; committed steps are reused, a killed run resumes."""
    t0 = time.perf_counter()
    s = _load(spec)
    if offline_scores:
        if "offline_scores" not in type(s.scoring).model_fields:
            err.print(f"[bold red]error:[/bold red] --offline-scores: scorer kind {s.scoring.kind!r} has no score cache")
            raise typer.Exit(EXIT_INVALID)
        # a spec field, so the offline steps get their own keys and never pass for the online ones
        s = s.model_copy(update={"scoring": s.scoring.model_copy(update={"offline_scores": True})})
    from xdetox.executors.local import StepFailed, run_plan
    from xdetox.executors.publish import publish, run_store
    from xdetox.plan import plan as make_plan
    from xdetox.store import StoreError
    from xdetox.store.lease import LeaseHeldError
    from xdetox.store.lease import acquire as acquire_lease

    p = make_plan(s)
    root = _open_root(store, s.store)
    rs = run_store(root, p.run_id)
    err.print(f"run [bold]{p.run_id}[/bold]: {len(p.steps)} steps → {rs.uri}")
    try:
        # One `xdetox run` per spec and store at a time; Argo's `xdetox step` pods take no lease.
        lease = acquire_lease(rs, wait_s=float("inf") if wait else 0.0, break_stale=break_lease)
    except LeaseHeldError as e:
        raise _fail(str(e), EXIT_FAILED) from None
    except StoreError as e:  # before the first step: the store is unusable as given
        raise _store_failed(e) from None
    try:
        publish(p, rs, spec.read_text(encoding="utf-8"))
        result = run_plan(p, rs, console=err, show_progress=progress)
    except StoreError as e:
        raise _store_failed(e) from None
    except StepFailed as e:
        err.print(f"[bold red]failed:[/bold red] {e}", highlight=False, soft_wrap=True)
        err.print("committed steps are kept; fix the cause and run the same command again to resume")
        raise typer.Exit(EXIT_INVALID if _step_exit_code(e.cause) == EXIT_INVALID else EXIT_FAILED) from None
    finally:
        lease.release()
    err.print(
        f"[bold green]done[/bold green] in {time.perf_counter() - t0:.1f}s: "
        f"{result.count('ran')} ran, {result.count('cached')} cached"
    )
    _print_results(rs)


def _print_results(rs) -> None:  # type: ignore[no-untyped-def]
    from xdetox.store import NotFoundError

    try:
        metrics = json.loads(rs.get_text("results/metrics.json"))
    except (NotFoundError, FileNotFoundError):
        return
    try:
        summary = importlib.import_module("xdetox.report.summary")
        out.print(summary.summary_table(metrics))
    except ModuleNotFoundError:
        pass
    local = rs.local_path("results/report.html")
    where = str(local.parent) if local is not None else f"{rs.uri}/results"
    out.print(f"report: {where}/report.md and report.html")


@app.command()
def step(
    manifest_uri: Annotated[str, typer.Argument(help="…/runs/<run-id>/steps/<key>/manifest.json (file or s3://)")],
) -> None:
    """Run one step from its manifest: the entrypoint of every container image."""
    from pydantic import ValidationError

    from xdetox.manifest import StepManifest
    from xdetox.steps.runner import run_step
    from xdetox.store import NotFoundError, StoreError, open_store

    uri = manifest_uri.rstrip("/")
    marker = "/steps/"
    if marker not in uri or not uri.endswith("/manifest.json"):
        raise _fail(f"{manifest_uri}: expected a URI ending in /steps/<key>/manifest.json")
    root, _, rest = uri.rpartition(marker)
    key = rest.removesuffix("/manifest.json")
    try:
        store = open_store(root if "://" in root else str(Path(root).resolve()))
        raw = store.get_bytes(f"steps/{key}/manifest.json")
    except (NotFoundError, FileNotFoundError):
        raise _fail(f"{manifest_uri}: no such manifest") from None
    except StoreError as e:  # the store is there but failing: transient, the workflow retries it
        raise _fail(f"{manifest_uri}: {e}", EXIT_RETRIABLE) from None
    except ValueError as e:
        raise _fail(f"{manifest_uri}: {e}") from None
    try:
        manifest = StepManifest.model_validate_json(raw)
    except ValidationError as e:
        lines = [f"{'.'.join(str(x) for x in er['loc'])}: {er['msg']}" for er in e.errors()]
        raise _fail(f"{manifest_uri}: invalid manifest:\n  " + "\n  ".join(lines)) from None
    if manifest.key != key:
        raise _fail(f"{manifest_uri}: manifest key {manifest.key} does not match its path ({key})")
    from xdetox.steps.runner import check_manifest_keys
    from xdetox.store import UnsafeKeyError

    try:
        check_manifest_keys(manifest)
    except UnsafeKeyError as e:
        raise _fail(f"{manifest_uri}: {e}") from None
    t0 = time.perf_counter()
    try:
        record, cached = run_step(manifest, store, log=lambda m: err.print(m, highlight=False))
    except Exception as e:  # noqa: BLE001 - one line for the pod log, full trace on demand
        err.print(f"[bold red]step {manifest.kind} {manifest.key} failed:[/bold red] {type(e).__name__}: {e}")
        if _debug():
            raise
        raise typer.Exit(_step_exit_code(e)) from None
    state = "cached" if cached else f"done in {time.perf_counter() - t0:.1f}s"
    err.print(f"step {manifest.kind} {manifest.key}: {state}, {len(record.outputs)} outputs")


@app.command()
def status(
    spec: Annotated[Path, typer.Argument(help="experiment spec (YAML)")],
    store: Annotated[str | None, typer.Option(help="store URI; default: the spec's")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the states as JSON")] = False,
) -> None:
    """Per step of a spec's plan: committed, running (lease holder), interrupted, failed (last error),
    partial (stored progress, no attempt running) or pending; with how far an unfinished one got."""
    from xdetox.executors.publish import run_store
    from xdetox.manifest import partial_prefix
    from xdetox.plan import plan as make_plan
    from xdetox.steps.runner import is_committed, read_failure, read_running
    from xdetox.store import StoreError
    from xdetox.store.lease import is_stale, read_lease
    from xdetox.store.partial import read_progress

    s = _load(spec)
    p = make_plan(s)
    rs = run_store(_open_root(store, s.store), p.run_id)
    rows: list[dict] = []
    try:
        holder = read_lease(rs)
        live = holder is not None and not is_stale(holder)
        for st in p.steps:
            row: dict = {"kind": st.kind, "key": st.key, "label": st.label, "state": "pending"}
            if is_committed(rs, st.key):
                row["state"] = "committed"
            elif (failure := read_failure(rs, st.key)) is not None:
                row.update(state="failed", error=failure.get("error"), failed_at=failure.get("at"))
            # Started and not ended: running while a live run holds the lease (a killed run's
            # marker stays behind, so without a live lease it is only shown as "interrupted").
            if row["state"] != "committed" and (started := read_running(rs, st.key)) is not None:
                row.pop("error", None)
                row.pop("failed_at", None)
                row.update(state="running" if live else "interrupted", host=started.get("host"),
                           pid=started.get("pid"), started_at=started.get("started_at"))
            # How far a running, killed or failed attempt got: its stored partial state, which
            # the next attempt resumes from ("generate 2/4: 96 of 120 prompts").
            if row["state"] != "committed" and (progress := read_progress(rs, partial_prefix(st.key))) is not None:
                row["progress"] = {**progress.as_dict(), "text": _progress_text(st, progress.text())}
                if row["state"] == "pending":
                    row["state"] = "partial"
            rows.append(row)
    except StoreError as e:
        raise _store_failed(e) from None
    lease = None if holder is None else {
        "state": "stale" if is_stale(holder) else "held",
        **{k: holder.get(k) for k in ("host", "pid", "started_at", "expires_at")}}
    done = sum(r["state"] == "committed" for r in rows)
    if as_json:
        print(json.dumps({"run_id": p.run_id, "store": rs.uri, "committed": done, "steps": rows, "lease": lease},
                         indent=2))
        return
    table = Table(title=f"{p.run_id} at {rs.uri}")
    for col in ("kind", "key", "label", "state"):
        table.add_column(col)
    for r in rows:
        state = {
            "committed": "[green]committed[/green]", "pending": "pending",
            "running": f"[cyan]running[/cyan] on {r.get('host')} pid {r.get('pid')} since {r.get('started_at')}",
            "interrupted": f"[yellow]interrupted[/yellow] (started {r.get('started_at')} on {r.get('host')})",
            "partial": "[yellow]partial[/yellow]",
        }.get(r["state"]) or f"[red]failed[/red] {r.get('failed_at')}: {r.get('error')}"
        if "progress" in r:
            state += f"; {r['progress']['text']}"
        table.add_row(r["kind"], r["key"], r["label"], state)
    out.print(table)
    out.print(f"{done}/{len(p.steps)} steps committed")
    if lease is not None:
        state = "stopped heartbeating (killed?)" if lease["state"] == "stale" else "running"
        out.print(f"lease: {state}: host {lease['host']}, pid {lease['pid']}, "
                  f"started {lease['started_at']}, expires {lease['expires_at']}")


def _progress_text(step: Any, done: str) -> str:
    """``generate 2/4: 96 of 120 prompts`` (shard 2 of 4), ``train: checkpoint 50 of 120 steps``."""
    where = f" {step.shard.index + 1}/{step.shard.count}" if step.shard is not None else ""
    what = "checkpoint " if step.kind == "train" else ""
    return f"{step.kind}{where}: {what}{done}"


# Sub-commands that live with their parts: report/compare, argo, scores, metrics, scorer.
for _module in ("xdetox.cli.report_cmds", "xdetox.cli.argo_cmds",
                "xdetox.cli.scores_cmds", "xdetox.cli.metrics_cmds", "xdetox.cli.scorer_cmds"):
    try:
        importlib.import_module(_module).register(app)
    except ModuleNotFoundError as _e:
        if _e.name != _module:
            raise


def main() -> None:
    app()


if __name__ == "__main__":
    main()
