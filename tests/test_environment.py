"""Whatever changes results besides the manifest is fixed by the runner or recorded and checked on
reuse (issue 14 item 3): torch's thread count is pinned; thread count, device and library versions
are in the commit record, and a commit made under another setting is refused, not silently reused."""

from __future__ import annotations

import importlib.metadata
import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from tests import toy_steps
from xdetox.cli import app
from xdetox.manifest import CommitRecord, commit_key
from xdetox.plan import plan
from xdetox.spec import load_spec
from xdetox.steps import environment, registry
from xdetox.steps.context import StepContext
from xdetox.steps.environment import EnvironmentMismatch
from xdetox.steps.runner import run_step
from xdetox.store import Store, open_store

SEEN: list[int] = []


def torch_step(ctx: StepContext) -> dict:
    """A step whose numbers depend on the thread count, as generate/train/score do: it uses torch."""
    SEEN.append(torch.get_num_threads())
    return toy_steps.toy(ctx)


@pytest.fixture
def step_and_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.delenv(environment.THREADS_ENV, raising=False)
    monkeypatch.delenv(environment.ALLOW_MISMATCH_ENV, raising=False)
    monkeypatch.setattr(registry, "resolve", lambda _kind: torch_step)
    SEEN.clear()
    first = plan(load_spec("jobs/smoke.yaml")).steps[0]  # build_model: no inputs
    return first, open_store((tmp_path / "s").as_uri()).child("runs/r")


def test_the_step_runs_with_the_declared_thread_count_whatever_the_machine(
        step_and_store: tuple, monkeypatch: pytest.MonkeyPatch) -> None:
    step, store = step_and_store
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # a node whose torch default differs from the declared count
    try:
        monkeypatch.setenv(environment.THREADS_ENV, "3")
        record, cached = run_step(step, store, log=lambda _m: None)
        assert not cached and SEEN == [3]
        assert torch.get_num_threads() == 1  # the caller's own setting is back
    finally:
        torch.set_num_threads(before)
    assert record.versions["torch_threads"] == "3"
    assert record.versions["device"] == ("cuda" if torch.cuda.is_available() else "cpu")
    # the installed distribution's version: on the H200 image torch.__version__ says 2.11.0+cu130
    # where its metadata says 2.11.0 (the build is recorded as the device)
    assert record.versions["torch"] == importlib.metadata.version("torch")


def test_the_default_thread_count_is_fixed(step_and_store: tuple) -> None:
    step, store = step_and_store
    record, _ = run_step(step, store, log=lambda _m: None)
    assert SEEN == [2] and record.versions["torch_threads"] == "2"


def test_a_commit_under_another_thread_count_is_not_silently_reused(
        step_and_store: tuple, monkeypatch: pytest.MonkeyPatch) -> None:
    step, store = step_and_store
    monkeypatch.setenv(environment.THREADS_ENV, "1")
    run_step(step, store, log=lambda _m: None)
    monkeypatch.setenv(environment.THREADS_ENV, "2")
    with pytest.raises(EnvironmentMismatch) as e:
        run_step(step, store, log=lambda _m: None)
    msg = str(e.value)
    assert f"step {step.key}" in msg and "torch_threads 1 when committed, 2 here" in msg
    assert f"{environment.THREADS_ENV}=1" in msg
    assert SEEN == [1]  # nothing was recomputed under the key either
    # the same setting reuses it; the operator's explicit override reuses it with a warning
    monkeypatch.setenv(environment.THREADS_ENV, "1")
    assert run_step(step, store, log=lambda _m: None)[1]
    monkeypatch.setenv(environment.THREADS_ENV, "2")
    monkeypatch.setenv(environment.ALLOW_MISMATCH_ENV, "1")
    logged: list[str] = []
    assert run_step(step, store, log=logged.append)[1]
    assert any("warning: reusing step" in m and "torch_threads" in m for m in logged)


def _recorded_under(store: Store, key: str, **versions: str) -> None:
    """Rewrite the commit record as another machine would have written it."""
    rec = CommitRecord.model_validate_json(store.get_bytes(commit_key(key)))
    rec.versions.update(versions)
    store.put_text(commit_key(key), rec.model_dump_json())


@pytest.mark.parametrize(("field", "then"), [("device", "cuda" if not torch.cuda.is_available() else "cpu"),
                                              ("transformers", "0.0.1"), ("torch", "1.0.0")])
def test_a_commit_on_another_device_or_library_version_is_refused(
        step_and_store: tuple, field: str, then: str) -> None:
    step, store = step_and_store
    import transformers  # noqa: F401 - loaded, as by a real step, so its version is recorded

    run_step(step, store, log=lambda _m: None)
    _recorded_under(store, step.key, **{field: then})
    with pytest.raises(EnvironmentMismatch, match=f"{field} {then} when committed"):
        run_step(step, store, log=lambda _m: None)


def test_bad_thread_setting_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(environment.THREADS_ENV, "many")
    with pytest.raises(EnvironmentMismatch, match="XDETOX_TORCH_THREADS='many': expected a whole number"):
        environment.torch_threads()


def test_run_refuses_a_store_computed_under_another_setting_with_exit_2(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(environment.ALLOW_MISMATCH_ENV, raising=False)
    monkeypatch.setattr(registry, "resolve", lambda _kind: torch_step)
    store_uri = (tmp_path / "s").as_uri()
    args = ["run", "jobs/smoke.yaml", "--store", store_uri, "--no-progress"]
    first = CliRunner().invoke(app, args, env={environment.THREADS_ENV: "1"})
    assert first.exit_code == 0, first.output
    again = CliRunner().invoke(app, args, env={environment.THREADS_ENV: "2"})
    assert again.exit_code == 2, again.output
    assert "torch_threads 1 when committed, 2 here" in again.output and "Traceback" not in again.output
    p = plan(load_spec("jobs/smoke.yaml"))
    # nothing under the refused key changed
    rec = json.loads(open_store(store_uri).child(f"runs/{p.run_id}").get_text(commit_key(p.steps[0].key)))
    assert rec["versions"]["torch_threads"] == "1"
