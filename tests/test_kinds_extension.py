"""The proof that a kind is one module, for scorer kinds and step kinds alike.

A scorer kind defined only here (``length``) is validated by the spec, planned, costed by the
estimator, rendered for Argo (schema + semantic lint clean), and scored by the real score step.
A step kind defined only here (``tally``: declaration, params model, planning, estimate and run) is planned
after each setting's evaluation, costed, validated in the plan's manifests, run by the local executor
against a file:// store and rendered for Argo. No xdetox module is touched for either.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, ValidationError
from rich.console import Console

from tests import toy_steps
from tests.kinds_fixtures import LengthScorerSpec, length_kind_declaration
from tests.test_score_step import gen_rows, output_rows, setup_run
from xdetox.executors.argo import lint, schema
from xdetox.executors.argo.render import render
from xdetox.executors.local import run_plan
from xdetox.executors.publish import publish, run_store
from xdetox.kinds import scorers
from xdetox.kinds import steps as step_kinds
from xdetox.kinds.steps.planning import SettingScope
from xdetox.manifest import StepManifest
from xdetox.plan import Plan
from xdetox.plan.estimate import EstimateContext, KindEstimate, estimate
from xdetox.plan.planner import plan as build_plan
from xdetox.spec import load_spec_text
from xdetox.spec.models import StepResources
from xdetox.steps.context import StepContext
from xdetox.steps.runner import read_commit, run_step
from xdetox.store import open_store

SPEC = """\
name: ext
store: s3://bucket/prefix
models: [{id: tiny, source: builtin:tiny}]
prompts: [{id: x, source: bundled:xling-prompts-200, languages: [en, de], limit_per_language: 10}]
generation: {samples: 2}
scoring: {kind: length, per_char: 0.5, gpu_seconds_per_text: 36}
"""


@pytest.fixture
def length_kind() -> Iterator[scorers.ScorerKind]:
    yield scorers.register(length_kind_declaration())
    scorers.unregister("length")


def test_a_new_scorer_kind_plans_costs_and_renders(length_kind: scorers.ScorerKind) -> None:
    spec = load_spec_text(SPEC)
    assert isinstance(spec.scoring, LengthScorerSpec)
    plan = build_plan(spec)
    scores = [s for s in plan.steps if s.kind == "score"]
    assert scores and all(s.params["scorer"]["kind"] == "length" for s in scores)
    # no training, so one arm (base): 2 languages x 10 prompts x 2 samples = 40 texts;
    # the kind declares 36 GPU-seconds per text -> 40 x 36 / 3600 = 0.4 GPU-hours
    est = estimate(plan).by_kind["score"]
    assert est.scored_texts == 40
    assert est.gpu_hours == pytest.approx(0.4)
    wf = render(plan, spec)
    assert schema.errors(wf) == [] and lint.lint(wf) == []


def test_the_real_score_step_runs_a_new_scorer_kind(tmp_path: Path, length_kind: scorers.ScorerKind) -> None:
    rows = gen_rows(7)
    store, m = setup_run(tmp_path, rows, {"kind": "length", "per_char": 0.1})
    rec, _ = run_step(m, store, log=lambda _: None)
    out = output_rows(store, rec)
    # min(1, characters x 0.1), computed by hand from gen_rows' texts
    want = {"you fucking idiot": 1.0, "a calm sentence": 1.0, "": 0.0, "shit happens, man": 1.0,
            "nothing here at all": 1.0}
    assert [r.toxicity for r in out] == [want[r.text] for r in rows]
    assert {r.score_kind for r in out} == {"probability"} and rec.info["scorer_id"] == "length"




# ---------------------------------------------------------------------------- a new step kind
def plan_tally(scope: SettingScope) -> None:
    """After the setting's evaluation: one tally over its evaluation and every score shard it read."""
    scores = [k for ref in scope.scores for k in scope.evaluation_inputs[ref.input]]
    assert scope.evaluate_key is not None  # evaluate's hook ran first: it is registered first
    scope.add("tally", f"tally {scope.label}", {"setting": scope.label, "arms": len(scope.scores)},
              {"evaluation": [scope.evaluate_key], "scores": scores})


class TallyParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    setting: str
    arms: int


def run_tally(ctx: StepContext) -> dict[str, Any]:
    """Counts the score rows the setting's evaluation read (the toy steps write 5 lines each)."""
    rows = sum(ctx.store.get_bytes(o.key).count(b"\n") for rec in ctx.input_records("scores") for o in rec.outputs)
    evaluations = len(ctx.input_records("evaluation"))
    ctx.put_json("tally.json", {"score_rows": rows, "evaluations": evaluations, "arms": ctx.params["arms"]})
    return {"score_rows": rows}


def estimate_tally(step: StepManifest, r: KindEstimate, ctx: EstimateContext) -> None:
    r.gpu_hours += 0.25 * len(step.inputs["scores"])


TALLY_SPEC = """\
name: tally-run
store: s3://bucket/prefix
seed: 7
models: [{id: tiny, source: builtin:tiny}]
prompts: [{id: x, source: bundled:xling-prompts-200, languages: [en, de], limit_per_language: 4}]
generation: {samples: 2, max_new_tokens: 4}
scoring: {kind: lexicon}
sharding: {generate: 3}
matrix: {seed: [7, 8]}
"""


@pytest.fixture
def tally_kind() -> Iterator[step_kinds.StepKind]:
    kind = step_kinds.register(step_kinds.StepKind(
        name="tally", run=f"{__name__}:run_tally", image="score", resources="tally",
        default_resources=StepResources(cpu="250m", memory="512Mi"),
        scope="setting", plan=plan_tally, output_dir="tallies", params_model=TallyParams,
        estimate=f"{__name__}:estimate_tally"))
    yield kind
    step_kinds.unregister("tally")


def test_the_planner_checks_a_hooks_params_against_the_kinds_model(tally_kind: step_kinds.StepKind) -> None:
    def sloppy(scope: SettingScope) -> None:
        scope.add("tally", "tally", {"setting": scope.label, "arms": "several"}, {"evaluation": [scope.evaluate_key]})

    step_kinds.register(dataclasses.replace(tally_kind, plan=sloppy))
    with pytest.raises(ValueError, match=r"step kind 'tally': its planning hook made params that TallyParams "
                                         r"refuses(.|\n)*arms(.|\n)*valid integer"):
        build_plan(load_spec_text(TALLY_SPEC))


def test_a_new_step_kind_is_planned_after_evaluate(tally_kind: step_kinds.StepKind) -> None:
    p = build_plan(load_spec_text(TALLY_SPEC))
    tallies = [s for s in p.steps if s.kind == "tally"]
    # two matrix settings (seed 7, 8) -> one tally each, each reading its own setting's evaluation
    assert len(tallies) == 2
    for st, t in zip(p.settings, tallies, strict=True):
        assert t.inputs["evaluation"] == [st.evaluate_key]
        # no training -> one arm (base) x one prompt set x 3 shards = 3 score steps per setting
        assert len(t.inputs["scores"]) == 3
        assert all(p.by_key()[k].kind == "score" for k in t.inputs["scores"])
        assert t.params == {"setting": st.label, "arms": 1}
        assert t.output_prefix == f"tallies/{t.key}"
    order = [s.key for s in p.steps]
    assert all(order.index(t.key) > order.index(st.evaluate_key) for st, t in zip(p.settings, tallies, strict=True))
    # the built-in kinds are untouched: 2 x (3 generate + 3 score) + 1 build_model (seed differs:
    # 2) + 2 evaluate + 1 report, plus the 2 tallies
    assert p.counts() == {"build_model": 2, "generate": 6, "score": 6, "evaluate": 2, "report": 1, "tally": 2}
    est = estimate(p).by_kind["tally"]  # its own estimate hook: 0.25 GPU-hours per score shard read
    assert est.steps == 2 and est.gpu_hours == pytest.approx(2 * 3 * 0.25)


def test_manifests_of_a_new_step_kind_validate_while_it_is_registered(tally_kind: step_kinds.StepKind) -> None:
    p = build_plan(load_spec_text(TALLY_SPEC))
    text = p.model_dump_json()
    again = Plan.model_validate_json(text)  # what `xdetox step` and the report do with stored JSON
    assert [s.kind for s in again.steps] == [s.kind for s in p.steps]
    step_kinds.unregister("tally")
    with pytest.raises(ValidationError, match="unknown step kind 'tally'"):
        Plan.model_validate_json(text)
    with pytest.raises(ValidationError, match="unknown step kind 'nope'"):
        StepManifest(kind="nope", key="k", run_id="r", label="l", output_prefix="x")


def test_a_new_step_kind_runs_locally_against_a_file_store(tmp_path: Path, tally_kind: step_kinds.StepKind) -> None:
    spec = load_spec_text(TALLY_SPEC.replace("s3://bucket/prefix", (tmp_path / "store").as_uri()))
    p = build_plan(spec)
    rs = run_store(open_store(spec.store), p.run_id)
    publish(p, rs, TALLY_SPEC)
    toy_steps.install()  # the built-in kinds as toys: only tally's own code runs for real
    try:
        result = run_plan(p, rs, console=Console(quiet=True), show_progress=False)
    finally:
        toy_steps.uninstall()
    assert result.count("ran") == len(p.steps)
    for t in (s for s in p.steps if s.kind == "tally"):
        rec = read_commit(rs, t.key)
        assert rec.kind == "tally" and [o.key for o in rec.outputs] == [f"tallies/{t.key}/tally.json"]
        # 3 score shards x 5 toy lines each; one evaluation; one arm
        assert json.loads(rs.get_bytes(rec.outputs[0].key)) == {"score_rows": 15, "evaluations": 1, "arms": 1}
        assert rec.info["score_rows"] == 15


def test_a_new_step_kind_renders_for_argo(tally_kind: step_kinds.StepKind) -> None:
    spec = load_spec_text(TALLY_SPEC)
    p = build_plan(spec)
    wf = render(p, spec)
    assert schema.errors(wf) == [] and lint.lint(wf) == []
    templates = {t["name"]: t for t in wf["spec"]["templates"]}
    step = templates["step-tally"]
    assert step["container"]["args"] == ["{{workflow.parameters.store}}/runs/tally-run/steps/{{inputs.parameters.key}}/manifest.json"]
    assert step["metadata"]["labels"]["xdetox.io/step-kind"] == "tally"
    # spec.resources has no "tally" entry: the declared default sizes the pods, and no GPU is asked for
    assert step["container"]["resources"] == {"requests": {"cpu": "250m", "memory": "512Mi"},
                                              "limits": {"memory": "512Mi"}}
    assert step["metadata"]["labels"]["xdetox.io/role"] == "cpu"
    tasks = {t["name"]: t for t in templates["main"]["dag"]["tasks"]}
    for st in p.settings:
        t = next(s for s in p.steps if s.kind == "tally" and s.inputs["evaluation"] == [st.evaluate_key])
        task = tasks[f"tally-{t.key}"]
        assert task["template"] == "step-tally" and f"evaluate-{st.evaluate_key}" in task["dependencies"]
