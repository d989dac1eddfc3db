"""Store contract: the same tests against file:// and a real SeaweedFS S3 server."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from xdetox.manifest import StepManifest, commit_key
from xdetox.steps import registry
from xdetox.steps.context import InputMissingError, StepContext
from xdetox.steps.runner import is_committed, run_step
from xdetox.store import NotFoundError, UnsafeKeyError, open_store

MiB = 1024 * 1024


def test_put_get_list(store_uri: str) -> None:
    store = open_store(store_uri)
    store.put_text("runs/r1/a.txt", "alpha")
    store.put_bytes("runs/r1/sub/b.bin", b"\x00\x01")
    store.put_text("runs/r2/c.txt", "gamma")
    assert store.get_text("runs/r1/a.txt") == "alpha"
    assert store.get_bytes("runs/r1/sub/b.bin") == b"\x00\x01"
    assert store.list("runs/r1/") == ["runs/r1/a.txt", "runs/r1/sub/b.bin"]
    assert store.exists("runs/r2/c.txt") and not store.exists("runs/r2/missing.txt")
    with pytest.raises(NotFoundError):
        store.get_bytes("runs/r1/missing")
    child = store.child("runs/r1")
    assert child.list() == ["a.txt", "sub/b.bin"]
    assert child.get_text("a.txt") == "alpha"
    store.put_text("runs/r1/a.txt", "alpha2")  # overwrite is atomic and complete
    assert store.get_text("runs/r1/a.txt") == "alpha2"
    assert store.delete_prefix("runs/r1/") == 2
    assert store.list("runs/r1/") == []


def test_multipart_upload_above_threshold(store_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDETOX_S3_MULTIPART_THRESHOLD", str(5 * MiB))
    monkeypatch.setenv("XDETOX_S3_MULTIPART_CHUNKSIZE", str(5 * MiB))
    store = open_store(store_uri)
    big = tmp_path / "big.bin"
    data = os.urandom(12 * MiB + 123)
    big.write_bytes(data)
    store.put_file("models/m/model.safetensors", big)
    if store_uri.startswith("s3://"):
        from xdetox.store.s3 import S3Store

        assert isinstance(store, S3Store)
        head = store.client.head_object(Bucket=store.bucket, Key=store._k("models/m/model.safetensors"))
        # A multipart object's ETag is "<md5 of part md5s>-<parts>": 12 MiB in 5 MiB parts = 3 parts.
        assert head["ETag"].strip('"').endswith("-3"), head["ETag"]
        assert head["ContentLength"] == len(data)
    back = tmp_path / "back.bin"
    store.get_file("models/m/model.safetensors", back)
    assert hashlib.sha256(back.read_bytes()).hexdigest() == hashlib.sha256(data).hexdigest()
    assert store.sha256("models/m/model.safetensors") == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize(
    "bad",
    ["../escape.txt", "a/../../b", "/etc/passwd", "a//b", "./a", "s3://other/bucket", "a\\b", "C:/x", ""],
)
def test_escaping_keys_are_refused(store_uri: str, bad: str) -> None:
    store = open_store(store_uri).child("runs/r")
    with pytest.raises(UnsafeKeyError):
        store.put_text(bad, "x")
    with pytest.raises(UnsafeKeyError):
        store.get_bytes(bad)


def test_manifest_output_prefix_cannot_escape(store_uri: str) -> None:
    store = open_store(store_uri).child("runs/r")

    def writer(ctx: StepContext) -> dict:
        ctx.put_bytes("out.txt", b"x")
        return {}

    with registry.overridden({"evaluate": writer}):
        m = StepManifest(kind="evaluate", key="k1", run_id="r", label="t", output_prefix="../../elsewhere")
        with pytest.raises(UnsafeKeyError):
            run_step(m, store, log=lambda _m: None)
        assert not is_committed(store, "k1")


def test_local_store_refuses_symlink_escape(tmp_path: Path) -> None:
    root = tmp_path / "store"
    (root / "runs").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "runs" / "link").symlink_to(outside)
    store = open_store(root.as_uri())
    with pytest.raises(UnsafeKeyError):
        store.put_text("runs/link/x.txt", "x")
    assert not (outside / "x.txt").exists()


def _toy_steps(calls: list[str]) -> dict[str, registry.StepFn]:
    def produce(ctx: StepContext) -> dict:
        calls.append(ctx.manifest.key)
        ctx.put_bytes("data.jsonl", b'{"a": 1}\n')
        return {"rows": 1}

    def consume(ctx: StepContext) -> dict:
        rows = list(ctx.iter_input_rows("up"))
        ctx.put_json("n.json", {"n": len(rows)})
        return {"n": len(rows)}

    return {"generate": produce, "evaluate": consume}


def test_commit_record_makes_outputs_visible(store_uri: str) -> None:
    store = open_store(store_uri).child("runs/r")
    calls: list[str] = []
    with registry.overridden(_toy_steps(calls)):
        up = StepManifest(kind="generate", key="up1", run_id="r", label="up", output_prefix="generations/g")
        down = StepManifest(kind="evaluate", key="down1", run_id="r", label="down", output_prefix="evaluations/d",
                            inputs={"up": ["up1"]})
        # An output written without a commit record does not count.
        store.put_bytes("generations/g/data.jsonl", b'{"a": 1}\n')
        with pytest.raises(InputMissingError):
            run_step(down, store, log=lambda _m: None)
        assert not is_committed(store, "down1")
        record, cached = run_step(up, store, log=lambda _m: None)
        assert not cached and calls == ["up1"]
        assert [o.key for o in record.outputs] == ["generations/g/data.jsonl"]
        assert record.outputs[0].sha256 == hashlib.sha256(b'{"a": 1}\n').hexdigest()
        assert record.outputs[0].size == 9
        assert store.exists(commit_key("up1")) and store.exists("steps/up1/manifest.json")
        rec2, cached2 = run_step(up, store, log=lambda _m: None)
        assert cached2 and calls == ["up1"]  # committed: not run again
        assert rec2 == record
        drec, _ = run_step(down, store, log=lambda _m: None)
        assert drec.info == {"n": 1}


def test_failed_step_leaves_no_commit(store_uri: str) -> None:
    store = open_store(store_uri).child("runs/r")

    def half(ctx: StepContext) -> dict:
        ctx.put_bytes("part.txt", b"half")
        raise RuntimeError("boom")

    with registry.overridden({"score": half}):
        m = StepManifest(kind="score", key="s1", run_id="r", label="s", output_prefix="scores/x")
        with pytest.raises(RuntimeError, match="boom"):
            run_step(m, store, log=lambda _m: None)
        assert not is_committed(store, "s1")


def test_retry_after_injected_failure(store_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """S3: botocore retries 503 SlowDown and 500 with backoff, and the write lands once.
    file://: a failed write leaves nothing behind (no partial object), and the retry succeeds."""
    store = open_store(store_uri)
    if store_uri.startswith("s3://"):
        from botocore.awsrequest import AWSResponse

        failures = {"n": 0}

        class _Raw:
            def stream(self, **_: object):  # type: ignore[no-untyped-def]
                yield b""

        def inject(request, **_: object):  # type: ignore[no-untyped-def]
            if failures["n"] < 2:
                failures["n"] += 1
                status = 503 if failures["n"] == 1 else 500
                body = b"<Error><Code>SlowDown</Code><Message>Reduce your request rate.</Message></Error>"
                resp = AWSResponse(request.url, status, {"Content-Type": "application/xml"}, _Raw())
                resp._content = body  # type: ignore[attr-defined]
                return resp
            return None

        store.client.meta.events.register_first("before-send.s3.PutObject", inject)  # type: ignore[attr-defined]
        store.put_text("runs/r/retried.txt", "landed")
        assert failures["n"] == 2
        assert store.get_text("runs/r/retried.txt") == "landed"
        assert store.list("runs/r/") == ["runs/r/retried.txt"]
    else:
        src = tmp_path / "src.bin"
        src.write_bytes(b"y" * 4096)
        import shutil

        real = shutil.copyfileobj
        calls = {"n": 0}

        def flaky(fsrc, fdst, length=0):  # type: ignore[no-untyped-def]
            calls["n"] += 1
            if calls["n"] == 1:
                fdst.write(b"partial")
                raise OSError(5, "injected I/O error")
            return real(fsrc, fdst, length)

        monkeypatch.setattr(shutil, "copyfileobj", flaky)
        with pytest.raises(OSError, match="injected"):
            store.put_file("runs/r/f.bin", src)
        assert store.list("runs/r/") == []  # no partial object is visible
        store.put_file("runs/r/f.bin", src)
        assert store.get_bytes("runs/r/f.bin") == b"y" * 4096


def test_iter_lines_splits_on_newlines_only(store_uri: str) -> None:
    import json

    store = open_store(store_uri)
    rows = [{"text": "line\u2028separator and \x1c file separator"}, {"text": "second"}]
    store.put_text("runs/r/rows.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    lines = list(store.iter_lines("runs/r/rows.jsonl"))
    assert [json.loads(line) for line in lines] == rows
    assert list(store.child("runs/r").iter_lines("rows.jsonl")) == lines
    with pytest.raises(NotFoundError):
        list(store.iter_lines("runs/r/missing.jsonl"))
