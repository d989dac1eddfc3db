"""Running one step: skip if committed, else run it and write its commit record last.

This is what ``xdetox step MANIFEST_URI`` does in every container and what the local executor
does for each step. A step killed half-way leaves no commit record, so the next attempt redoes
(or, for chunked steps, resumes) it; readers only ever trust outputs listed in a commit record.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import signal
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from importlib import metadata

from xdetox.manifest import CommitRecord, StepManifest, commit_key, failure_key, manifest_key, running_key
from xdetox.steps import environment, registry
from xdetox.steps.context import StepContext, remove_stale_scratch
from xdetox.store import NotFoundError, Store, check_field, check_segment


def _versions() -> dict[str, str]:
    """Provenance (python, xdetox, boto3) plus the setting the step ran under (thread count, device,
    result-changing library versions: xdetox.steps.environment), which a later reuse checks."""
    out = {"python": platform.python_version()}
    for name in ("xdetox", "boto3"):
        if name == "xdetox" or name in sys.modules:
            with contextlib.suppress(metadata.PackageNotFoundError):
                out[name] = metadata.version(name)
    return {**out, **environment.record()}


def is_committed(store: Store, key: str) -> bool:
    return store.exists(commit_key(key))


def read_commit(store: Store, key: str) -> CommitRecord:
    return CommitRecord.model_validate_json(store.get_bytes(commit_key(key)))


def write_manifest(store: Store, manifest: StepManifest) -> None:
    store.put_text(manifest_key(manifest.key), manifest.model_dump_json(indent=2) + "\n")


def _record_failure(store: Store, manifest: StepManifest, e: BaseException) -> None:
    """Leave the error where ``xdetox status`` finds it; never mask the step's own error."""
    doc = {"key": manifest.key, "kind": manifest.kind, "error": f"{type(e).__name__}: {e}"[:2000],
           "at": datetime.now(UTC).isoformat(timespec="seconds"), "host": platform.node()}
    with contextlib.suppress(Exception):
        store.put_text(failure_key(manifest.key), json.dumps(doc, indent=2) + "\n")


def read_failure(store: Store, key: str) -> dict | None:
    try:
        return json.loads(store.get_bytes(failure_key(key)))
    except (NotFoundError, ValueError):
        return None


def read_running(store: Store, key: str) -> dict | None:
    try:
        return json.loads(store.get_bytes(running_key(key)))
    except (NotFoundError, ValueError):
        return None


@contextlib.contextmanager
def _sigterm_as_exit() -> Iterator[None]:
    """SIGTERM (a pod deleted, a Ctrl-C'd parent) as SystemExit, so that ``finally`` blocks run and
    the step's scratch is removed; only the main thread can install a handler."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


def check_manifest_keys(manifest: StepManifest) -> None:
    """Refuse a manifest whose keys would leave the run's prefix, before anything is written.

    The error names the manifest field: ``key``, ``run_id``, ``output_prefix``, ``inputs.<name>``.
    """
    check_segment(manifest.key, "manifest field 'key'")
    check_segment(manifest.run_id, "manifest field 'run_id'")
    check_field(manifest.output_prefix, "manifest field 'output_prefix'")
    for name, keys in manifest.inputs.items():
        for k in keys:
            check_segment(k, f"manifest field 'inputs.{name}'")


def run_step(manifest: StepManifest, store: Store, log=print) -> tuple[CommitRecord, bool]:  # type: ignore[no-untyped-def]
    """Run ``manifest`` against the run-rooted ``store``. Returns (record, was_cached)."""
    check_manifest_keys(manifest)
    if is_committed(store, manifest.key):
        record = read_commit(store, manifest.key)
        environment.check_reuse(manifest.key, record.versions, log)
        return record, True
    fn = registry.resolve(manifest.kind)
    for gone in remove_stale_scratch():
        log(f"removed scratch a killed step left behind: {gone}")
    write_manifest(store, manifest)
    ctx = StepContext(manifest, store, log=log)
    started = datetime.now(UTC)
    t0 = time.perf_counter()
    with contextlib.suppress(Exception):  # for `xdetox status` only: never fail a step over it
        store.put_text(running_key(manifest.key), json.dumps(
            {"host": platform.node(), "pid": os.getpid(), "started_at": started.isoformat(timespec="seconds")}))
    try:
        with _sigterm_as_exit(), environment.pinned_threads():
            info = fn(ctx) or {}
            versions = _versions()  # while the step's thread count is still set
    except BaseException as e:
        _record_failure(store, manifest, e)
        raise
    finally:
        ctx.cleanup()
        with contextlib.suppress(Exception):
            store.delete(running_key(manifest.key))
    seconds = time.perf_counter() - t0
    record = CommitRecord(
        key=manifest.key,
        kind=manifest.kind,
        label=manifest.label,
        outputs=sorted(ctx.outputs.values(), key=lambda o: o.key),
        info={**ctx.info, **info},
        versions=versions,
        started_at=started.isoformat(timespec="seconds"),
        finished_at=datetime.now(UTC).isoformat(timespec="seconds"),
        seconds=round(seconds, 3),
        host=platform.node(),
    )
    # The commit record is written last: until it exists, none of the outputs count.
    store.put_text(commit_key(manifest.key), record.model_dump_json(indent=2) + "\n")
    with contextlib.suppress(Exception):  # an earlier attempt's failure is history now
        store.delete(failure_key(manifest.key))
    return record, False
