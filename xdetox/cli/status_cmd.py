"""``xdetox status``: how far a spec's run got, per step, from what its store holds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from xdetox.cli.app import app
from xdetox.cli.errors import load_spec, open_spec_store, out, store_failed


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

    s = load_spec(spec)
    p = make_plan(s)
    rs = run_store(open_spec_store(store, s.store), p.run_id)
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
        raise store_failed(e) from None
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
    """``generate 2/4: 96 of 120 prompts`` (shard 2 of 4), ``train: 50 of 120 steps``: the unit is
    the step's own (its partial state names it), so no kind is special-cased here."""
    where = f" {step.shard.index + 1}/{step.shard.count}" if step.shard is not None else ""
    return f"{step.kind}{where}: {done}"
