"""Nightly reproduction check: a run's metrics against stored reference values, within tolerances.

The reference (``jobs/nightly-reference.json``) lists metric paths into ``results/metrics.json``
with a value and a tolerance each; a value outside its tolerance, or missing, is a regression.
The comparison is written next to the report (``results/nightly-check.json`` and ``.md``) and the
CLI exits non-zero, so the workflow's final task fails visibly.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from xdetox.store import NotFoundError, Store

METRICS_KEY = "results/metrics.json"
CHECK_JSON = "results/nightly-check.json"
CHECK_MD = "results/nightly-check.md"
#: leaves that measure the machine, not the experiment: never reference values
_VOLATILE = ("seconds", "elapsed", "time", "_at", "host", "version", "duration")


class Check(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str = Field(description="dotted path into metrics.json; list items by index")
    value: float
    abs_tol: float = Field(default=0.0, ge=0)
    rel_tol: float = Field(default=0.0, ge=0)


class Reference(BaseModel):
    model_config = ConfigDict(extra="forbid")
    spec: str
    source: str = Field(description="how the values were produced (command, date, versions)")
    checks: list[Check] = Field(min_length=1)


class Outcome(BaseModel):
    path: str
    reference: float
    value: float | None
    tolerance: float
    ok: bool
    reason: str = ""


def lookup(obj: Any, path: str) -> Any:
    cur = obj
    for part in path.split("."):
        if isinstance(cur, list):
            if not part.isdigit() or int(part) >= len(cur):
                raise KeyError(path)
            cur = cur[int(part)]
        elif isinstance(cur, dict) and part in cur:
            cur = cur[part]
        else:
            raise KeyError(path)
    return cur


def compare(metrics: dict[str, Any], ref: Reference) -> list[Outcome]:
    out: list[Outcome] = []
    for c in ref.checks:
        tol = max(c.abs_tol, c.rel_tol * abs(c.value))
        try:
            got = lookup(metrics, c.path)
        except KeyError:
            out.append(Outcome(path=c.path, reference=c.value, value=None, tolerance=tol, ok=False, reason="missing"))
            continue
        if got is None or isinstance(got, bool) or not isinstance(got, int | float) or math.isnan(float(got)):
            # A missing score is missing, never 0: it fails the check rather than passing as a number.
            out.append(Outcome(path=c.path, reference=c.value, value=None, tolerance=tol, ok=False,
                               reason=f"not a number ({got!r})"))
            continue
        diff = abs(float(got) - c.value)
        ok = diff <= tol + 1e-12
        out.append(Outcome(path=c.path, reference=c.value, value=float(got), tolerance=tol, ok=ok,
                           reason="" if ok else f"|diff| {diff:.6g} > tolerance {tol:.6g}"))
    return out


def render_markdown(run_id: str, outcomes: list[Outcome], ref: Reference) -> str:
    failed = [o for o in outcomes if not o.ok]
    head = "PASS" if not failed else f"FAIL: {len(failed)} of {len(outcomes)} metrics regressed"
    lines = [f"# Nightly reproduction check: {run_id}", "", f"**{head}**", "",
             f"Reference: `{ref.spec}` ({ref.source})", "",
             "| metric | reference | value | tolerance | result |", "| --- | ---: | ---: | ---: | --- |"]
    for o in outcomes:
        val = "missing" if o.value is None else f"{o.value:.6g}"
        lines.append(f"| `{o.path}` | {o.reference:.6g} | {val} | {o.tolerance:.3g} | "
                     f"{'ok' if o.ok else 'REGRESSION: ' + o.reason} |")
    return "\n".join(lines) + "\n"


def check_run(run_store: Store, ref: Reference) -> tuple[bool, list[Outcome]]:
    """Compare the run's metrics with ``ref``; write the comparison under results/. True when all pass."""
    try:
        metrics = json.loads(run_store.get_text(METRICS_KEY))
    except (NotFoundError, FileNotFoundError):
        metrics = {}
    outcomes = compare(metrics, ref)
    ok = all(o.ok for o in outcomes)
    run_id = run_store.uri.rstrip("/").rsplit("/", 1)[-1]
    summary = {
        "ok": ok,
        "checked_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "reference": ref.model_dump(mode="json", exclude={"checks"}),
        "metrics_found": bool(metrics),
        "outcomes": [o.model_dump(mode="json") for o in outcomes],
    }
    run_store.put_text(CHECK_JSON, json.dumps(summary, indent=2) + "\n")
    run_store.put_text(CHECK_MD, render_markdown(run_id, outcomes, ref))
    return ok, outcomes


def make_reference(
    metrics: dict[str, Any], spec: str, source: str, abs_tol: float, rel_tol: float, prefixes: list[str] | None = None,
) -> Reference:
    """Reference values from an actual run's metrics: every numeric leaf (under ``prefixes``)."""
    checks: list[Check] = []

    def walk(obj: Any, path: str) -> None:
        if isinstance(obj, dict):
            for k, v in obj.items():
                walk(v, f"{path}.{k}" if path else str(k))
        elif isinstance(obj, list):
            for i, v in enumerate(obj):
                walk(v, f"{path}.{i}" if path else str(i))
        elif isinstance(obj, int | float) and not isinstance(obj, bool) and math.isfinite(float(obj)):
            parts = path.lower().split(".")
            if any(w in parts[-1] for w in _VOLATILE):
                return
            if any(p == "ci" or p.endswith("_ci") for p in parts):
                return  # an interval's bounds are uncertainty, not values to reproduce
            if prefixes and not any(path == p or path.startswith(p + ".") for p in prefixes):
                return
            checks.append(Check(path=path, value=float(obj), abs_tol=abs_tol, rel_tol=rel_tol))

    walk(metrics, "")
    if not checks:
        raise ValueError("no numeric metrics found to use as reference values")
    return Reference(spec=spec, source=source, checks=checks)
