"""Local executor: rerun is a no-op; a SIGKILL mid-step then a rerun equals an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rich.console import Console

from tests import toy_steps
from xdetox.executors.local import StepFailed, run_plan
from xdetox.executors.publish import publish, run_store
from xdetox.plan import plan
from xdetox.spec import load_spec
from xdetox.steps import registry
from xdetox.store import open_store

SPEC = Path("jobs/smoke.yaml")
REPO = Path(__file__).resolve().parents[1]


def _snapshot(store_uri: str, run_id: str) -> dict[str, bytes]:
    """Every committed output of a run, by key (commit records minus their timings)."""
    rs = run_store(open_store(store_uri), run_id)
    import json

    out: dict[str, bytes] = {}
    for key in rs.list("steps/"):
        if key.endswith("_SUCCESS.json"):
            rec = json.loads(rs.get_bytes(key))
            for o in rec["outputs"]:
                out[o["key"]] = rs.get_bytes(o["key"])
            out[key] = json.dumps([rec["key"], rec["outputs"], rec["info"]]).encode()
    return out


def _run(store_uri: str) -> tuple:
    spec = load_spec(SPEC)
    p = plan(spec)
    rs = run_store(open_store(store_uri), p.run_id)
    publish(p, rs, SPEC.read_text())
    return p, run_plan(p, rs, console=Console(quiet=True), show_progress=False)


@pytest.fixture
def toys():  # type: ignore[no-untyped-def]
    toy_steps.install()
    yield
    toy_steps.uninstall()


def test_rerun_is_a_noop(tmp_path: Path, toys: None, monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "runs.log"
    monkeypatch.setenv(toy_steps.RUNS_LOG, str(log))
    uri = (tmp_path / "store").as_uri()
    p, first = _run(uri)
    assert first.count("ran") == len(p.steps) and first.count("cached") == 0
    ran_once = log.read_text().splitlines()
    assert sorted(ran_once) == sorted(s.key for s in p.steps)
    before = _snapshot(uri, p.run_id)
    _, second = _run(uri)
    assert second.count("ran") == 0 and second.count("cached") == len(p.steps)
    assert log.read_text().splitlines() == ran_once  # nothing ran again
    assert _snapshot(uri, p.run_id) == before


def test_failure_names_step_and_keeps_committed_work(tmp_path: Path, toys: None) -> None:
    uri = (tmp_path / "store").as_uri()

    def broken(ctx):  # type: ignore[no-untyped-def]
        raise ValueError("scorer exploded")

    registry.register("score", broken)
    with pytest.raises(StepFailed, match="score .* failed: ValueError: scorer exploded"):
        _run(uri)
    p = plan(load_spec(SPEC))
    rs = run_store(open_store(uri), p.run_id)
    committed = {k.split("/")[1] for k in rs.list("steps/") if k.endswith("_SUCCESS.json")}
    assert {s.key for s in p.steps if s.kind in {"build_model", "train"}} <= committed
    assert not any(s.key in committed for s in p.steps if s.kind in {"score", "evaluate", "report"})
    toy_steps.install()
    _, again = _run(uri)  # fixed: resumes from where it stopped
    assert again.count("cached") == len(committed)


@pytest.mark.parametrize("kill_kind", ["train", "generate"])
def test_sigkill_mid_step_then_rerun_equals_uninterrupted(tmp_path: Path, kill_kind: str) -> None:
    clean_uri = (tmp_path / "clean").as_uri()
    killed_uri = (tmp_path / "killed").as_uri()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "tests.toy_steps", str(SPEC), killed_uri]
    subprocess.run([sys.executable, "-m", "tests.toy_steps", str(SPEC), clean_uri], env=env, cwd=REPO,
                   check=True, capture_output=True, timeout=300)

    marker = tmp_path / "paused"
    proc = subprocess.Popen(cmd, env={**env, "TOY_PAUSE_KIND": kill_kind, "TOY_PAUSE_MARKER": str(marker)},
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert proc.poll() is None, "the run ended before reaching the step to kill"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    killed_key = marker.read_text()
    rs = run_store(open_store(killed_uri), "smoke")
    assert not rs.exists(f"steps/{killed_key}/_SUCCESS.json")  # nothing of the killed step counts

    subprocess.run(cmd, env=env, cwd=REPO, check=True, capture_output=True, timeout=300)
    clean, resumed = _snapshot(clean_uri, "smoke"), _snapshot(killed_uri, "smoke")
    assert resumed == clean
    for key, data in resumed.items():  # no row lost or duplicated
        if key.endswith(".jsonl"):
            lines = data.decode().splitlines()
            assert len(lines) == len(set(lines)) == 5
