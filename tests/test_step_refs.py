"""Typed step references: the planner says what each of the evaluation's inputs is (model, arm,
prompt set) in the evaluate step's params, and the step reads that, never the input's name."""

from __future__ import annotations

import json
from pathlib import Path

from tests.metrics_fixtures import fake_alignment, make_setting
from xdetox.kinds.steps.refs import AlignmentRef, ScoreRef
from xdetox.manifest import StepManifest
from xdetox.plan import plan
from xdetox.spec import load_spec_text
from xdetox.steps.runner import run_step
from xdetox.store import open_store

SPEC = """\
name: refs
store: s3://b/p
models: [{id: tiny, source: builtin:tiny}, {id: g2, source: gpt2}]
prompts:
  - {id: a, source: bundled:xling-prompts-200, languages: [en, de], limit_per_language: 3}
  - {id: b, source: bundled:xling-prompts-200, languages: [fr], limit_per_language: 3}
training: {method: dpo, data: {format: paradetox, path: bundled:paradetox, languages: [en]}}
sharding: {generate: 2}
metrics: {alignment: {}}
"""


def _model_of(by_key: dict[str, StepManifest], step: StepManifest) -> dict:
    """The model params of the generate step a score step reads (or of an align step itself)."""
    if step.kind == "score":
        (gk,) = step.inputs["generations"]
        step = by_key[gk]
    return step.params["model"]


def test_evaluate_params_say_what_each_input_is() -> None:
    p = plan(load_spec_text(SPEC))
    by_key = p.by_key()
    (ev,) = [s for s in p.steps if s.kind == "evaluate"]
    scores = [ScoreRef.model_validate(r) for r in ev.params["arms"]]
    aligns = [AlignmentRef.model_validate(r) for r in ev.params["alignments"]]
    # 2 models x 2 arms (compare_base) x 2 prompt sets; 2 models x 2 arms aligned
    assert [(r.model_id, r.arm, r.prompt_set) for r in scores] == [
        (m, arm, ps) for m in ("tiny", "g2") for arm in ("base", "tuned") for ps in ("a", "b")]
    assert [(r.model_id, r.arm) for r in aligns] == [(m, arm) for m in ("tiny", "g2") for arm in ("base", "tuned")]
    assert {r.prompt_set: r.languages for r in scores} == {"a": ["en", "de"], "b": ["fr"]}
    # every reference names an input of the step, and that input's steps are what the reference says
    for r in scores:
        steps = [by_key[k] for k in ev.inputs[r.input]]
        assert [s.kind for s in steps] == ["score", "score"]  # one per generate shard
        for s in steps:
            model = _model_of(by_key, s)
            assert (model["id"], model["arm"]) == (r.model_id, r.arm)
            assert by_key[s.inputs["generations"][0]].params["prompts"]["id"] == r.prompt_set
    for r in aligns:
        (a,) = [by_key[k] for k in ev.inputs[r.input]]
        assert a.kind == "align" and (a.params["model"]["id"], a.params["model"]["arm"]) == (r.model_id, r.arm)
    assert set(ev.inputs) == {r.input for r in scores} | {r.input for r in aligns}


def test_no_alignment_no_alignments_param() -> None:
    """Without alignment the evaluate params (and so every key) are what they were before refs."""
    p = plan(load_spec_text(SPEC.replace("metrics: {alignment: {}}\n", "")))
    (ev,) = [s for s in p.steps if s.kind == "evaluate"]
    assert "alignments" not in ev.params and len(ev.params["arms"]) == 8


def test_the_evaluation_never_parses_input_names(tmp_path: Path) -> None:
    """Rename every input to something with no structure: the metrics come out the same."""
    langs = ["en", "de", "fr"]
    store = open_store(tmp_path.as_uri())
    m = make_setting(store, languages=langs, alignment=fake_alignment(langs))
    renames = {name: f"in{i}" for i, name in enumerate(m.inputs)}
    params = json.loads(json.dumps(m.params))
    for ref in params["arms"] + params["alignments"]:
        ref["input"] = renames[ref["input"]]
    inputs = {renames[k]: v for k, v in m.inputs.items()}
    key = StepManifest.compute_key("evaluate", params, inputs, None)
    renamed = m.model_copy(update={"params": params, "inputs": inputs, "key": key, "output_prefix": f"evaluations/{key}"})
    out = []
    for manifest in (m, renamed):
        rec, _ = run_step(manifest, store, log=lambda s: None)
        out.append(json.loads(store.get_bytes(rec.outputs[0].key)))
    first, second = out
    assert first["alignment"]["tiny"]["arm"] == "base" and first["alignment"]["tiny"]["correlations"]
    assert second["alignment"] == first["alignment"] | {
        "tiny": {**first["alignment"]["tiny"], "correlations": [
            {**c, "tuned": renames[c["tuned"]]} for c in first["alignment"]["tiny"]["correlations"]]}}
    assert [a["average"] for a in second["arms"]] == [a["average"] for a in first["arms"]]
