"""Step kind ``align``: Cross-lingual alignment of a model's hidden states on a parallel prompt set.

Planned per arm when the setting asks for ``metrics.alignment``; the evaluation correlates it.
Implementation: xdetox.steps.align.run.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from xdetox.kinds.steps import register
from xdetox.kinds.steps.base import StepKind
from xdetox.kinds.steps.planning import ArmScope
from xdetox.kinds.steps.refs import AlignmentRef, ModelRef
from xdetox.spec.models import AlignmentSpec


class AlignParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: ModelRef
    alignment: AlignmentSpec
    languages: list[str]  # the alignment's languages, or every prompt set's


def plan(scope: ArmScope) -> None:
    s, m, arm = scope.spec, scope.model.model, scope.arm
    al = s.metrics.alignment
    if al is None:
        return
    langs = al.languages or sorted({x for p in s.prompts for x in p.languages})
    key = scope.add("align", f"align {m.id}/{arm.role}",
                    {"model": arm.params, "alignment": al.model_dump(mode="json"), "languages": langs}, arm.inputs)
    scope.setting.evaluate_alignment(AlignmentRef.of(m.id, arm.role), key)


KIND = register(StepKind(
    name="align", run="xdetox.steps.align:run", image="train", resources="align",
    gpu_role="train",
    estimate="xdetox.plan.estimate:estimate_align", scope="arm", plan=plan, output_dir="alignment",
    params_model=AlignParams,
))
