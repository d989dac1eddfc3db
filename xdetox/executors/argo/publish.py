"""Put a run's spec, plan and step manifests in the store before any step pod starts.

``publish_manifests`` is what ``xdetox argo submit`` does from the submitting machine; the
workflow's first task does the same in the cluster (``xdetox argo publish``), re-planning the
spec it was rendered with and refusing to go on (exit 2) if this image plans it differently
from the renderer: a version skew between the CLI and the images would otherwise run steps
whose manifests nobody rendered.
"""

from __future__ import annotations

import base64
import binascii
import json

import yaml

from xdetox.executors.argo.render import plan_digest
from xdetox.executors.publish import publish, run_store
from xdetox.plan import Plan
from xdetox.plan import plan as make_plan
from xdetox.spec import SpecError
from xdetox.spec.load import validate_spec
from xdetox.spec.models import ExperimentSpec
from xdetox.store import Store, open_store


class PublishError(ValueError):
    """The spec payload is unreadable or plans differently than the workflow expects."""


def publish_manifests(plan: Plan, store: Store, spec: ExperimentSpec | None = None) -> Store:
    """Write spec.yaml, plan.json and every manifest under ``<store>/runs/<run-id>/``; returns that store.

    ``store`` is the store root (the spec's ``store`` URI, opened). Manifests are content-addressed,
    so publishing twice writes the same bytes.
    """
    rs = run_store(store, plan.run_id)
    spec_yaml = yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False) if spec is not None else None
    publish(plan, rs, spec_yaml)
    return rs


def decode_spec(payload_b64: str) -> ExperimentSpec:
    try:
        data = json.loads(base64.b64decode(payload_b64, validate=True).decode("utf-8"))
    except (binascii.Error, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise PublishError(f"workflow parameter 'spec': not base64 JSON ({e})") from None
    if not isinstance(data, dict):
        raise PublishError("workflow parameter 'spec': must encode a JSON object")
    try:
        return validate_spec(data, source="workflow parameter 'spec'")
    except SpecError as e:
        raise PublishError(str(e)) from None


def publish_from_payload(store_uri: str, payload_b64: str, expect_plan: str | None) -> tuple[Plan, Store]:
    """The in-cluster publish task: decode, re-plan, check the digest, publish."""
    spec = decode_spec(payload_b64)
    plan = make_plan(spec)
    got = plan_digest(plan)
    if expect_plan and got != expect_plan:
        raise PublishError(
            f"this image plans the spec as {got}, the workflow was rendered for {expect_plan}: "
            "the image's xdetox version differs from the one that rendered the workflow; "
            "re-render with the image's version (or roll the images to the renderer's)"
        )
    return plan, publish_manifests(plan, open_store(store_uri), spec)
