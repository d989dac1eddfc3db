"""Runs behind a nightly reference: the spec run locally once per seed, and what each run records.

A reference is only meaningful when its runs differ in nothing but the seed, so every run's
xdetox version (from its report step's commit record) and its spec digest (seed and store left
out) are read back and checked before their metrics are combined.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import yaml

from xdetox.executors.argo.nightly import METRICS_KEY, ReferenceError, check_compatible, spec_digest
from xdetox.executors.local import run_plan
from xdetox.executors.publish import publish, run_store
from xdetox.manifest import CommitRecord, commit_key
from xdetox.plan import Plan
from xdetox.plan import plan as make_plan
from xdetox.spec import ExperimentSpec, load_spec_text
from xdetox.store import NotFoundError, Store, open_store


def seed_store_uri(root_uri: str, seed: int) -> str:
    return f"{root_uri.rstrip('/')}/seed-{seed}"


def run_seed(spec: ExperimentSpec, seed: int, root_uri: str, log: Callable[[str], None] = print) -> Store:
    """Run ``spec`` with ``seed`` into ``<root>/seed-<seed>``; committed steps are reused (resume)."""
    s = spec.model_copy(update={"seed": seed})
    p = make_plan(s)
    rs = run_store(open_store(seed_store_uri(root_uri, seed)), p.run_id)
    publish(p, rs, yaml.safe_dump(s.model_dump(mode="json"), sort_keys=False, allow_unicode=True))
    log(f"seed {seed}: {len(p.steps)} steps → {rs.uri}")
    run_plan(p, rs, show_progress=False)
    return rs


def read_run(rs: Store) -> tuple[int, dict[str, Any], str, str]:
    """(seed, metrics, xdetox version, spec digest) of a finished run in its run-rooted store."""
    where = rs.uri
    try:
        spec = load_spec_text(rs.get_text("spec.yaml"), f"{where}/spec.yaml")
        plan = Plan.model_validate_json(rs.get_bytes("plan.json"))
        metrics = json.loads(rs.get_text(METRICS_KEY))
        record = CommitRecord.model_validate_json(rs.get_bytes(commit_key(plan.report_key)))
    except (NotFoundError, FileNotFoundError) as e:
        raise ReferenceError(f"{where}: not a finished run ({e}); run the spec there first") from None
    version = record.versions.get("xdetox", "unknown")
    return spec.seed, metrics, version, spec_digest(spec.model_dump(mode="json"))


def collect(stores: list[Store]) -> tuple[list[tuple[int, dict[str, Any]]], str, str]:
    """Metrics of several finished runs, refusing to mix versions or specs. Returns (runs, version, digest)."""
    read = [read_run(rs) for rs in stores]
    check_compatible([(rs.uri, r[2], r[3]) for rs, r in zip(stores, read, strict=True)])
    seeds = [r[0] for r in read]
    if len(set(seeds)) != len(seeds):
        raise ReferenceError(f"runs share seeds {sorted(seeds)}: each run of a reference needs its own seed")
    return [(r[0], r[1]) for r in read], read[0][2], read[0][3]
