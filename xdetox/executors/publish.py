"""Write a run's spec, plan and step manifests to the store: what every executor does first."""

from __future__ import annotations

from xdetox.plan import Plan
from xdetox.steps.runner import write_manifest
from xdetox.store import Store


def run_store(root: Store, run_id: str) -> Store:
    return root.child(f"runs/{run_id}")


def publish(plan: Plan, store: Store, spec_yaml: str | None) -> None:
    """``store`` is the run-rooted store. Manifests are content-addressed, so rewriting is harmless."""
    if spec_yaml is not None:
        store.put_text("spec.yaml", spec_yaml)
    store.put_text("plan.json", plan.model_dump_json(indent=2) + "\n")
    for step in plan.steps:
        write_manifest(store, step)
