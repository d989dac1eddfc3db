"""Regenerating a run's report outside the executor (``xdetox report RUN``)."""

from __future__ import annotations

import json
from typing import Any

from xdetox.manifest import CommitRecord
from xdetox.store import NotFoundError, Store


class ReportError(ValueError):
    """The run cannot be reported: no plan, or evaluations not committed yet."""


def read_evaluations(store: Store, records: list[CommitRecord]) -> list[dict[str, Any]]:
    """Each evaluate step's metrics.json, in the order given."""
    out = []
    for rec in records:
        key = next((o.key for o in rec.outputs if o.key.endswith("metrics.json")), None)
        if key is None:
            raise ReportError(f"evaluate step {rec.key} committed no metrics.json")
        out.append(json.loads(store.get_bytes(key)))
    return out


def load_plan(run_store: Store) -> Any:
    from xdetox.plan import Plan

    try:
        return Plan.model_validate_json(run_store.get_bytes("plan.json"))
    except (NotFoundError, FileNotFoundError):
        raise ReportError(f"{run_store.uri}: no plan.json: not a run folder (run `xdetox run SPEC` first)") from None
