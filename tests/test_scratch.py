"""Scratch is removed on every exit path, and a killed step's scratch on the next run (issue 14 item 6)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from xdetox.manifest import StepManifest
from xdetox.steps import registry
from xdetox.steps.context import StepContext, remove_stale_scratch
from xdetox.steps.runner import run_step
from xdetox.store import open_store


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid  # exited and reaped: no such process (until the pid is reused)


def test_stale_scratch_is_removed_live_and_foreign_kept(tmp_path: Path) -> None:
    dead = _dead_pid()
    stale = tmp_path / f"xdetox-generate-pid{dead}-abc"
    live = tmp_path / f"xdetox-train-pid{os.getppid()}-def"  # our parent: alive
    old_unowned = tmp_path / "xdetox-score-olddir"
    new_unowned = tmp_path / "xdetox-score-newdir"
    foreign = tmp_path / f"xdetox-notakind-pid{dead}-x"
    for p in (stale, live, old_unowned, new_unowned, foreign):
        (p / "sub").mkdir(parents=True)
        (p / "sub" / "f.bin").write_bytes(b"x")
    two_days = 2 * 24 * 3600
    os.utime(old_unowned, (time.time() - two_days, time.time() - two_days))
    removed = remove_stale_scratch(tmp_path)
    assert sorted(removed) == sorted([stale, old_unowned])
    assert not stale.exists() and not old_unowned.exists()
    assert live.exists() and new_unowned.exists() and foreign.exists()


def test_scratch_is_removed_when_the_step_fails_or_is_terminated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    store = open_store((tmp_path / "s").as_uri()).child("runs/r")
    seen: list[Path] = []

    def fails(ctx: StepContext) -> dict:
        seen.append(ctx.scratch)
        (ctx.scratch / "half.bin").write_bytes(b"x")
        raise RuntimeError("boom")

    def terminated(ctx: StepContext) -> dict:
        seen.append(ctx.scratch)
        os.kill(os.getpid(), signal.SIGTERM)  # what a deleted pod gets
        time.sleep(5)
        return {}

    with registry.overridden({"score": fails, "generate": terminated}):
        with pytest.raises(RuntimeError, match="boom"):
            run_step(StepManifest(kind="score", key="s1", run_id="r", label="s", output_prefix="o"), store,
                     log=lambda _m: None)
        with pytest.raises(SystemExit) as info:
            run_step(StepManifest(kind="generate", key="g1", run_id="r", label="g", output_prefix="o"), store,
                     log=lambda _m: None)
        assert info.value.code == 128 + signal.SIGTERM
    assert len(seen) == 2 and all(f"-pid{os.getpid()}-" in p.name for p in seen)
    assert not any(p.exists() for p in seen)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handler was put back
