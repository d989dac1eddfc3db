"""The workflow's onExit handler: record how a cluster run ended, in the store beside its results.

Argo runs the exit handler whatever the outcome (success, failure, error, a deadline or a stop),
with ``{{workflow.status}}`` and ``{{workflow.failures}}`` (a JSON list of the failed nodes). The
record is ``runs/<run-id>/outcomes/<workflow name>.json``: one file per workflow, so a
resubmission adds its own outcome instead of overwriting the first one.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from xdetox.store import Store

STATUSES = ("Succeeded", "Failed", "Error")
_MAX_FAILURES = 200  # a workflow of thousands of shards can fail thousands of nodes: keep the record small


def outcome_key(workflow: str) -> str:
    return f"outcomes/{workflow}.json"


def parse_failures(raw: str) -> list[dict[str, Any]]:
    """``{{workflow.failures}}``: a JSON list, or empty / the unreplaced placeholder when nothing failed."""
    text = raw.strip()
    if not text or text.startswith("{{") or text == "null":
        return []
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return [{"message": text[:2000]}]  # never lose what Argo said, even if it is not JSON
    return [d for d in data if isinstance(d, dict)] if isinstance(data, list) else []


def record(run: Store, workflow: str, status: str, failures: str, duration_s: str = "") -> dict[str, Any]:
    """Write the outcome record into the run-rooted store; returns it."""
    failed = parse_failures(failures)
    body: dict[str, Any] = {
        "workflow": workflow,
        "status": status,
        "recorded_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "duration_s": float(duration_s) if duration_s.replace(".", "", 1).isdigit() else None,
        "failed_nodes": len(failed),
        "failures": [
            {k: f.get(k) for k in ("displayName", "templateName", "phase", "message", "podName", "finishedAt")
             if f.get(k) is not None}
            for f in failed[:_MAX_FAILURES]
        ],
    }
    run.put_text(outcome_key(workflow), json.dumps(body, indent=2, sort_keys=True) + "\n")
    return body
