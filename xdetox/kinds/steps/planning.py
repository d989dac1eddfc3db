"""What a step kind's planning hook works with: the nesting of scopes and the step builder.

The planner (xdetox.plan.planner) walks one fixed nesting and, at each level, calls the hooks of
the kinds declared at that scope, in registration order:

    run                                     RunScope       (report)
      setting  (each matrix setting)        SettingScope   (evaluate)
        model  (each model of the setting)  ModelScope     (build_model, train, analyze)
          arm  (base, tuned)                ArmScope       (generate, score, align)

Model and arm hooks run before the setting's hooks, setting hooks before the run's. A hook adds
steps through ``scope.add`` and leaves what later hooks need on the scopes: the arms of a model
(build_model names the base model's input, train adds the tuned arm), a setting's evaluation
inputs, the run's analyses. A kind registered from outside xdetox plans through the same hooks.

Pure: no I/O; the builder only computes keys.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from xdetox.kinds import steps as step_kinds
from xdetox.kinds.steps.refs import AlignmentRef, ArmRole, ScoreRef
from xdetox.manifest import Shard, StepManifest
from xdetox.spec.models import ExperimentSpec, ModelSpec, PromptSet


class PlanBuilder:
    """The steps planned so far, by key: a step planned twice (same kind, params, shard, inputs) is
    one step, so a base model's generations are shared by every training setting of a grid."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.steps: dict[str, StepManifest] = {}

    def add(
        self,
        kind: str,
        label: str,
        params: dict[str, Any],
        inputs: dict[str, list[str]] | None = None,
        shard: Shard | None = None,
        output_prefix: str | None = None,
        group: str | None = None,
    ) -> str:
        inputs = inputs or {}
        key = StepManifest.compute_key(kind, params, inputs, shard)
        if key in self.steps:
            return key
        declared = step_kinds.get(kind)
        if declared.params_model is not None:
            try:
                declared.params_model.model_validate(params)
            except ValidationError as e:  # a planning hook's bug, not the user's: say whose
                raise ValueError(f"step kind {kind!r}: its planning hook made params that "
                                 f"{declared.params_model.__name__} refuses ({label}):\n{e}") from None
        if output_prefix is None:
            base = declared.output_dir or kind
            output_prefix = f"{base}/{group or key}"
        self.steps[key] = StepManifest(
            kind=kind, key=key, run_id=self.run_id, label=label, params=params, inputs=inputs, shard=shard,
            output_prefix=output_prefix,
        )
        return key


def model_params(m: ModelSpec, arm: str) -> dict[str, Any]:
    """How steps name a model arm in their params (part of their keys: keep it minimal)."""
    return {"id": m.id, "source": m.source, "revision": m.revision, "dtype": m.dtype,
            "architecture": m.architecture, "arm": arm}


@dataclass
class Arm:
    """A model as generated from: its params and the steps that produce its weights (if any)."""

    name: str  # "base", or "tuned:<method>-<languages>"
    params: dict[str, Any]
    inputs: dict[str, list[str]] = field(default_factory=dict)

    @property
    def role(self) -> ArmRole:
        return "base" if self.name == "base" else "tuned"


@dataclass
class GenerationGroup:
    """One prompt set's generate shards of an arm (what score hooks read)."""

    prompt_set: PromptSet
    group: str  # digest naming the shard group's output folder
    keys: list[str]


class _AddsSteps:
    """``scope.add``: every scope adds steps to the run's one builder (see PlanBuilder.add)."""

    def _builder(self) -> PlanBuilder:
        raise NotImplementedError

    def add(self, kind: str, label: str, params: dict[str, Any], inputs: dict[str, list[str]] | None = None,
            shard: Shard | None = None, output_prefix: str | None = None, group: str | None = None) -> str:
        return self._builder().add(kind, label, params, inputs, shard, output_prefix, group)


@dataclass
class RunScope(_AddsSteps):
    spec: ExperimentSpec
    builder: PlanBuilder
    settings: list[SettingScope] = field(default_factory=list)
    #: analyze steps of every setting, in plan order (the report lists them)
    analyses: list[str] = field(default_factory=list)
    #: the run's final step (the report): what ``xdetox report`` rebuilds
    report_key: str | None = None
    #: room for a kind from outside xdetox to pass things between its hooks
    extra: dict[str, Any] = field(default_factory=dict)

    def _builder(self) -> PlanBuilder:
        return self.builder


@dataclass
class SettingScope(_AddsSteps):
    run: RunScope
    index: int
    label: str
    overrides: dict[str, Any]
    #: the spec with this matrix setting applied
    spec: ExperimentSpec
    #: name -> step keys, in plan order: what the setting's evaluation reads
    evaluation_inputs: dict[str, list[str]] = field(default_factory=dict)
    #: one per (model, arm, prompt set) scored, and per arm aligned: what each input is
    scores: list[ScoreRef] = field(default_factory=list)
    alignments: list[AlignmentRef] = field(default_factory=list)
    train_keys: list[str] = field(default_factory=list)
    evaluate_key: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def _builder(self) -> PlanBuilder:
        return self.run.builder

    def evaluate_scores(self, ref: ScoreRef, keys: list[str]) -> None:
        """The evaluation reads these score shards as one arm, ``ref`` saying which."""
        self.evaluation_inputs[ref.input] = keys
        self.scores.append(ref)

    def evaluate_perplexity(self, score_input: str, name: str, keys: list[str]) -> None:
        """The evaluation joins these perplexity shards, row by row, to the score shards of
        ``score_input`` (the same generate shards, in the same order)."""
        self.evaluation_inputs[name] = keys
        self.scores = [r.model_copy(update={"perplexity_input": name}) if r.input == score_input else r
                       for r in self.scores]

    def evaluate_alignment(self, ref: AlignmentRef, key: str) -> None:
        self.evaluation_inputs[ref.input] = [key]
        self.alignments.append(ref)


@dataclass
class ModelScope(_AddsSteps):
    setting: SettingScope
    model: ModelSpec
    #: the untuned model (build_model hooks set its inputs)
    base: Arm
    #: the trained model, once a train hook added it
    tuned: Arm | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def _builder(self) -> PlanBuilder:
        return self.setting.run.builder

    @property
    def spec(self) -> ExperimentSpec:
        return self.setting.spec

    @property
    def arms(self) -> list[Arm]:
        """What is generated from: the base model unless only the tuned one is wanted, then the tuned."""
        out = [self.base] if self.spec.compare_base or self.tuned is None else []
        return out + ([self.tuned] if self.tuned is not None else [])


@dataclass
class ArmScope:
    model: ModelScope
    arm: Arm
    generations: list[GenerationGroup] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def spec(self) -> ExperimentSpec:
        return self.model.setting.spec

    @property
    def setting(self) -> SettingScope:
        return self.model.setting

    def add(self, kind: str, label: str, params: dict[str, Any], inputs: dict[str, list[str]] | None = None,
            shard: Shard | None = None, output_prefix: str | None = None, group: str | None = None) -> str:
        return self.model.setting.run.builder.add(kind, label, params, inputs, shard, output_prefix, group)
