"""Several scorers in one spec: the spec forms, every row keeping every scorer's score, per-scorer
metrics, and the per-language agreement between scorers (hand-made rows, hand arithmetic)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.kinds_fixtures import length_kind_declaration
from tests.metrics_fixtures import commit_scores, report_manifest, run_evaluate, score_row
from tests.scoring_fixtures import gen_row
from tests.spec_fixtures import smoke_with_scoring
from tests.test_score_step import output_rows, setup_run
from xdetox.kinds import scorers as scorer_kinds
from xdetox.metrics.scorer_agreement import pair_agreement
from xdetox.spec.errors import SpecError
from xdetox.spec.load import load_spec, validate_spec
from xdetox.steps.runner import run_step
from xdetox.store import open_store

ROOT = Path(__file__).resolve().parents[1]
# both scored: texts 0, 1, 2, 4. Ranks of a (.9 .2 .6 .1) = 4 2 3 1; of b (3 0 0 1) = 4 1.5 1.5 3.
# Centred: (1.5 -.5 .5 -1.5) and (1.5 -1 -1 .5): sum of products 1.5, sums of squares 5 and 4.5,
# rho = 1.5 / sqrt(22.5). Toxic calls: a >= .5 -> T F T F; b >= 1 hit -> T F F T: 2 of 4 differ.
RHO_EN = 1.5 / math.sqrt(22.5)


def test_pair_agreement_by_hand() -> None:
    res = pair_agreement([0.9, 0.2, 0.6, None, 0.1], [3, 0, 0, 1, 1], "probability", "hits", 0.5, n_resamples=200)
    assert (res["n"], res["both_scored"], res["missing_a"], res["missing_b"]) == (5, 4, 1, 0)
    assert (res["toxic_a"], res["toxic_b"]) == (2, 2)
    assert res["spearman"] == pytest.approx(RHO_EN)
    assert res["disagree_share"] == pytest.approx(0.5)
    lo, hi = res["disagree_share_ci"]
    assert 0.0 <= lo <= 0.5 <= hi <= 1.0
    none = pair_agreement([None], [1.0], "probability", "probability", 0.5, n_resamples=10)
    assert none["both_scored"] == 0 and none["spearman"] is None and none["disagree_share"] is None


def _smoke() -> dict[str, Any]:
    """The smoke with one scorer (lexicon v2, the smoke's second): the base the forms are added to."""
    dump = load_spec(ROOT / "jobs" / "smoke.yaml").model_dump(mode="json")
    metrics = {k: v for k, v in dump["metrics"].items() if k != "headline"}
    return {**{k: v for k, v in dump.items() if k != "compare_scorers"}, "scoring": dump["compare_scorers"][0],
            "metrics": metrics}


CLASSIFIER = {"kind": "classifier", "model": "models/x", "toxic_label": "toxic"}


def test_spec_forms() -> None:
    one = _smoke()
    assert "compare_scorers" not in one  # one scorer: the dump (spec digest, step keys) is as before
    listed = validate_spec({**one, "scoring": [{"kind": "lexicon", "version": 2}, CLASSIFIER]})
    named = validate_spec({**one, "compare_scorers": [CLASSIFIER]})
    assert listed.model_dump(mode="json") == named.model_dump(mode="json")
    assert listed.scoring.kind == "lexicon" and [c.kind for c in listed.compare_scorers] == ["classifier"]
    with pytest.raises(SpecError, match="not both"):
        validate_spec({**one, "scoring": [{"kind": "lexicon"}, CLASSIFIER], "compare_scorers": [CLASSIFIER]})
    with pytest.raises(SpecError, match="same scorer twice"):
        validate_spec({**one, "scoring": [{"kind": "lexicon"}, {"kind": "lexicon"}]})
    with pytest.raises(SpecError, match="empty list"):
        validate_spec({**one, "scoring": []})


def test_planner_gives_score_steps_every_scorer() -> None:
    from xdetox.plan import plan as make_plan

    one = _smoke()
    single = make_plan(validate_spec(one))
    several = make_plan(validate_spec({**one, "scoring": [{"kind": "lexicon"}, CLASSIFIER]}))
    score_single = [s for s in single.steps if s.kind == "score"]
    score_several = [s for s in several.steps if s.kind == "score"]
    assert all("also" not in s.params for s in score_single)
    assert all(s.params["also"] == [{**CLASSIFIER, "batch_size": 32, "max_length": 256, "languages": None}]
               for s in score_several)
    assert {s.key for s in score_single}.isdisjoint({s.key for s in score_several})
    report = next(s for s in several.steps if s.kind == "report")
    assert report.params["compare_scorers"][0]["kind"] == "classifier"


@pytest.fixture
def length_kind() -> Iterator[None]:
    scorer_kinds.register(length_kind_declaration())
    yield
    scorer_kinds.unregister("length")


def test_score_step_rows_keep_every_scorer(tmp_path: Path, length_kind: None) -> None:
    rows = [gen_row("fucking", "en", 0), gen_row("a calm sentence", "en", 1), gen_row("a calm sentence", "xx", 2)]
    store, m = setup_run(tmp_path, rows, {"kind": "lexicon"})
    m = m.model_copy(update={"params": {**m.params, "also": [{"kind": "length", "per_char": 0.1}]}})
    rec, _ = run_step(m, store, log=lambda _: None)
    out = output_rows(store, rec)
    assert [r.hits for r in out] == [1, 0, None]
    others = [r.other_scores for r in out]
    assert all(o is not None and len(o) == 1 and o[0].scorer_id == "length" for o in others)
    # length: min(1, chars x 0.1): 7 chars -> .7; 15 -> 1; the xx row has no lexicon but a length score
    assert [o[0].toxicity for o in others] == [pytest.approx(0.7), 1.0, 1.0]  # type: ignore[index]
    assert rec.info["other_scorers"][0]["scorer_id"] == "length" and rec.info["other_scorers"][0]["missing"] == 0
    assert rec.info["missing"] == 1


def _other(hits: int | None) -> list[dict[str, Any]]:
    return [{"scorer_id": "lexicon", "scorer_version": "1", "score_kind": "hits", "hits": hits,
             "score_error": None if hits is not None else "no lexicon"}]


def test_evaluate_and_report_per_scorer_metrics_and_agreement(tmp_path: Path) -> None:
    store = open_store(tmp_path.as_uri())
    data = {"en": ([0.9, 0.2, 0.6, None, 0.1], [3, 0, 0, 1, 1]), "de": ([0.8, 0.1], [2, 0])}
    rows = [score_row(prompt_id=f"{lang}{i}", language=lang, toxicity=a, other_scores=_other(b),
                      score_error=None if a is not None else "quota")
            for lang, (tox, hits) in data.items() for i, (a, b) in enumerate(zip(tox, hits, strict=True))]
    commit_scores(store, "score-base", rows, shards=1)
    params = {"metrics": {"toxicity": True, "diversity": True, "perplexity": None, "alignment": None,
                          "bootstrap_samples": 100, "confidence": 0.95, "threshold": 0.5},
              "arms": [{"input": "scores:tiny:base:xling", "model_id": "tiny", "arm": "base", "prompt_set": "xling",
                        "languages": ["en", "de"]}], "scorer_kind": "perspective", "training_method": "none"}
    inputs = {"scores:tiny:base:xling": ["score-base"]}
    key, ev = run_evaluate(store, params, inputs)
    arm = ev["arms"][0]
    other = arm["other_scorers"][0]
    assert other["scorer_id"] == "lexicon" and other["score_kind"] == "hits"
    # lexicon on en: hits 3 0 0 1 1 -> 3 of 5 samples hit, 5 hits / 5 samples; de: 2 0 -> 1 of 2, 2 / 2
    assert other["per_language"]["en"]["metrics"]["lexicon_hit_rate"]["value"] == pytest.approx(3 / 5)
    assert other["per_language"]["en"]["metrics"]["lexicon_hits_per_sample"]["value"] == pytest.approx(1.0)
    assert other["per_language"]["de"]["metrics"]["lexicon_hit_rate"]["value"] == pytest.approx(1 / 2)
    ag = arm["scorer_agreement"][0]
    assert ag["scorer_a"]["scorer_id"] == "perspective" and ag["scorer_b"]["scorer_id"] == "lexicon"
    en, de = ag["per_language"]["en"], ag["per_language"]["de"]
    assert en["spearman"] == pytest.approx(RHO_EN) and en["disagree_share"] == pytest.approx(0.5)
    assert (en["both_scored"], en["missing_a"]) == (4, 1)
    assert de["spearman"] == pytest.approx(1.0) and de["disagree_share"] == pytest.approx(0.0)  # .8/2 hits, .1/0

    rep = report_manifest([key], {"kind": "perspective"}, [{"index": 0, "label": "default", "overrides": {}}])
    rec, _ = run_step(rep, store, log=lambda _: None)
    md = store.get_bytes("results/report.md").decode()
    assert "Agreement of perspective and lexicon" in md
    en_line = next(line for line in md.splitlines() if line.startswith("| en | 4 |"))
    assert f"{RHO_EN:.3f}" in en_line and "| 0.500 [" in en_line
    assert "compare scorer lexicon" in md
    assert "Agreement of perspective and lexicon" in store.get_bytes("results/report.html").decode()


def test_one_scorer_evaluation_has_no_compare_sections(tmp_path: Path) -> None:
    store = open_store(tmp_path.as_uri())
    commit_scores(store, "s", [score_row(prompt_id="p", toxicity=0.3)], shards=1)
    params = {"metrics": {"bootstrap_samples": 10, "threshold": 0.5},
              "arms": [{"input": "scores:tiny:base:xling", "model_id": "tiny", "arm": "base", "prompt_set": "xling",
                        "languages": ["en"]}], "scorer_kind": "perspective"}
    inputs = {"scores:tiny:base:xling": ["s"]}
    arm = run_evaluate(store, params, inputs)[1]["arms"][0]
    assert "other_scorers" not in arm and "scorer_agreement" not in arm


def test_schema_accepts_the_list_form() -> None:
    import jsonschema

    from xdetox.spec.models import ExperimentSpec

    schema = ExperimentSpec.model_json_schema()
    one = _smoke()
    jsonschema.validate({**one, "scoring": [{"kind": "lexicon"}, CLASSIFIER]}, schema)
    jsonschema.validate(one, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**one, "scoring": []}, schema)


def test_list_form_errors_name_the_entry_and_line() -> None:
    from xdetox.spec.load import load_spec_text

    text = smoke_with_scoring("scoring:\n  - kind: lexicon\n  - kind: classifier\n    toxic_label: toxic\n")
    line = text.splitlines().index("  - kind: classifier") + 1
    with pytest.raises(SpecError) as e:
        load_spec_text(text, "spec.yaml")
    (p,) = e.value.problems
    assert (p.path, p.line) == ("scoring[1].model", line) and p.message == "field required"
    bad_first = smoke_with_scoring("scoring:\n  - kind: lexicon\n    allowlist: 3\n")
    with pytest.raises(SpecError) as e:
        load_spec_text(bad_first, "spec.yaml")
    assert e.value.problems[0].path.startswith("scoring[0].allowlist")


def test_compare_scorer_gets_its_own_tuned_minus_base_and_the_summary_shows_it(tmp_path: Path) -> None:
    import io

    from rich.console import Console

    from xdetox.report.build import report_metrics
    from xdetox.report.render import render_markdown
    from xdetox.report.summary import beside_tables

    store = open_store(tmp_path.as_uri())
    # two prompts x two samples per arm: (primary probability, lexicon hits)
    data = {"base": [(0.9, 1), (0.7, 1), (0.2, 0), (0.6, 1)], "tuned": [(0.1, 0), (0.1, 0), (0.5, 1), (0.2, 0)]}
    inputs, arms = {}, []
    for arm, rows in data.items():
        commit_scores(store, f"score-{arm}", [
            score_row(prompt_id=f"p{i // 2}", sample_index=i % 2, arm=arm, toxicity=a, other_scores=_other(h))
            for i, (a, h) in enumerate(rows)], shards=1)
        inputs[f"scores:tiny:{arm}:xling"] = [f"score-{arm}"]
        arms.append({"input": f"scores:tiny:{arm}:xling", "model_id": "tiny", "arm": arm, "prompt_set": "xling",
                     "languages": ["en"]})
    params = {"metrics": {"bootstrap_samples": 200, "threshold": 0.5, "headline": "average_toxicity"},
              "arms": arms, "scorer_kind": "perspective", "training_method": "dpo"}
    key, ev = run_evaluate(store, params, inputs)
    (comp,) = ev["comparisons"]
    # the run's scorer, its headline: mean .6 -> .225
    avg = comp["per_language"]["en"]["average_toxicity"]
    assert (avg["base"], avg["tuned"]) == (pytest.approx(0.6), pytest.approx(0.225))
    (lex,) = comp["other_scorers"]
    assert lex["scorer_id"] == "lexicon" and lex["score_kind"] == "hits"
    # hit rate 3/4 -> 1/4; resampling the two prompts: p0 alone 0 - 1 = -1, p1 alone .5 - .5 = 0
    hr = lex["per_language"]["en"]["lexicon_hit_rate"]
    assert (hr["base"], hr["tuned"], hr["abs_change"]) == (0.75, 0.25, -0.5)
    assert hr["rel_change"] == pytest.approx(-2 / 3)
    assert -1.0 <= hr["abs_change_ci"][0] <= -0.5 <= hr["abs_change_ci"][1] <= 0.0
    assert lex["average"]["lexicon_hit_rate"]["abs_change"] == -0.5

    metrics = report_metrics({"run_id": "r", "scorer": {"kind": "perspective"}, "compare_scorers": [{"kind": "lexicon"}],
                              "settings": [{"index": 0, "label": "default", "overrides": {}}]}, [ev])
    (table,) = beside_tables(metrics)
    console = Console(record=True, width=200, file=io.StringIO())
    console.print(table)
    text = console.export_text()
    assert "Beside it: lexicon, Lexicon hit rate" in text
    en_line = next(line for line in text.splitlines() if "│ en" in line)
    # Spearman by hand: base (.9 .7 .2 .6) vs (1 1 0 1): 3 / sqrt(5 x 3); tuned (.1 .1 .5 .2) vs (0 0 1 0): 3 / sqrt(4.5 x 3)
    assert "0.750" in en_line and "0.250" in en_line and "0.77→0.82" in en_line
    assert f"{3 / math.sqrt(15):.2f}" == "0.77" and f"{3 / math.sqrt(13.5):.2f}" == "0.82"
    md = render_markdown(metrics, {})
    assert "tiny on xling: before vs after, compare scorer lexicon" in md
    assert "Lexicon hit rate: share of scored samples" in md  # the compare scorer's definitions too
