"""Scorer kinds declare themselves: the spec validates any registered kind by its own model, with
the user's field paths in errors, and a kind registered from test code is accepted everywhere."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from pydantic import BaseModel

from tests.kinds_fixtures import LengthScorer, LengthScorerSpec  # noqa: F401 - the shared toy kind
from xdetox.kinds import scorers
from xdetox.records import GenerationRow
from xdetox.scoring.base import build_scorer
from xdetox.spec import SpecError, load_spec_text
from xdetox.spec.models import ExperimentSpec

SPEC = """\
name: kinds
models:
  - id: tiny
    source: builtin:tiny
prompts:
  - id: x
    source: bundled:xling-prompts-200
    languages: [en]
scoring:
  kind: {kind}
  {field}
"""


def _banner(spec: Mapping[str, Any]) -> str:
    return "Scorer: length (a test kind)."


@pytest.fixture
def length_kind() -> Iterator[scorers.ScorerKind]:
    kind = scorers.register(scorers.ScorerKind(
        name="length", spec_model=LengthScorerSpec, score_kind="probability", label="length", banner=_banner,
        comparable_with_papers=False, factory="tests.kinds_fixtures:LengthScorer"))
    yield kind
    scorers.unregister("length")


def _problems(text: str) -> list[str]:
    with pytest.raises(SpecError) as exc:
        load_spec_text(text)
    return [f"{p.path}: {p.message}" for p in exc.value.problems]


def test_builtin_kinds_are_registered_in_schema_order() -> None:
    assert [k.name for k in scorers.all_kinds()][:3] == ["lexicon", "perspective", "classifier"]
    assert scorers.get("perspective").score_kind == "probability" and scorers.get("lexicon").score_kind == "hits"
    assert scorers.get("perspective").comparable_with_papers and not scorers.get("classifier").comparable_with_papers


def test_nested_errors_keep_the_users_field_path() -> None:
    probs = _problems(SPEC.format(kind="perspective", field="qps: -1"))
    assert any(p.startswith("scoring.qps:") for p in probs), probs
    probs = _problems(SPEC.format(kind="classifier", field="toxic_label: toxic"))
    assert any(p.startswith("scoring.model:") for p in probs), probs  # required field of the kind's model
    probs = _problems(SPEC.format(kind="lexicon", field="colour: blue"))
    assert any(p.startswith("scoring.colour:") for p in probs), probs


def test_unknown_kind_names_the_registered_ones() -> None:
    probs = _problems(SPEC.format(kind="vibes", field=""))
    assert len(probs) == 1 and "vibes" in probs[0] and "perspective" in probs[0] and "classifier" in probs[0]


def test_a_kind_registered_in_test_code_validates_builds_and_appears_in_the_schema(
        length_kind: scorers.ScorerKind) -> None:
    spec = load_spec_text(SPEC.format(kind="length", field="per_char: 0.5"))
    assert isinstance(spec.scoring, LengthScorerSpec) and spec.scoring.per_char == 0.5
    assert spec.model_dump()["scoring"] == {"kind": "length", "per_char": 0.5, "gpu_seconds_per_text": 0.0}
    assert any(p.startswith("scoring.per_char:") for p in _problems(SPEC.format(kind="length", field="per_char: 0")))
    schema = ExperimentSpec.model_json_schema()
    one_scorer, several = schema["properties"]["scoring"]["anyOf"]  # a scorer, or a list of them
    assert several["items"] == one_scorer
    tags = [_tag(schema, s) for s in one_scorer["oneOf"]]
    assert tags == ["lexicon", "perspective", "classifier", "ngram", "stacked", "length"]
    scorer = build_scorer({"kind": "length", "per_char": 0.25})
    row = GenerationRow(prompt_id="p", language="en", prompt="p", prompt_text="p", sample_index=0, text="abc",
                        seed=1, model_id="m", model_digest="d", arm="base", backend="hf", prompt_set="x")
    assert scorer.score_batch([row])[0].toxicity == 0.75  # 3 characters x 0.25


def test_after_unregistering_the_kind_is_refused() -> None:
    assert "length" not in scorers.names()
    assert any("length" in p for p in _problems(SPEC.format(kind="length", field="")))


def _tag(schema: dict[str, Any], sub: dict[str, Any]) -> str:
    if "$ref" in sub:
        sub = schema["$defs"][sub["$ref"].rsplit("/", 1)[-1]]
    return str(sub["properties"]["kind"]["const"])


def test_kind_declaration_checks_its_tag() -> None:
    class NoTag(BaseModel):
        x: int = 1

    with pytest.raises(ValueError, match="kind: Literal"):
        scorers.ScorerKind(name="x", spec_model=NoTag, score_kind="hits", label="x", banner=_banner,
                           comparable_with_papers=False, factory="m:C")


def test_matrix_over_a_scorer_field_is_checked_against_the_kinds_models() -> None:
    ok = SPEC.format(kind="perspective", field="qps: 1") + "matrix:\n  scoring.qps: [1, 2]\n"
    spec = load_spec_text(ok)
    assert spec.matrix == {"scoring.qps": [1, 2]}
    bad = SPEC.format(kind="perspective", field="qps: 1") + "matrix:\n  scoring.qpz: [1, 2]\n"
    assert any(p.startswith("matrix.scoring.qpz: no such field") for p in _problems(bad))
