"""The proof that a scorer kind is one module: a kind defined only here (``length``) is validated by
the spec, planned, costed by the estimator, rendered for Argo (schema + semantic lint clean), and
scored by the real score step, with no xdetox module touched. (A new *step* kind still needs the
planner's hooks, issue 11 milestone 3: not done yet.)"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.kinds_fixtures import LengthScorerSpec, length_kind_declaration
from tests.test_score_step import gen_rows, output_rows, setup_run
from xdetox.executors.argo import lint, schema
from xdetox.executors.argo.render import render
from xdetox.kinds import scorers
from xdetox.plan.estimate import estimate
from xdetox.plan.planner import plan as build_plan
from xdetox.spec import load_spec_text
from xdetox.steps.runner import run_step

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


