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
from xdetox.manifest import failure_key, partial_prefix, running_key
from xdetox.plan import plan
from xdetox.spec import load_spec
from xdetox.steps import registry
from xdetox.steps.context import StepContext
from xdetox.steps.runner import run_step
from xdetox.store import open_store
from xdetox.store.lease import acquire
from xdetox.store.partial import PartialState


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


def test_status_shows_how_far_an_interrupted_step_got(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Text and --json show a killed step's stored progress; a shard names its index of the count."""
    store_uri = (tmp_path / "s").as_uri()
    p = plan(load_spec("jobs/smoke.yaml"))
    rs = run_store(open_store(store_uri), p.run_id)
    publish(p, rs, None)
    gen = next(s for s in p.steps if s.kind == "generate" and s.shard is not None and s.shard.index == 1)
    score = next(s for s in p.steps if s.kind == "score")
    chunk = tmp_path / "chunk.jsonl"
    chunk.write_text("{}\n")

    def killed_after_two_chunks(ctx: StepContext) -> dict:
        # the step's real partial-state helper; the kill comes from the test, after 2 chunks of 48
        partial = ctx.partial("prompts", total=120)
        partial.put_chunk(0, chunk, done=48)
        partial.put_chunk(1, chunk, done=96)
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(registry, "resolve", lambda _kind: killed_after_two_chunks)
    with pytest.raises(KeyboardInterrupt):
        run_step(gen, rs, log=lambda _m: None)
    # a SIGKILL leaves the runner's marker behind (run_step's finally removes it on a KeyboardInterrupt)
    rs.put_text(running_key(gen.key), json.dumps({"host": "node-2", "pid": 99, "started_at": "2026-12-04T13:00:00+00:00"}))
    # a score step with stored chunks and no attempt running or failed: partial
    PartialState(rs, partial_prefix(score.key), "rows", total=480).put_chunk(0, chunk, done=300)

    rows = {r["key"]: r for r in _status(store_uri)["steps"]}
    assert rows[gen.key]["state"] == "interrupted"
    assert rows[gen.key]["progress"] == {"done": 96, "total": 120, "unit": "prompts", "pieces": 2,
                                         "text": "generate 2/2: 96 of 120 prompts"}
    assert rows[score.key]["state"] == "partial"
    assert rows[score.key]["progress"]["text"] == "score 1/2: 300 of 480 rows"
    assert all("progress" not in r for k, r in rows.items() if k not in {gen.key, score.key})

    res = CliRunner().invoke(app, ["status", "jobs/smoke.yaml", "--store", store_uri], env={"COLUMNS": "400"})
    assert res.exit_code == 0, res.output
    assert "generate 2/2: 96 of 120 prompts" in res.output and "score 1/2: 300 of 480 rows" in res.output

    # a committed step is committed, whatever partial state an attempt may have left
    monkeypatch.setattr(registry, "resolve", lambda _kind: lambda _ctx: {})
    run_step(gen, rs, log=lambda _m: None)
    after = {r["key"]: r for r in _status(store_uri)["steps"]}[gen.key]
    assert after["state"] == "committed" and "progress" not in after


def test_train_progress_reads_checkpoint_of_steps(tmp_path: Path) -> None:
    p = plan(load_spec("jobs/smoke.yaml"))
    train = next(s for s in p.steps if s.kind == "train")
    rs = open_store((tmp_path / "s").as_uri()).child(f"runs/{p.run_id}")
    ckpt = tmp_path / "checkpoint-50"
    ckpt.mkdir()
    (ckpt / "trainer_state.json").write_text("{}")
    PartialState(rs, partial_prefix(train.key), "steps", total=120).put_checkpoint(ckpt, done=50)
    row = {r["key"]: r for r in _status(tmp_path.joinpath("s").as_uri())["steps"]}[train.key]
    assert (row["state"], row["progress"]["text"]) == ("partial", "train: 50 of 120 steps")
