"""Step kind ``analyze``: Paper 1's toxic-neuron analysis of GPT-2-architecture models.

Planned per model the spec's ``analysis`` section selects (pure, no torch: the params below are
the step's whole input). Per model the planner adds the model's params and, when the setting
trains, the tuned model's. Implementation: xdetox.steps.analyze.run. It only decodes: its continuations are scored by the
``analyze_score`` step planned after it (no API key or scorer permit in this GPU pod).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from xdetox.kinds.steps import register
from xdetox.kinds.steps.base import StepKind
from xdetox.kinds.steps.planning import ModelScope
from xdetox.kinds.steps.refs import ModelRef
from xdetox.spec.models import InterventionSpec, ProbeSpec, PromptSet

#: where the hook leaves its step key in the ModelScope's ``extra`` (the analyze_score hook reads it)
ANALYSIS_KEY = "analysis_key"

#: architectures whose MLP layout the analysis knows; "auto" models are analysed only when listed
ANALYSABLE = frozenset({"gpt2", "bloom", "llama"})


def wants_analysis(analysis: Mapping[str, Any] | None, model_id: str, architecture: str) -> bool:
    """Analyse this model? Listed ids when the section names models, else GPT-2-architecture models."""
    if not analysis:
        return False
    listed = analysis.get("models")
    return model_id in listed if listed else architecture == "gpt2"


def analyze_params(analysis: Mapping[str, Any], model: Mapping[str, Any], tuned_model: Mapping[str, Any] | None,
                   prompt_sets: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Params of one model's analyze step (the step's key is their digest: keep them minimal)."""
    wanted = analysis.get("prompt_set")
    ps = next((p for p in prompt_sets if p.get("id") == wanted), None) if wanted else (prompt_sets[0] if prompt_sets else None)
    if ps is None:
        raise ValueError(f"analysis.prompt_set: no prompt set with id {wanted!r}")
    prompts = dict(ps)
    limit = analysis.get("limit_per_language")
    if limit:
        prompts["limit_per_language"] = min(int(limit), int(prompts.get("limit_per_language") or limit))
    return {
        "model": dict(model),
        "tuned_model": dict(tuned_model) if tuned_model else None,
        "probe": dict(analysis.get("probe") or {"source": "bundled:mgpt-probe"}),
        "top_k": int(analysis.get("top_k", 100)),
        "positive_activation": bool(analysis.get("positive_activation", True)),
        "selection_language": str(analysis.get("selection_language", "en")),
        "neurons": analysis.get("neurons"),
        "prompts": prompts,
        "max_new_tokens": int(analysis.get("max_new_tokens", 20)),
        "batch_size": int(analysis.get("batch_size", 8)),
        "intervention": analysis.get("intervention"),
        "compare_reference": bool(analysis.get("compare_reference", False)),
    }


class AnalyzeParams(BaseModel):
    """What analyze_params makes (probe, neurons and intervention as the spec section dumps them)."""

    model_config = ConfigDict(extra="forbid")
    model: ModelRef
    tuned_model: ModelRef | None
    probe: ProbeSpec
    top_k: int
    positive_activation: bool
    selection_language: str
    neurons: Literal["bundled:mgpt-toxic-neurons"] | list[tuple[int, int]] | None
    prompts: PromptSet  # the analysed prompt set, limited per language
    max_new_tokens: int
    batch_size: int
    intervention: InterventionSpec | None
    compare_reference: bool


def plan(scope: ModelScope) -> None:
    s, m = scope.spec, scope.model
    analysis = s.analysis.model_dump(mode="json") if s.analysis is not None else None
    if not wants_analysis(analysis, m.id, m.architecture):
        return
    tuned = scope.tuned
    params = analyze_params(analysis or {}, scope.base.params, tuned.params if tuned else None,
                            [p.model_dump(mode="json") for p in s.prompts])
    inputs = dict(scope.base.inputs)
    if tuned is not None:
        inputs["tuned"] = tuned.inputs["model"]
    key = scope.add("analyze", f"analyze {m.id}", params, inputs)
    scope.setting.run.analyses.append(key)
    # the run's scorer judges its continuations in a step of its own (xdetox.kinds.steps.analyze_score)
    scope.extra[ANALYSIS_KEY] = key


KIND = register(StepKind(
    name="analyze", run="xdetox.steps.analyze:run", image="train", resources="analyze",
    gpu_role="train",
    estimate="xdetox.plan.estimate:estimate_analyze", scope="model", plan=plan, output_dir="analysis",
    params_model=AnalyzeParams,
))
