"""S3 reads survive GET bodies cut midway (issue 14 item 1), against the real SeaweedFS server."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from tests.s3_fault_proxy import cutting_proxy
from tests.s3_server import S3Server
from xdetox.manifest import StepManifest
from xdetox.steps import registry
from xdetox.steps.context import StepContext
from xdetox.steps.runner import run_step
from xdetox.store import StoreError, open_store


def _rows(i: int) -> bytes:
    # Bodies of a few KiB, so a cut lands inside the body, not in the headers.
    return "".join(json.dumps({"i": i, "j": j, "text": "x" * 40}) + "\n" for j in range(60)).encode()


def test_cut_get_bodies_are_retried_with_identical_results(
    s3_store_uri: str, s3_env: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    direct = open_store(s3_store_uri)
    expected = {f"runs/r/in/{i}.jsonl": _rows(i) for i in range(12)}
    for key, data in expected.items():
        direct.put_bytes(key, data)

    def produce(ctx: StepContext) -> dict:
        for i in range(4):
            ctx.put_bytes(f"part-{i}.jsonl", _rows(100 + i))
        return {}

    def consume(ctx: StepContext) -> dict:
        rows = list(ctx.iter_input_rows("up"))
        folder = ctx.input_dir("up")
        files = sorted(p.name for p in folder.iterdir())
        ctx.put_json("n.json", {"n": len(rows), "files": files})
        return {"n": len(rows)}

    monkeypatch.setenv("XDETOX_CACHE_DIR", str(tmp_path / "cache"))
    with registry.overridden({"generate": produce, "evaluate": consume}):
        with cutting_proxy(s3_env.endpoint, share=0.10, seed=11) as (endpoint, stats):
            monkeypatch.setenv("XDETOX_S3_ENDPOINT_URL", endpoint)
            store = open_store(s3_store_uri)
            for _ in range(2):
                for key, data in expected.items():
                    assert store.get_bytes(key, hashlib.sha256(data).hexdigest()) == data
                    assert "".join(store.iter_lines(key)).encode() == data
            run = store.child("runs/r")
            up = StepManifest(kind="generate", key="up1", run_id="r", label="up", output_prefix="gen/g")
            down = StepManifest(kind="evaluate", key="down1", run_id="r", label="down", output_prefix="ev/d",
                                inputs={"up": ["up1"]})
            run_step(up, run, log=lambda _m: None)
            record, _ = run_step(down, run, log=lambda _m: None)
            down_bytes = run.get_bytes("ev/d/n.json")
        # 2 * 12 * 2 direct GETs alone: with 10 % cut, dozens of GETs and several cuts happened.
        assert stats.gets >= 48 and stats.cut >= 3, (stats.gets, stats.cut)
        assert record.info == {"n": 4 * 60}
        assert json.loads(down_bytes) == {"n": 240, "files": [f"part-{i}.jsonl" for i in range(4)]}
        # The same bytes the server holds, read without the proxy.
        monkeypatch.setenv("XDETOX_S3_ENDPOINT_URL", s3_env.endpoint)
        assert open_store(s3_store_uri).child("runs/r").get_bytes("ev/d/n.json") == down_bytes


def test_every_get_cut_fails_naming_the_object(
    s3_store_uri: str, s3_env: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    open_store(s3_store_uri).put_bytes("runs/r/doomed.jsonl", _rows(1))
    monkeypatch.setenv("XDETOX_S3_MAX_ATTEMPTS", "3")
    with cutting_proxy(s3_env.endpoint, share=1.0) as (endpoint, stats):
        monkeypatch.setenv("XDETOX_S3_ENDPOINT_URL", endpoint)
        with pytest.raises(StoreError, match=r"GET s3://.*/prefix/runs/r/doomed\.jsonl failed after 3 attempts"):
            open_store(s3_store_uri).get_bytes("runs/r/doomed.jsonl")
    assert stats.cut == 3  # one GET per attempt, every one cut


def test_a_body_that_does_not_match_its_commit_record_is_refused(s3_store_uri: str, s3_env: S3Server,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    store = open_store(s3_store_uri)
    store.put_bytes("runs/r/a.txt", b"what the server holds")
    monkeypatch.setenv("XDETOX_S3_MAX_ATTEMPTS", "2")
    wrong = hashlib.sha256(b"what the commit record promised").hexdigest()
    with pytest.raises(StoreError, match=r"runs/r/a\.txt failed after 2 attempts: _BodyMismatch: sha256"):
        open_store(s3_store_uri).get_bytes("runs/r/a.txt", wrong)
