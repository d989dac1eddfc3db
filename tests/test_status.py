"""`xdetox status` per step: committed, running (lease holder), interrupted, failed (last error), --json
(issue 14 item 6)."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests import toy_steps
from xdetox.cli import app
from xdetox.executors.publish import publish, run_store
from xdetox.manifest import failure_key, running_key
from xdetox.plan import plan
from xdetox.spec import load_spec
from xdetox.steps import registry
from xdetox.steps.runner import run_step
from xdetox.store import open_store
from xdetox.store.lease import acquire


def _status(store_uri: str) -> dict:
    res = CliRunner().invoke(app, ["status", "jobs/smoke.yaml", "--store", store_uri, "--json"])
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def test_status_shows_committed_failed_running_and_pending(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store_uri = (tmp_path / "s").as_uri()
    p = plan(load_spec("jobs/smoke.yaml"))
    rs = run_store(open_store(store_uri), p.run_id)
    publish(p, rs, None)
    first, second, third = p.steps[0], p.steps[1], p.steps[2]
    toy_steps.install()
    try:
        run_step(first, rs, log=lambda _m: None)

        def boom(_ctx: object) -> dict:
            raise RuntimeError("disk full on purpose")

        monkeypatch.setattr(registry, "resolve", lambda _kind: boom)
        with pytest.raises(RuntimeError):
            run_step(second, rs, log=lambda _m: None)
    finally:
        toy_steps.uninstall()
    assert rs.exists(failure_key(second.key)) and not rs.exists(running_key(second.key))
    # A step a live run has started (the runner's marker) shows as running with its holder.
    rs.put_text(running_key(third.key), json.dumps({"host": "node-3", "pid": 77, "started_at": "2026-12-04T13:00:00+00:00"}))
    lease = acquire(rs, ttl_s=30)
    try:
        doc = _status(store_uri)
    finally:
        lease.release()
    states = {r["key"]: r for r in doc["steps"]}
    assert states[first.key]["state"] == "committed"
    assert states[second.key]["state"] == "failed"
    assert states[second.key]["error"] == "RuntimeError: disk full on purpose"
    assert (states[third.key]["state"], states[third.key]["host"], states[third.key]["pid"]) == ("running", "node-3", 77)
    assert {r["state"] for r in doc["steps"][3:]} == {"pending"}
    assert doc["committed"] == 1 and len(doc["steps"]) == len(p.steps)
    assert doc["lease"]["host"] == platform.node() and doc["lease"]["pid"] == os.getpid()
    # Without a live run the same marker is a killed attempt, not a running one.
    after = {r["key"]: r["state"] for r in _status(store_uri)["steps"]}
    assert after[third.key] == "interrupted"


def test_commit_record_names_the_torch_thread_count(tmp_path: Path) -> None:
    import torch

    store = open_store((tmp_path / "s").as_uri()).child("runs/r")
    p = plan(load_spec("jobs/smoke.yaml"))
    toy_steps.install()
    try:
        record, _ = run_step(p.steps[0], store, log=lambda _m: None)
    finally:
        toy_steps.uninstall()
    assert record.versions["torch_threads"] == str(torch.get_num_threads())
