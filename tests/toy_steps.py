"""Deterministic toy implementations of every step kind, for executor tests.

Each writes outputs derived only from its manifest and its inputs' bytes, so two runs of the same
plan give byte-identical stores. ``TOY_PAUSE_KIND`` makes the first step of that kind write part
of its outputs, touch ``TOY_PAUSE_MARKER`` and sleep: the test SIGKILLs the process there.

Run as a script: ``python -m tests.toy_steps SPEC STORE_URI`` runs the plan with the local executor.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path

from xdetox.kinds import steps as step_kinds
from xdetox.steps import registry
from xdetox.steps.context import StepContext

RUNS_LOG = "TOY_RUNS_LOG"


def toy(ctx: StepContext) -> dict:
    m = ctx.manifest
    log = os.environ.get(RUNS_LOG)
    if log:
        with open(log, "a") as f:
            f.write(m.key + "\n")
    h = hashlib.sha256(m.key.encode())
    for name in sorted(m.inputs):
        for rec in ctx.input_records(name):
            for o in rec.outputs:
                h.update(ctx.store.get_bytes(o.key))
    digest = h.hexdigest()
    rows = [json.dumps({"step": m.key, "i": i, "digest": digest}) + "\n" for i in range(5)]
    name = f"{m.shard.name()}.jsonl" if m.shard else "out.jsonl"
    half = "".join(rows[:2]).encode()
    pause = os.environ.get("TOY_PAUSE_KIND")
    if pause == m.kind:
        # Half of the work is stored (as a partial file), then we wait to be killed.
        ctx.store.put_bytes(f"steps/{m.key}/partial/chunk-0.jsonl", half)
        Path(os.environ["TOY_PAUSE_MARKER"]).write_text(m.key)
        time.sleep(600)
    ctx.put_bytes(name, "".join(rows).encode())
    return {"rows": len(rows)}


#: the built-in kinds, as registered when this module was imported (not kinds a test adds later)
BUILTIN_KINDS = tuple(k.name for k in step_kinds.all_kinds())


def install() -> None:
    for kind in BUILTIN_KINDS:
        registry.register(kind, toy)


def uninstall() -> None:
    for kind in BUILTIN_KINDS:
        registry.unregister(kind)


if __name__ == "__main__":
    from rich.console import Console

    from xdetox.executors.local import run_plan
    from xdetox.executors.publish import publish, run_store
    from xdetox.plan import plan
    from xdetox.spec import load_spec
    from xdetox.store import open_store

    install()
    spec_path, store_uri = sys.argv[1], sys.argv[2]
    spec = load_spec(spec_path)
    p = plan(spec)
    rs = run_store(open_store(store_uri), p.run_id)
    publish(p, rs, Path(spec_path).read_text())
    run_plan(p, rs, console=Console(stderr=True), show_progress=False)
