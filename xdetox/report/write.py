"""Regenerating a run's report outside the executor (``xdetox report RUN``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from xdetox.manifest import CommitRecord, commit_key
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


def write_report(run_store: Store, log: Callable[[str], None] = lambda m: None) -> list[str]:
    """Rebuild ``results/`` of the run rooted at ``run_store`` from its committed evaluations.

    Re-runs the plan's report step: its old commit record is removed first, so a crash half-way
    leaves a report that no reader takes as done, exactly like an interrupted step. Returns the
    keys written.
    """
    from xdetox.steps.runner import is_committed, run_step

    plan = load_plan(run_store)
    manifest = plan.by_key().get(plan.report_key)
    if manifest is None:
        raise ReportError(f"{run_store.uri}/plan.json: report step {plan.report_key} is not in the plan")
    missing = [k for k in manifest.inputs.get("evaluations", []) if not is_committed(run_store, k)]
    if missing:
        raise ReportError(f"{len(missing)} of {len(manifest.inputs.get('evaluations', []))} evaluations are not "
                          f"committed yet (first: {missing[0]}); finish the run with `xdetox run SPEC`")
    if run_store.exists(commit_key(manifest.key)):
        run_store.delete(commit_key(manifest.key))
    record, _ = run_step(manifest, run_store, log=log)
    return [o.key for o in record.outputs]
