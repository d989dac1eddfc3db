"""A run lease in the store: one `xdetox run` of a spec per store at a time (issue 14 item 4)."""

from __future__ import annotations

import json
import os
import platform
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from xdetox.cli import app
from xdetox.executors.publish import run_store
from xdetox.plan import plan
from xdetox.spec import load_spec
from xdetox.store import open_store
from xdetox.store.lease import LEASE_KEY, LeaseHeldError, acquire


def test_second_run_is_refused_naming_the_holder(store_uri: str) -> None:
    store = open_store(store_uri).child("runs/r")
    first = acquire(store, ttl_s=30)
    try:
        with pytest.raises(LeaseHeldError) as info:
            acquire(store, ttl_s=30)
        msg = str(info.value)
        assert f"host {platform.node()}" in msg and f"pid {os.getpid()}" in msg
        assert f"started {first.record['started_at']}" in msg and not info.value.stale
        # a live lease is not broken, even when asked
        with pytest.raises(LeaseHeldError):
            acquire(store, ttl_s=30, break_stale=True)
    finally:
        first.release()
    assert not store.exists(LEASE_KEY)
    acquire(store, ttl_s=30).release()  # free again


def test_stale_lease_is_named_and_can_be_broken(store_uri: str) -> None:
    store = open_store(store_uri).child("runs/r")
    # A killed run's lease: expired, nobody heartbeating it.
    dead = {"token": "dead", "host": "node-7", "pid": 4242, "started_at": "2026-12-04T10:00:00+00:00",
            "expires": time.time() - 5, "expires_at": "2026-12-04T10:02:00+00:00"}
    store.put_bytes(LEASE_KEY, json.dumps(dead).encode())
    with pytest.raises(LeaseHeldError, match=r"host node-7, pid 4242, started 2026-12-04T10:00:00.*--break-lease"):
        acquire(store, ttl_s=30)
    lease = acquire(store, ttl_s=30, break_stale=True)
    assert json.loads(store.get_bytes(LEASE_KEY))["token"] == lease.token
    lease.release()


def test_heartbeat_keeps_a_lease_alive_and_wait_gets_it_after_release(tmp_path: Path) -> None:
    store = open_store((tmp_path / "s").as_uri())
    first = acquire(store, ttl_s=0.6)
    time.sleep(1.0)  # longer than the TTL: only the heartbeat keeps it from going stale
    with pytest.raises(LeaseHeldError) as info:
        acquire(store, ttl_s=0.6, break_stale=True)
    assert not info.value.stale
    threading.Timer(0.5, first.release).start()
    t0 = time.monotonic()
    second = acquire(store, ttl_s=5, wait_s=10, poll_s=0.1)
    assert 0.3 < time.monotonic() - t0 < 5
    second.release()


def test_cli_run_refuses_while_another_run_holds_the_lease(tmp_path: Path) -> None:
    store_uri = (tmp_path / "s").as_uri()
    p = plan(load_spec("jobs/smoke.yaml"))
    rs = run_store(open_store(store_uri), p.run_id)
    holder = acquire(rs, ttl_s=30)
    try:
        res = CliRunner().invoke(app, ["run", "jobs/smoke.yaml", "--store", store_uri, "--no-progress"])
        assert res.exit_code == 1, res.output
        assert "another run of this spec is in progress" in res.output and f"pid {os.getpid()}" in res.output
        assert not rs.exists("plan.json")  # refused before anything was published
        status = CliRunner().invoke(app, ["status", "jobs/smoke.yaml", "--store", store_uri])
        assert status.exit_code == 0 and f"lease: running: host {platform.node()}" in status.output
    finally:
        holder.release()
