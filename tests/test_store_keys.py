"""Keys and URIs checked once, in the store; a conditional-write primitive (issue 14 items 2, 4)."""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from xdetox.cli import app
from xdetox.manifest import CommitRecord, OutputFile, StepManifest, commit_key
from xdetox.steps.context import StepContext
from xdetox.steps.runner import run_step
from xdetox.store import UnsafeKeyError, open_store

_TIMES = {"started_at": "2026-12-04T00:00:00+00:00", "finished_at": "2026-12-04T00:00:01+00:00", "seconds": 1.0}


@pytest.mark.parametrize("uri", ["s3://bucket/prefix/../escaped", "s3://bucket/a/./b", "s3://bucket/a//b",
                                 "s3://bucket/.."])
def test_s3_store_uri_with_dot_segments_is_refused(uri: str) -> None:
    with pytest.raises(UnsafeKeyError, match="store URI"):
        open_store(uri)


def test_s3_store_uri_trailing_slash_is_fine() -> None:
    assert open_store("s3://bucket/a/b/").uri == "s3://bucket/a/b"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("output_prefix", "/abs/out", "manifest field 'output_prefix'"),
        ("output_prefix", "a//b", "manifest field 'output_prefix'"),
        ("key", "k/1", "manifest field 'key'"),
        ("key", "..", "manifest field 'key'"),
        ("run_id", "r/../x", "manifest field 'run_id'"),
        ("inputs", {"up": ["../k"]}, "manifest field 'inputs.up'"),
    ],
)
def test_unsafe_manifest_fields_are_refused_before_anything_is_written(
    store_uri: str, field: str, value: object, named: str
) -> None:
    store = open_store(store_uri).child("runs/r")
    fields: dict = {"kind": "evaluate", "key": "k1", "run_id": "r", "label": "t", "output_prefix": "out"}
    fields[field] = value
    manifest = StepManifest(**fields)
    with pytest.raises(UnsafeKeyError, match=named):
        run_step(manifest, store, log=lambda _m: None)
    assert open_store(store_uri).list() == []  # no manifest, no output, no record


def test_cli_step_refuses_absolute_output_prefix_with_exit_2(tmp_path: Path) -> None:
    store_uri = (tmp_path / "s").as_uri()
    store = open_store(store_uri).child("runs/r")
    store.put_text("steps/k1/manifest.json", json.dumps({"kind": "evaluate", "key": "k1", "run_id": "r",
                                                           "label": "x", "output_prefix": "/etc/out"}))
    res = CliRunner().invoke(app, ["step", f"{store_uri}/runs/r/steps/k1/manifest.json"])
    assert res.exit_code == 2, res.output
    assert "manifest field 'output_prefix'" in res.output and "absolute" in res.output
    assert "Traceback" not in res.output
    assert store.list() == ["steps/k1/manifest.json"]


def test_cli_status_on_unsafe_store_uri_is_one_clear_error() -> None:
    res = CliRunner().invoke(app, ["status", "jobs/smoke.yaml", "--store", "s3://bucket/p/../escaped"])
    assert res.exit_code == 2, res.output
    assert "--store" in res.output and "'.' or '..'" in res.output
    assert res.exception is None or isinstance(res.exception, SystemExit)


def test_put_if_absent_first_writer_wins(store_uri: str) -> None:
    store = open_store(store_uri).child("runs/r")
    assert store.put_if_absent("lease.json", b"first") is True
    assert store.put_if_absent("lease.json", b"second") is False
    assert store.get_bytes("lease.json") == b"first"
    results: list[bool] = []
    lock = threading.Lock()

    def race(i: int) -> None:
        won = store.put_if_absent("race.json", f"writer {i}".encode())
        with lock:
            results.append(won)

    threads = [threading.Thread(target=race, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 5 + [True]
    winner = store.get_text("race.json")
    assert winner.startswith("writer ")
    assert store.list() == ["lease.json", "race.json"]  # no temporary files left behind


def test_input_dir_refuses_a_commit_record_with_unsafe_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = open_store((tmp_path / "s").as_uri()).child("runs/r")
    monkeypatch.setenv("XDETOX_CACHE_DIR", str(tmp_path / "cache"))
    bad = CommitRecord(key="up1", kind="train", label="x", **_TIMES, outputs=[
        OutputFile(key="../../../outside/model.bin", sha256=hashlib.sha256(b"m").hexdigest(), size=1)])
    store.put_text(commit_key("up1"), bad.model_dump_json())
    ctx = StepContext(StepManifest(kind="evaluate", key="d1", run_id="r", label="d", output_prefix="o",
                                   inputs={"m": ["up1"]}), store)
    with pytest.raises(UnsafeKeyError, match="commit record of step up1: output key"):
        ctx.input_dir("m")
    assert not (tmp_path / "outside").exists()


def test_input_cache_is_keyed_by_content(s3_store_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two stores holding different bytes under one step key never share a cached download."""
    monkeypatch.setenv("XDETOX_CACHE_DIR", str(tmp_path / "cache"))
    folders = []
    for i, payload in enumerate([b"model A", b"model B"]):
        store = open_store(f"{s3_store_uri}/{i}").child("runs/r")
        store.put_bytes("models/m/w.bin", payload)
        rec = CommitRecord(key="up1", kind="train", label="x", **_TIMES, outputs=[
            OutputFile(key="models/m/w.bin", sha256=hashlib.sha256(payload).hexdigest(), size=len(payload))])
        store.put_text(commit_key("up1"), rec.model_dump_json())
        ctx = StepContext(StepManifest(kind="evaluate", key="d1", run_id="r", label="d", output_prefix="o",
                                       inputs={"m": ["up1"]}), store)
        folder = ctx.input_dir("m")
        assert (folder / "w.bin").read_bytes() == payload
        folders.append(folder)
    assert folders[0] != folders[1]
