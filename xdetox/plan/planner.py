"""The planner: a pure function from an experiment spec to a DAG of step manifests.

No I/O happens here, and no step kind is named here: each kind's declaration
(xdetox.kinds.steps) says at which scope it is planned and how (its planning hook). Matrix
settings expand first; the planner then walks the nesting of xdetox.kinds.steps.planning

    for each setting: for each model: model hooks, then for each arm: arm hooks
                      then the setting's hooks
    then the run's hooks

calling the hooks of one scope in registration order. A step whose key (kind + params + shard +
input keys) is already planned is shared, not repeated: the base model, its "before" generations
and their scores are planned once for a whole grid of training settings.

With the built-in kinds, per setting and model:
  build_model (builtin models only) -> train (unless method none) -> analyze (when asked)
  for each arm (base, tuned) and prompt set: generate shard i/N -> score shard i/N
  align (when alignment is requested) per arm
  evaluate: all score shards and alignments of the setting
and one report over every setting's evaluation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from xdetox.kinds import steps as step_kinds
from xdetox.kinds.steps.base import Scope
from xdetox.kinds.steps.planning import (
    Arm,
    ArmScope,
    ModelScope,
    PlanBuilder,
    RunScope,
    SettingScope,
    model_params,
)
from xdetox.manifest import StepManifest, digest
from xdetox.plan.model import Plan, SettingInfo
from xdetox.spec.matrix import expand_matrix
from xdetox.spec.models import ExperimentSpec


def _setting_label(overrides: dict[str, Any]) -> str:
    """A variant's own label when it has one, then the matrix values that vary."""
    label = overrides.get("label")
    rest = [f"{k}={_short(v)}" for k, v in overrides.items() if k != "label"]
    if label is not None:
        matrix_part = [r for r in rest if not r.split("=")[0].startswith("variant")]
        return " ".join([str(label), *(f"[{r}]" for r in matrix_part)]) if matrix_part else str(label)
    return ", ".join(rest) or "default"


def _short(value: Any) -> str:
    if isinstance(value, list) and all(isinstance(v, str | int | float) for v in value):
        return "+".join(str(v) for v in value)
    if isinstance(value, list | dict):
        text = str(value)
        return text if len(text) <= 40 else f"<{type(value).__name__} #{digest(value, 6)}>"
    return str(value)


def _hooks() -> dict[Scope, list[Callable[[Any], None]]]:
    """Each scope's planning hooks, in registration order (the built-ins register in plan order)."""
    out: dict[Scope, list[Callable[[Any], None]]] = {}
    for kind in step_kinds.all_kinds():
        hook = kind.planner()
        if kind.scope is not None and hook is not None:
            out.setdefault(kind.scope, []).append(hook)
    return out


def plan(spec: ExperimentSpec) -> Plan:
    hooks = _hooks()
    run = RunScope(spec=spec, builder=PlanBuilder(spec.name))
    for index, (overrides, s) in enumerate(expand_matrix(spec)):
        setting = SettingScope(run=run, index=index, label=_setting_label(overrides), overrides=overrides, spec=s)
        for m in s.models:
            model = ModelScope(setting=setting, model=m, base=Arm("base", model_params(m, "base")))
            for hook in hooks.get("model", []):
                hook(model)
            for arm in model.arms:
                arm_scope = ArmScope(model=model, arm=arm)
                for hook in hooks.get("arm", []):
                    hook(arm_scope)
        for hook in hooks.get("setting", []):
            hook(setting)
        run.settings.append(setting)
    for hook in hooks.get("run", []):
        hook(run)
    settings = []
    for st in run.settings:
        if st.evaluate_key is None:
            raise ValueError(f"setting {st.label!r}: no step kind evaluated it (is a kind with scope 'setting' "
                             "that sets evaluate_key registered?)")
        settings.append(SettingInfo(index=st.index, label=st.label, overrides=st.overrides,
                                    evaluate_key=st.evaluate_key, train_keys=st.train_keys))
    if run.report_key is None:
        raise ValueError("no step kind reported the run (is a kind with scope 'run' that sets report_key registered?)")
    return Plan(
        run_id=spec.name,
        spec_digest=digest(spec.model_dump(mode="json")),
        settings=settings,
        steps=_topological(list(run.builder.steps.values())),
        report_key=run.report_key,
    )


def _topological(steps: list[StepManifest]) -> list[StepManifest]:
    """Dependency order, stable: among ready steps, the order they were planned in."""
    by_key = {s.key: s for s in steps}
    order = {s.key: i for i, s in enumerate(steps)}
    done: set[str] = set()
    out: list[StepManifest] = []
    pending = list(steps)
    while pending:
        ready = [s for s in pending if all(d in done for d in s.deps())]
        if not ready:
            missing = {d for s in pending for d in s.deps() if d not in by_key}
            raise ValueError(f"plan has a cycle or missing steps: {sorted(missing) or 'cycle'}")
        ready.sort(key=lambda s: order[s.key])
        for s in ready:
            out.append(s)
            done.add(s.key)
        pending = [s for s in pending if s.key not in done]
    return out
