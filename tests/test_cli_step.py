"""``xdetox step MANIFEST_URI``: the single entrypoint of every container image."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests import toy_steps
from xdetox.cli import app
from xdetox.executors.publish import publish, run_store
from xdetox.plan import plan
from xdetox.scoring.base import ShardIncomplete
from xdetox.scoring.perspective import PerspectiveFatalError
from xdetox.spec import load_spec
from xdetox.steps.runner import is_committed
from xdetox.store import NotFoundError, StoreError, open_store


@pytest.fixture
def toys():  # type: ignore[no-untyped-def]
    toy_steps.install()
    yield
    toy_steps.uninstall()


def _manifest_uri(store_uri: str, run_id: str, key: str) -> str:
    return f"{store_uri.rstrip('/')}/runs/{run_id}/steps/{key}/manifest.json"


def test_step_runs_from_manifest_uri(store_uri: str, toys: None) -> None:
    spec = load_spec("jobs/smoke.yaml")
    p = plan(spec)
    rs = run_store(open_store(store_uri), p.run_id)
    publish(p, rs, None)
    runner = CliRunner()
    for st in p.steps:  # what an Argo DAG does, one pod per step, in dependency order
        res = runner.invoke(app, ["step", _manifest_uri(store_uri, p.run_id, st.key)])
        assert res.exit_code == 0, res.output
        assert is_committed(rs, st.key)
    again = runner.invoke(app, ["step", _manifest_uri(store_uri, p.run_id, p.steps[0].key)])
    assert again.exit_code == 0 and "cached" in again.output


def test_step_refuses_bad_manifests(tmp_path: Path, toys: None) -> None:
    store_uri = (tmp_path / "s").as_uri()
    store = open_store(store_uri).child("runs/r")
    runner = CliRunner()
    res = runner.invoke(app, ["step", f"{store_uri}/runs/r/steps/nope/manifest.json"])
    assert res.exit_code == 2 and "no such manifest" in res.output
    res = runner.invoke(app, ["step", f"{store_uri}/runs/r/plan.json"])
    assert res.exit_code == 2 and "expected a URI ending in /steps/<key>/manifest.json" in res.output
    store.put_text("steps/k1/manifest.json", json.dumps({"kind": "train", "key": "k1", "run_id": "r",
                                                           "label": "x", "output_prefix": "models/k1",
                                                           "bogus": 1}))
    res = runner.invoke(app, ["step", f"{store_uri}/runs/r/steps/k1/manifest.json"])
    assert res.exit_code == 2 and "bogus" in res.output and "invalid manifest" in res.output
    store.put_text("steps/k2/manifest.json", json.dumps({"kind": "train", "key": "other", "run_id": "r",
                                                           "label": "x", "output_prefix": "models/k2"}))
    res = runner.invoke(app, ["step", f"{store_uri}/runs/r/steps/k2/manifest.json"])
    assert res.exit_code == 2 and "does not match" in res.output
    assert not is_committed(store, "k1") and not is_committed(store, "k2")


def test_step_failure_exits_1_without_commit(tmp_path: Path, toys: None) -> None:
    from xdetox.steps import registry

    def boom(ctx):  # type: ignore[no-untyped-def]
        raise RuntimeError("out of cheese")

    registry.register("train", boom)
    store_uri = (tmp_path / "s").as_uri()
    store = open_store(store_uri).child("runs/r")
    store.put_text("steps/k1/manifest.json", json.dumps({"kind": "train", "key": "k1", "run_id": "r",
                                                           "label": "x", "output_prefix": "models/k1"}))
    res = CliRunner().invoke(app, ["step", f"{store_uri}/runs/r/steps/k1/manifest.json"])
    assert res.exit_code == 1 and "out of cheese" in res.output
    assert not is_committed(store, "k1")


@pytest.mark.parametrize(
    ("error", "code"),
    [(ConnectionResetError("peer reset"), 75), (TimeoutError("read timed out"), 75), (ValueError("bad"), 1),
     (StoreError("s3: SlowDown after 5 attempts"), 75), (NotFoundError("no object inputs/x"), 1),
     # a Perspective storm past the shard's missing share is retried by the workflow; a bad key is not
     (ShardIncomplete("3 of 20 texts (15.0%) have no Perspective score"), 75),
     (PerspectiveFatalError("Perspective rejected the API key"), 1)],
)
def test_transient_step_failure_exits_75_for_the_workflow_to_retry(
    tmp_path: Path, toys: None, error: Exception, code: int
) -> None:
    from xdetox.steps import registry

    def flaky(ctx):  # type: ignore[no-untyped-def]
        raise error

    registry.register("train", flaky)
    store_uri = (tmp_path / "s").as_uri()
    store = open_store(store_uri).child("runs/r")
    store.put_text("steps/k1/manifest.json", json.dumps({"kind": "train", "key": "k1", "run_id": "r",
                                                           "label": "x", "output_prefix": "models/k1"}))
    res = CliRunner().invoke(app, ["step", f"{store_uri}/runs/r/steps/k1/manifest.json"])
    assert res.exit_code == code, res.output
    assert not is_committed(store, "k1")
