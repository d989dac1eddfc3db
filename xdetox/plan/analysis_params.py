"""What the planner puts in an ``analyze`` step's params (pure, no torch): see xdetox.steps.analyze.

The spec section (proposed ``ExperimentSpec.analysis``, dumped to a dict) names the probe, how many
neurons, which prompt set to decode and the intervention; per model the planner adds the model's
params and, when the setting trains, the tuned model's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

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
        "top_k": int(analysis.get("top_k", 36)),
        "neurons": analysis.get("neurons"),
        "prompts": prompts,
        "max_new_tokens": int(analysis.get("max_new_tokens", 20)),
        "batch_size": int(analysis.get("batch_size", 8)),
        "intervention": analysis.get("intervention"),
        "compare_reference": bool(analysis.get("compare_reference", False)),
    }
