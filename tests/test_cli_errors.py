"""Errors a user causes end as one clear line and a non-zero exit; `xdetox -v` (or XDETOX_DEBUG=1)
adds the traceback and keeps the exit code (issue 14 item 6)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from xdetox.cli import app
from xdetox.cli.library_output import LIBRARY_LOGGERS, QUIET_ENV

ROOT = Path(__file__).resolve().parents[1]
SMOKE = str(ROOT / "jobs" / "smoke.yaml")
UNSAFE_STORE = "s3://bucket/p/../escaped"


@pytest.fixture(autouse=True)
def _restore_logging(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """-v also turns on the libraries' logging, on the runner's (soon closed) stderr: undo it."""
    for key in (*QUIET_ENV, "TRANSFORMERS_VERBOSITY"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.delenv("XDETOX_DEBUG", raising=False)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    levels = {n: logging.getLogger(n).level for n in LIBRARY_LOGGERS}
    with warnings.catch_warnings():
        yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for n, lv in levels.items():
        logging.getLogger(n).setLevel(lv)


def _invoke(args: list[str], verbose: bool) -> tuple[int, str]:
    res = CliRunner().invoke(app, (["-v"] if verbose else []) + args)
    # the CLI itself ended the command: nothing escaped to the runner
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    return res.exit_code, res.output


def _lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.strip()]


def _quiet_and_verbose(args: list[str], code: int, *needles: str) -> None:
    """Without -v: one error line, the last, naming the needles, and no traceback. With -v: the
    traceback, then the same line, the same exit code."""
    got, output = _invoke(args, verbose=False)
    assert got == code, output
    assert "Traceback" not in output
    lines = _lines(output)
    errors = [line for line in lines if line.startswith(("error:", "✗"))]
    assert len(errors) == 1 and lines[-1] == errors[0], output
    for needle in needles:
        assert needle in errors[0], output
    got_v, output_v = _invoke(args, verbose=True)
    assert got_v == code, output_v
    assert "Traceback (most recent call last)" in output_v
    assert _lines(output_v)[-1] == errors[0]


def test_bad_store_uri_in_status() -> None:
    _quiet_and_verbose(["status", SMOKE, "--store", UNSAFE_STORE], 2, "--store", "'..'")


def test_store_error_before_the_first_step(s3_store_uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # The real S3 server refuses a wrong secret key: the run's first write (its lease) fails.
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-key")
    _quiet_and_verbose(["run", SMOKE, "--store", s3_store_uri], 1,
                       "store: ", f"{s3_store_uri}/runs/", "SignatureDoesNotMatch")


def test_bad_spec(tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text(Path(SMOKE).read_text(encoding="utf-8") + "colour: blue\n", encoding="utf-8")
    for command in (["validate", str(spec)], ["plan", str(spec)], ["argo", "render", str(spec), "-o", str(tmp_path)]):
        _quiet_and_verbose(command, 2, str(spec), "colour: unknown field")


def test_an_error_no_command_catches_still_ends_as_one_line(tmp_path: Path) -> None:
    # check-nightly opens its store without a guard of its own: the command group names the error.
    _quiet_and_verbose(["argo", "check-nightly", "--store", UNSAFE_STORE, "--reference",
                        str(ROOT / "jobs" / "nightly-reference.json")], 2, "'..'")
    # an output folder that is a file: the OSError names the path
    blocker = tmp_path / "out"
    blocker.write_text("", encoding="utf-8")
    _quiet_and_verbose(["argo", "render", SMOKE, "-o", str(blocker), "-c", str(ROOT / "argo" / "cluster-config.yaml")],
                       2, str(blocker))


def test_a_bug_says_unexpected_and_how_to_see_the_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: object) -> None:
        raise KeyError("settings")

    monkeypatch.setattr("xdetox.plan.plan", broken)
    got, output = _invoke(["plan", SMOKE], verbose=False)
    assert got == 1 and "Traceback" not in output
    assert _lines(output) == ["error: unexpected KeyError: 'settings' (run `xdetox -v …` or set XDETOX_DEBUG=1 "
                              "for the traceback)"]
    got, output = _invoke(["plan", SMOKE], verbose=True)
    assert got == 1 and "Traceback (most recent call last)" in output and "in broken" in output
    assert _lines(output)[-1] == "error: unexpected KeyError: 'settings'"


def test_a_real_process_prints_one_line_or_with_xdetox_debug_the_traceback() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("XDETOX_DEBUG", None)
    cmd = [sys.executable, "-m", "xdetox.cli.main", "status", SMOKE, "--store", UNSAFE_STORE]
    quiet = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert quiet.returncode == 2 and quiet.stdout == ""
    assert _lines(quiet.stderr) == [line for line in _lines(quiet.stderr) if line.startswith("error: --store")]
    assert len(_lines(quiet.stderr)) == 1 and "Traceback" not in quiet.stderr
    debug = subprocess.run(cmd, cwd=ROOT, env={**env, "XDETOX_DEBUG": "1"}, capture_output=True, text=True,
                           timeout=120)
    assert debug.returncode == 2
    assert "Traceback (most recent call last)" in debug.stderr and "UnsafeKeyError" in debug.stderr


def test_a_binary_file_is_named_with_its_line_and_byte_offset(tmp_path: Path) -> None:
    first = b'{"text": "ok", "language": "en", "reference": 0.1}\n'  # 51 bytes: line 2 starts at byte 51
    assert len(first) == 51
    data = tmp_path / "data.jsonl"
    data.write_bytes(first + b"\x89PNG\r\n")
    _quiet_and_verbose(["scores", "import", str(data), "--store", (tmp_path / "store").as_uri()], 2,
                       f"{data}: line 1: not a score cache entry")  # line 1 is no cache entry: named first
    data.write_bytes(b'{"scorer_id": "p", "key": "k", "value": 0.5, "api_version": "v1", "obtained": "2026"}\n'
                     b"\x89PNG\r\n")
    offset = len(b'{"scorer_id": "p", "key": "k", "value": 0.5, "api_version": "v1", "obtained": "2026"}\n')
    assert offset == 86
    _quiet_and_verbose(["scores", "import", str(data), "--store", (tmp_path / "store").as_uri()], 2,
                       f"{data}: line 2: not UTF-8 text at byte offset 86 (byte 0x89)")
    data.write_bytes(first + b"\x89PNG\r\n")
    _quiet_and_verbose(["scorer", "check", SMOKE, "--reference", f"jsonl:{data}", "--no-progress"], 2,
                       f"{data}:2: not UTF-8 text at byte offset 51 (byte 0x89)")


def test_a_failed_step_under_xdetox_debug_shows_the_traceback_and_keeps_exit_75(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A pod's log gets the trace from XDETOX_DEBUG=1; Argo still sees 75 (retry), not Python's 1."""
    import json

    from tests import toy_steps
    from xdetox.steps import registry
    from xdetox.store import open_store

    def flaky(ctx):  # type: ignore[no-untyped-def]
        raise ConnectionResetError("peer reset")

    toy_steps.install()
    try:
        registry.register("train", flaky)
        store_uri = (tmp_path / "s").as_uri()
        open_store(store_uri).child("runs/r").put_text("steps/k1/manifest.json", json.dumps(
            {"kind": "train", "key": "k1", "run_id": "r", "label": "x", "output_prefix": "models/k1"}))
        args = ["step", f"{store_uri}/runs/r/steps/k1/manifest.json"]
        code, output = _invoke(args, verbose=False)
        assert code == 75 and "Traceback" not in output and "ConnectionResetError: peer reset" in output
        monkeypatch.setenv("XDETOX_DEBUG", "1")
        code, output = _invoke(args, verbose=False)
        assert code == 75 and "Traceback (most recent call last)" in output and "in flaky" in output
    finally:
        toy_steps.uninstall()


def test_argo_commands_without_any_cluster_say_how_to_name_one(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("ARGO_SERVER", "ARGO_TOKEN", "XDETOX_KUBE_HOST", "KUBERNETES_SERVICE_HOST", "KUBECONFIG"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.kube/config
    _quiet_and_verbose(["argo", "status", "some-workflow"], 1, "no cluster to talk to", "ARGO_SERVER", "kubeconfig")


def test_a_failed_step_in_xdetox_run_shows_its_own_traceback_with_v(tmp_path: Path) -> None:
    from tests import toy_steps
    from xdetox.steps import registry

    def boom(ctx):  # type: ignore[no-untyped-def]
        raise RuntimeError("out of cheese")

    toy_steps.install()
    try:
        for kind in toy_steps.BUILTIN_KINDS:
            registry.register(kind, boom)
        args = ["run", SMOKE, "--store", (tmp_path / "store").as_uri(), "--no-progress"]
        code, output = _invoke(args, verbose=False)
        assert code == 1 and "Traceback" not in output
        assert "failed: step" in output and "RuntimeError: out of cheese" in output
        code, output = _invoke(args, verbose=True)
        assert code == 1 and "Traceback (most recent call last)" in output and "in boom" in output
    finally:
        toy_steps.uninstall()
