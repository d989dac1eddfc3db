"""The ``report`` step: every setting's evaluation -> results/ (report.md, report.html,
metrics.json, plots/*.png). The content is built by xdetox.report.build."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from xdetox.manifest import commit_key
from xdetox.report.build import build_report
from xdetox.report.write import ReportError, load_plan, read_evaluations
from xdetox.steps.context import StepContext
from xdetox.steps.runner import is_committed, run_step
from xdetox.store import Store


def run(ctx: StepContext) -> dict[str, Any]:
    evaluations = read_evaluations(ctx.store, ctx.input_records("evaluations"))
    files = build_report(ctx.params, evaluations)
    for rel, data in sorted(files.items()):
        ctx.put_bytes(rel, data)
    plots = sum(1 for rel in files if rel.startswith("plots/"))
    ctx.log(f"report: {len(files)} files ({plots} plots) under {ctx.manifest.output_prefix}/")
    return {"files": len(files), "plots": plots, "settings": len(evaluations)}


def write_report(run_store: Store, log: Callable[[str], None] = lambda m: None) -> list[str]:
    """Rebuild ``results/`` of the run rooted at ``run_store`` from its committed evaluations.

    Lives with the step, not in xdetox.report, so the report library never runs a step (layering).
    Re-runs the plan's report step: its old commit record is removed first, so a crash half-way
    leaves a report that no reader takes as done, exactly like an interrupted step. Returns the
    keys written.
    """
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
