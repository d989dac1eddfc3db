"""The ``report`` step: every setting's evaluation -> results/ (report.md, report.html,
metrics.json, plots/*.png). The content is built by xdetox.report.build."""

from __future__ import annotations

from typing import Any

from xdetox.report.build import build_report
from xdetox.report.write import read_evaluations
from xdetox.steps.context import StepContext


def run(ctx: StepContext) -> dict[str, Any]:
    evaluations = read_evaluations(ctx.store, ctx.input_records("evaluations"))
    files = build_report(ctx.params, evaluations)
    for rel, data in sorted(files.items()):
        ctx.put_bytes(rel, data)
    plots = sum(1 for rel in files if rel.startswith("plots/"))
    ctx.log(f"report: {len(files)} files ({plots} plots) under {ctx.manifest.output_prefix}/")
    return {"files": len(files), "plots": plots, "settings": len(evaluations)}
