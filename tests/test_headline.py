"""metrics.headline: the metric summaries and reports lead with, chosen in the spec and checked
against the scorer's score kind; default = the score kind's own (EMT for probabilities, paper 1)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.metrics_fixtures import make_setting
from tests.spec_fixtures import SMOKE, smoke_with_scoring
from xdetox.kinds import scorers as scorer_kinds
from xdetox.report.build import report_metrics
from xdetox.spec.errors import SpecError
from xdetox.spec.load import load_spec, load_spec_text
from xdetox.steps.runner import run_step
from xdetox.store import open_store


def test_default_per_score_kind_and_a_chosen_one() -> None:
    assert scorer_kinds.headline_metric("probability") == "expected_maximum_toxicity"
    assert scorer_kinds.headline_metric("hits") == "lexicon_hit_rate"
    assert scorer_kinds.headline_metric("probability", "average_toxicity") == "average_toxicity"
    with pytest.raises(ValueError, match="metrics.headline: 'average_toxicity' is not a metric of hits"):
        scorer_kinds.headline_metric("hits", "average_toxicity")


def test_declared_score_kind_of_specs() -> None:
    assert scorer_kinds.declared_score_kind({"kind": "stacked"}) == "probability"
    assert scorer_kinds.declared_score_kind("lexicon") == "hits"
    # a calibrated lexicon's rows are probabilities on the map's scale: its probability metrics exist
    assert scorer_kinds.declared_score_kind({"kind": "lexicon", "calibration": "m.json"}) == "probability"
    assert scorer_kinds.declared_score_kind({"kind": "not-installed"}) == "probability"


def test_the_smoke_leads_with_average_toxicity() -> None:
    spec = load_spec(SMOKE)
    assert spec.scoring.kind == "stacked" and [c.kind for c in spec.compare_scorers] == ["lexicon"]
    assert spec.metrics.headline == "average_toxicity"
    assert spec.metrics.model_dump()["headline"] == "average_toxicity"


def test_no_headline_dumps_as_before() -> None:
    # a spec that chooses none keeps its dump (spec digest, evaluate keys, the nightly's reference)
    spec = load_spec_text(smoke_with_scoring("scoring:\n  kind: lexicon\n"), "spec.yaml")
    assert spec.metrics.headline is None and "headline" not in spec.metrics.model_dump()
    nightly = load_spec(SMOKE.parent / "nightly.yaml")
    assert "headline" not in nightly.model_dump(mode="json")["metrics"]


def _problem(text: str) -> tuple[str, int | None, str]:
    with pytest.raises(SpecError) as e:
        load_spec_text(text, "spec.yaml")
    (p,) = e.value.problems
    return p.path, p.line, p.message


def test_a_lexicon_spec_cannot_lead_with_a_probability_metric() -> None:
    text = smoke_with_scoring("scoring:\n  kind: lexicon\n").replace(
        "\nmetrics:\n", "\nmetrics:\n  headline: expected_maximum_toxicity\n")
    line = text.splitlines().index("  headline: expected_maximum_toxicity") + 1
    path, at, message = _problem(text)
    assert (path, at) == ("metrics.headline", line)
    assert "'expected_maximum_toxicity' is not a metric of the lexicon scorer's scores" in message
    assert "lexicon_hit_rate" in message  # what it may choose instead


def test_a_probability_spec_cannot_lead_with_a_lexicon_metric_nor_an_unknown_name() -> None:
    smoke = SMOKE.read_text(encoding="utf-8")
    path, _, message = _problem(smoke.replace("headline: average_toxicity", "headline: lexicon_hit_rate"))
    assert path == "metrics.headline" and "stacked scorer's scores (probabilities)" in message
    path, _, message = _problem(smoke.replace("headline: average_toxicity", "headline: avg_tox"))
    assert path == "metrics.headline" and "must be one of" in message and "'avg_tox'" in message


def test_a_calibrated_lexicon_may_lead_with_a_probability_metric(tmp_path: Path) -> None:
    from tests.test_calibration_apply import EN, write_map

    m = write_map(tmp_path / "m.json", {"en": EN})
    text = smoke_with_scoring(f"scoring:\n  kind: lexicon\n  calibration: {m}\n").replace(
        "\nmetrics:\n", "\nmetrics:\n  headline: toxicity_probability\n")
    assert load_spec_text(text, "spec.yaml").metrics.headline == "toxicity_probability"


def test_the_headline_cannot_vary_across_settings() -> None:
    smoke = SMOKE.read_text(encoding="utf-8")
    text = smoke.replace("\nsharding:\n", "\nmatrix:\n  metrics.headline: [average_toxicity, toxicity_probability]\n"
                         "sharding:\n")
    assert "this field cannot vary across settings" in str(pytest.raises(SpecError, load_spec_text, text, "s.yaml").value)


def _evaluation(tmp_path: Path, headline: str | None, tag: str) -> dict[str, Any]:
    store = open_store(tmp_path.as_uri())
    m = make_setting(store, languages=["en", "de"], tag=tag, bootstrap=50)
    if headline is not None:
        m = m.model_copy(update={"params": {**m.params, "metrics": {**m.params["metrics"], "headline": headline}}})
    run_step(m, store, log=lambda _: None)
    return json.loads(store.get_bytes(f"evaluations/{m.key}/metrics.json"))


def test_evaluation_and_report_lead_with_the_spec_headline(tmp_path: Path) -> None:
    from tests.test_evaluate_report import _render
    from xdetox.report.render import render_markdown
    from xdetox.report.summary import summary_table

    chosen = _evaluation(tmp_path, "average_toxicity", "a")
    default = _evaluation(tmp_path, None, "b")
    assert chosen["headline_metric"] == "average_toxicity"
    assert default["headline_metric"] == "expected_maximum_toxicity"
    # the alignment correlation and everything else downstream read the evaluation's choice
    settings = [{"index": 0, "label": "default", "overrides": {}}]
    metrics = report_metrics({"run_id": "r", "scorer": {"kind": "perspective"}, "settings": settings}, [chosen])
    assert metrics["headline_metric"] == "average_toxicity"
    assert "Average toxicity — base vs tuned" in _render(summary_table(metrics))
    md = render_markdown(metrics, {})
    assert "Average over languages of Average toxicity" in md
    assert "the summary leads with Average toxicity, as the spec's metrics.headline chose" in md
    plain = report_metrics({"run_id": "r", "scorer": {"kind": "perspective"}, "settings": settings}, [default])
    assert plain["headline_metric"] == "expected_maximum_toxicity" and "metrics.headline" not in render_markdown(plain, {})
    two = [{"index": i, "label": f"s{i}", "overrides": {}} for i in range(2)]
    with pytest.raises(ValueError, match="different headline metrics"):
        report_metrics({"run_id": "r", "scorer": {"kind": "perspective"}, "settings": two}, [chosen, default])


def test_evaluation_refuses_a_headline_of_another_score_kind(tmp_path: Path) -> None:
    store = open_store(tmp_path.as_uri())
    m = make_setting(store, kind="hits", languages=["en"], bootstrap=20)
    m = m.model_copy(update={"params": {**m.params, "metrics": {**m.params["metrics"], "headline": "average_toxicity"}}})
    with pytest.raises(Exception, match="metrics.headline: 'average_toxicity' is not a metric of hits"):
        run_step(m, store, log=lambda _: None)
