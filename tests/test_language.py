"""Language consistency: which continuations count, the share statistic, lingua's identification,
and the metric flowing through the evaluate step into metrics.json and the comparison."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.metrics_fixtures import commit_scores, run_evaluate, score_row
from xdetox.metrics.aggregate import StreamingAggregator
from xdetox.metrics.langid import identifier_for
from xdetox.metrics.language import consistency_share, long_enough
from xdetox.report.build import figures, report_metrics
from xdetox.report.render import arm_table
from xdetox.store import open_store

DE_1 = "Das ist heute ein sehr schöner Tag für uns alle."
DE_2 = "Ich gehe morgen früh mit meinem Hund im Wald spazieren."
DE_3 = "Wir haben gestern den ganzen Nachmittag im Garten gearbeitet."
EN_1 = "The weather is really nice today, and we are going outside."
EN_2 = "I would like to go home now, because it is getting late."
ZH_1 = "今天天气非常好，我们一起去公园散步吧。"


def test_which_continuations_count() -> None:
    assert long_enough("eins zwei drei", "de") and not long_enough("eins zwei", "de")
    assert not long_enough("   ", "en")
    assert long_enough("今天天气很好", "zh") and not long_enough("今天 天气好", "zh")  # 6 vs 5 non-space chars
    assert long_enough("ありがとうござ", "ja") and not long_enough("안녕하세요", "ko")  # 7 vs 5 characters


def test_share_is_a_ratio_of_sums_over_prompts() -> None:
    ok, n = np.array([2.0, 1.0, 0.0]), np.array([3.0, 1.0, 0.0])
    assert consistency_share(ok, n) == pytest.approx(3 / 4)  # (2+1+0)/(3+1+0), not the mean of 2/3 and 1
    rows = consistency_share(np.array([[2.0, 0.0], [0.0, 0.0]]), np.array([[3.0, 1.0], [0.0, 0.0]]))
    assert rows[0] == pytest.approx(2 / 4) and np.isnan(rows[1])  # nothing counted: NaN, not 0


def test_lingua_identifies_and_refuses_what_it_cannot_judge() -> None:
    ident = identifier_for(["de", "zh"])
    assert identifier_for(["zh", "de"]) is ident  # built once per language set
    assert "en" in ident.candidates and "de" in ident.candidates  # spec languages + distractors
    assert ident.consistent(DE_1, "de") is True
    assert ident.consistent(EN_1, "de") is False
    assert ident.consistent(ZH_1, "zh") is True
    assert ident.consistent("ja gut", "de") is None  # two words: too short to count
    assert ident.consistent(DE_1, "qq") is None  # not a language lingua knows: missing, not 0


def _rows(arm: str, texts: dict[str, list[str]]) -> list[dict[str, Any]]:
    return [score_row(prompt_id=pid, language="de", sample_index=i, text=t, arm=arm, toxicity=0.1)
            for pid, ts in texts.items() for i, t in enumerate(ts)]


def test_aggregator_counts_per_prompt() -> None:
    agg = StreamingAggregator(language=identifier_for(["de"]))
    agg.add_rows(_rows("base", {"p0": [DE_1, EN_1, DE_2], "p1": [DE_3, "ja gut"]}))
    (r,) = agg.finalize(200).values()
    assert r.metrics["language_consistency"] == pytest.approx(3 / 4)  # p0: 2 of 3, p1: 1 of 1 (+1 too short)
    assert r.counts["language_rows"] == 4 and r.counts["language_short_rows"] == 1
    lo, hi = r.ci["language_consistency"]  # type: ignore[misc]
    assert 0.0 <= lo <= 3 / 4 <= hi <= 1.0
    plain = StreamingAggregator()
    plain.add_rows(_rows("base", {"p0": [DE_1]}))
    assert "language_consistency" not in next(iter(plain.finalize(10).values())).metrics


def test_evaluate_reports_consistency_per_arm_and_its_change(tmp_path: Path) -> None:
    store = open_store(tmp_path.as_uri())
    arms = {"base": {"p0": [DE_1, DE_2], "p1": [DE_3, "ja gut"], "p2": [DE_2, DE_1]},
            "tuned": {"p0": [DE_1, EN_1], "p1": [EN_2, "ja gut"], "p2": [EN_1, EN_2]}}
    inputs, meta = {}, []
    for arm, texts in arms.items():
        commit_scores(store, f"score-{arm}", _rows(arm, texts), shards=1)
        inputs[f"scores:tiny:{arm}:xling"] = [f"score-{arm}"]
        meta.append({"input": f"scores:tiny:{arm}:xling", "model_id": "tiny", "arm": arm, "prompt_set": "xling",
                     "languages": ["de"]})
    params = {"metrics": {"bootstrap_samples": 200, "confidence": 0.95, "threshold": 0.5, "diversity": False},
              "arms": meta, "scorer_kind": "perspective", "training_method": "dpo"}
    _, metrics = run_evaluate(store, params, inputs)
    base, tuned = metrics["arms"]
    assert base["per_language"]["de"]["metrics"]["language_consistency"]["value"] == pytest.approx(5 / 5)
    assert tuned["per_language"]["de"]["metrics"]["language_consistency"]["value"] == pytest.approx(1 / 5)
    assert base["per_language"]["de"]["counts"]["language_short_rows"] == 1
    change = metrics["comparisons"][0]["per_language"]["de"]["language_consistency"]
    assert change["abs_change"] == pytest.approx(1 / 5 - 1)
    assert change["abs_change_ci"][1] < 0  # paired over the same prompts: every resample loses consistency
    assert metrics["language_consistency"]["min_words"] == 3 and "de" in metrics["language_consistency"]["candidates"]
    # the report draws it beside toxicity, and its arm table has the column
    rm = report_metrics({"scorer": {"kind": "perspective"}}, [metrics])
    paths = [f.path for f in figures(rm)["bars"]]
    assert paths[0].startswith("plots/bars-") and paths[1].startswith("plots/language-")
    _, header, rows = arm_table(rm, metrics["arms"][1])
    assert rows[0][header.index("Lang. consistency")].startswith("0.200 [")
