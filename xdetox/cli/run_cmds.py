"""``xdetox run``: run an experiment on this machine."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from xdetox.cli.app import app
from xdetox.cli.errors import (
    EXIT_FAILED,
    EXIT_INVALID,
    err,
    fail,
    load_spec,
    open_spec_store,
    show_traceback,
    step_exit_code,
    store_failed,
)


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
    s = load_spec(spec)
    if offline_scores:
        if "offline_scores" not in type(s.scoring).model_fields:
            raise fail(f"--offline-scores: scorer kind {s.scoring.kind!r} has no score cache")
        # a spec field, so the offline steps get their own keys and never pass for the online ones
        s = s.model_copy(update={"scoring": s.scoring.model_copy(update={"offline_scores": True})})
    from xdetox.executors.local import StepFailed, run_plan
    from xdetox.executors.publish import publish, run_store
    from xdetox.plan import plan as make_plan
    from xdetox.store import StoreError
    from xdetox.store.lease import LeaseHeldError
    from xdetox.store.lease import acquire as acquire_lease

    p = make_plan(s)
    root = open_spec_store(store, s.store)
    rs = run_store(root, p.run_id)
    err.print(f"run [bold]{p.run_id}[/bold]: {len(p.steps)} steps → {rs.uri}")
    try:
        # One `xdetox run` per spec and store at a time; Argo's `xdetox step` pods take no lease.
        lease = acquire_lease(rs, wait_s=float("inf") if wait else 0.0, break_stale=break_lease)
    except LeaseHeldError as e:
        raise fail(str(e), EXIT_FAILED) from None
    except StoreError as e:  # before the first step: the store is unusable as given
        raise store_failed(e) from None
    try:
        publish(p, rs, spec.read_text(encoding="utf-8"))
        result = run_plan(p, rs, console=err, show_progress=progress)
    except StoreError as e:
        raise store_failed(e) from None
    except StepFailed as e:
        show_traceback()  # with -v: the step's own traceback, chained under StepFailed
        err.print(f"[bold red]failed:[/bold red] {e}", highlight=False, soft_wrap=True)
        err.print("committed steps are kept; fix the cause and run the same command again to resume")
        raise typer.Exit(EXIT_INVALID if step_exit_code(e.cause) == EXIT_INVALID else EXIT_FAILED) from None
    finally:
        lease.release()
    err.print(
        f"[bold green]done[/bold green] in {time.perf_counter() - t0:.1f}s: "
        f"{result.count('ran')} ran, {result.count('cached')} cached"
    )
    _print_results(rs)


def _print_results(rs: Any) -> None:
    from xdetox.cli.report_cmds import print_summary
    from xdetox.store import NotFoundError

    try:
        metrics = json.loads(rs.get_text("results/metrics.json"))
    except (NotFoundError, FileNotFoundError):
        return
    print_summary(rs, metrics)
