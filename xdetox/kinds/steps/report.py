"""Step kind ``report``: Every setting's metrics to the run's report (HTML, Markdown, plots).

Planned once per run, over every setting's evaluation (and the run's neuron analyses).
Implementation: xdetox.steps.report.run.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from xdetox.kinds.steps import register
from xdetox.kinds.steps.base import StepKind
from xdetox.kinds.steps.planning import RunScope
from xdetox.kinds.steps.refs import ScorerDump


class ReportSetting(BaseModel):
    model_config = ConfigDict(extra="forbid")
    index: int
    label: str
    overrides: dict[str, Any]  # the matrix values / variant fields of this setting


class ReportParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    run_id: str
    description: str
    settings: list[ReportSetting]  # in the order of the evaluations input
    scorer: ScorerDump
    compare_scorers: list[ScorerDump] = Field(default_factory=list)  # absent for one-scorer specs
    matrix: dict[str, Any]


def plan(scope: RunScope) -> None:
    spec = scope.spec
    params: dict[str, Any] = {
        "run_id": spec.name,
        "description": spec.description,
        "settings": [{"index": st.index, "label": st.label, "overrides": st.overrides} for st in scope.settings],
        "scorer": spec.scoring.model_dump(mode="json"),
        "matrix": {k: v for k, v in spec.matrix.items()},
    }
    if spec.compare_scorers:
        params["compare_scorers"] = [c.model_dump(mode="json") for c in spec.compare_scorers]
    inputs = {"evaluations": [st.evaluate_key for st in scope.settings if st.evaluate_key is not None]}
    if scope.analyses:  # the report lists each analysis; without one the report's key is unchanged
        inputs["analyses"] = list(dict.fromkeys(scope.analyses))
    scope.report_key = scope.add("report", "report", params, inputs, output_prefix="results")


KIND = register(StepKind(
    name="report", run="xdetox.steps.report:run", image="score", resources="report",
    gpu_role="cpu", scope="run", plan=plan, params_model=ReportParams,
))
