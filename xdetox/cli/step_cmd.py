"""``xdetox step MANIFEST``: run one step from its manifest, the entrypoint of every container image.

Its exit code tells Argo what to do: 2 bad manifest (no retry), 75 transient (retry), 1 failed.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from xdetox.cli.app import app
from xdetox.cli.errors import EXIT_RETRIABLE, err, fail, show_traceback, step_exit_code


@app.command()
def step(
    manifest_uri: Annotated[str, typer.Argument(help="…/runs/<run-id>/steps/<key>/manifest.json (file or s3://)")],
) -> None:
    """Run one step from its manifest: the entrypoint of every container image."""
    from pydantic import ValidationError

    from xdetox.manifest import StepManifest
    from xdetox.steps.runner import check_manifest_keys, run_step
    from xdetox.store import NotFoundError, StoreError, UnsafeKeyError, open_store

    uri = manifest_uri.rstrip("/")
    marker = "/steps/"
    if marker not in uri or not uri.endswith("/manifest.json"):
        raise fail(f"{manifest_uri}: expected a URI ending in /steps/<key>/manifest.json")
    root, _, rest = uri.rpartition(marker)
    key = rest.removesuffix("/manifest.json")
    try:
        store = open_store(root if "://" in root else str(Path(root).resolve()))
        raw = store.get_bytes(f"steps/{key}/manifest.json")
    except (NotFoundError, FileNotFoundError):
        raise fail(f"{manifest_uri}: no such manifest") from None
    except StoreError as e:  # the store is there but failing: transient, the workflow retries it
        raise fail(f"{manifest_uri}: {e}", EXIT_RETRIABLE) from None
    except ValueError as e:
        raise fail(f"{manifest_uri}: {e}") from None
    try:
        manifest = StepManifest.model_validate_json(raw)
    except ValidationError as e:
        lines = [f"{'.'.join(str(x) for x in er['loc'])}: {er['msg']}" for er in e.errors()]
        raise fail(f"{manifest_uri}: invalid manifest:\n  " + "\n  ".join(lines)) from None
    if manifest.key != key:
        raise fail(f"{manifest_uri}: manifest key {manifest.key} does not match its path ({key})")
    try:
        check_manifest_keys(manifest)
    except UnsafeKeyError as e:
        raise fail(f"{manifest_uri}: {e}") from None
    t0 = time.perf_counter()
    try:
        record, cached = run_step(manifest, store, log=lambda m: err.print(m, highlight=False))
    except Exception as e:  # noqa: BLE001 - one line for the pod log, full trace with -v / XDETOX_DEBUG
        show_traceback()
        err.print(f"[bold red]step {manifest.kind} {manifest.key} failed:[/bold red] {type(e).__name__}: {e}")
        raise typer.Exit(step_exit_code(e)) from None
    state = "cached" if cached else f"done in {time.perf_counter() - t0:.1f}s"
    err.print(f"step {manifest.kind} {manifest.key}: {state}, {len(record.outputs)} outputs")
