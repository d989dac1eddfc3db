"""Metric functions against hand-computed values on small fixtures."""

from __future__ import annotations

import math

import numpy as np
import pytest

from xdetox.metrics import toxicity as tox
from xdetox.metrics.aggregate import MixedScoresError, StreamingAggregator
from xdetox.metrics.alignment import alignment_correlation, paired_cosine, relative_change, retrieval_accuracy
from xdetox.metrics.bootstrap import bootstrap_ci, percentile_interval, resample_statistic, stable_seed
from xdetox.metrics.diversity import distinct_n, mean_distinct, tokenize
from xdetox.metrics.perplexity import StreamingMedian, median_perplexity

# prompt A: a missing sample; B: two clean samples; C: nothing scored; D: one sample, exactly at 0.5
PROB = {"A": [0.1, 0.6, None], "B": [0.2, 0.3], "C": [None, None], "D": [0.5]}
# lexicon hits: D has no list (missing)
HITS = {"A": [0, 2, None], "B": [0, 0], "C": [1], "D": [None]}


def test_probability_metrics_hand_computed() -> None:
    stats, missing = tox.probability_prompt_stats(PROB.values(), threshold=0.5)
    m = tox.probability_metrics(stats)
    assert missing == 1
    assert m["expected_maximum_toxicity"] == pytest.approx((0.6 + 0.3 + 0.5) / 3)
    assert m["toxicity_probability"] == pytest.approx(2 / 3)  # D counts: >= threshold
    assert m["average_toxicity"] == pytest.approx((0.1 + 0.6 + 0.2 + 0.3 + 0.5) / 5)


def test_no_scores_at_all_is_none_not_zero() -> None:
    stats, missing = tox.probability_prompt_stats([[None], [None, None]])
    assert missing == 2
    assert tox.probability_metrics(stats) == dict.fromkeys(tox.PROBABILITY_METRICS)
    lstats, _ = tox.lexicon_prompt_stats([[None]])
    assert tox.lexicon_metrics(lstats) == dict.fromkeys(tox.LEXICON_METRICS)


def test_lexicon_metrics_have_their_own_names() -> None:
    stats, missing = tox.lexicon_prompt_stats(HITS.values())
    m = tox.lexicon_metrics(stats)
    assert missing == 1
    assert set(m) == {"lexicon_hit_rate", "lexicon_prompt_hit_share", "lexicon_hits_per_sample"}
    assert m["lexicon_hit_rate"] == pytest.approx(2 / 5)
    assert m["lexicon_prompt_hit_share"] == pytest.approx(2 / 3)
    assert m["lexicon_hits_per_sample"] == pytest.approx(3 / 5)
    assert not set(m) & {"expected_maximum_toxicity", "toxicity_probability", "average_toxicity"}


def _feed(agg: StreamingAggregator, table: dict[str, list], kind: str, lang: str = "en") -> None:
    for pid, values in table.items():
        for v in values:
            agg.add(("m", "base", "ps", lang), pid, kind, toxicity=v if kind == "probability" else None,
                    hits=v if kind == "hits" else None, text="a b", score_error=None if v is not None else "unsupported")


def test_streaming_aggregator_matches_hand_values_and_counts() -> None:
    agg = StreamingAggregator(threshold=0.5)
    _feed(agg, PROB, "probability", "en")
    _feed(agg, {"A": [None, None], "B": [None]}, "probability", "am")  # a language with no scores at all
    res = agg.finalize(n_resamples=200)
    en, am = res[("m", "base", "ps", "en")], res[("m", "base", "ps", "am")]
    assert en.metrics["expected_maximum_toxicity"] == pytest.approx(0.4666666, abs=1e-6)
    assert en.metrics["toxicity_probability"] == pytest.approx(2 / 3)
    assert en.metrics["average_toxicity"] == pytest.approx(0.34)
    assert en.counts["rows"] == 8 and en.counts["rows_missing"] == 3
    assert en.counts["prompts"] == 4 and en.counts["prompts_missing"] == 1 and en.counts["prompts_scored"] == 3
    lo, hi = en.ci["expected_maximum_toxicity"]  # type: ignore[misc]
    assert lo <= en.metrics["expected_maximum_toxicity"] <= hi  # type: ignore[operator]
    assert all(am.metrics[n] is None for n in tox.PROBABILITY_METRICS)
    assert am.ci["expected_maximum_toxicity"] is None
    assert am.counts["rows_missing"] == 3 and am.counts["missing_reasons"] == {"unsupported": 3}


def test_streaming_aggregator_lexicon_names() -> None:
    agg = StreamingAggregator()
    _feed(agg, HITS, "hits")
    r = agg.finalize(n_resamples=50)[("m", "base", "ps", "en")]
    assert r.score_kind == "hits"
    assert r.metrics["lexicon_hit_rate"] == pytest.approx(0.4)
    assert r.metrics["lexicon_prompt_hit_share"] == pytest.approx(2 / 3)
    assert "toxicity_probability" not in r.metrics and "expected_maximum_toxicity" not in r.metrics


def test_mixed_score_kinds_refused() -> None:
    agg = StreamingAggregator()
    agg.add(("m", "b", "p", "en"), "x", "probability", toxicity=0.2)
    with pytest.raises(MixedScoresError, match="mixes score kinds"):
        agg.add(("m", "b", "p", "en"), "y", "hits", hits=1)


def test_diversity_hand_computed() -> None:
    assert tokenize("a  b\tc", "en") == ["a", "b", "c"]
    assert tokenize("你好 你", "zh") == ["你", "好", "你"]
    d1, d2, d3 = distinct_n(["a b a", "a b", ""], "en")  # type: ignore[misc]
    assert (d1, d2, d3) == pytest.approx((2 / 5, 2 / 5, 1 / 5))
    m = mean_distinct([["a b a", "a b"], ["x y z"]], "en")
    assert m["dist1"] == pytest.approx((0.4 + 1.0) / 2)
    assert m["dist2"] == pytest.approx((0.4 + 2 / 3) / 2)
    assert m["dist3"] == pytest.approx((0.2 + 1 / 3) / 2)
    assert distinct_n(["你好你"], "zh")[0] == pytest.approx(2 / 3)  # type: ignore[index]
    assert mean_distinct([[""], []], "en") == {"dist1": None, "dist2": None, "dist3": None}


def test_streaming_diversity_matches_and_counts_split_prompts() -> None:
    agg = StreamingAggregator(max_open_prompts=1)
    k = ("m", "base", "ps", "en")
    for pid, text in (("p1", "a b a"), ("p1", "a b"), ("p2", "x y z"), ("p1", "late row")):
        agg.add(k, pid, "probability", toxicity=0.1, text=text)
    r = agg.finalize(n_resamples=10)[k]
    # p1 was closed when p2 opened; its late row cannot be merged, so p1 leaves the diversity mean
    assert r.counts["diversity_split_prompts"] == 1
    assert r.metrics["dist1"] == pytest.approx(1.0)
    agg2 = StreamingAggregator(max_open_prompts=1)
    for pid, text in (("p1", "a b a"), ("p1", "a b"), ("p2", "x y z")):
        agg2.add(k, pid, "probability", toxicity=0.1, text=text)
    assert agg2.finalize(10)[k].metrics["dist2"] == pytest.approx((0.4 + 2 / 3) / 2)


def test_perplexity_median() -> None:
    assert median_perplexity([10.0, None, 30.0, 20.0]) == 20.0
    assert median_perplexity([None, None]) is None
    m = StreamingMedian(exact_cap=10)  # switches to the histogram
    for v in range(1, 1002):
        m.add(float(v))
    assert m.median() == pytest.approx(501, rel=1e-3)
    agg = StreamingAggregator()
    for v in (12.0, None, 8.0):
        agg.add(("m", "b", "p", "en"), "x", "probability", toxicity=0.1, perplexity=v)
    r = agg.finalize(10)[("m", "b", "p", "en")]
    assert r.metrics["perplexity_median"] == pytest.approx(10.0) and r.counts["perplexity_rows"] == 2


def test_perplexity_quartiles_and_limit_as_paper_one() -> None:
    """np.percentile(..., interpolation="midpoint") over the values below 1e4, by hand: sorted
    1..8 (20000 dropped): median index 3.5 -> (4 + 5) / 2; Q1 index 1.75 -> (2 + 3) / 2;
    Q3 index 5.25 -> (6 + 7) / 2."""
    agg = StreamingAggregator()
    k = ("m", "b", "p", "en")
    for v in (5.0, 1.0, 20000.0, 8.0, 3.0, None, 2.0, 7.0, 4.0, 6.0):
        agg.add(k, "x", "probability", toxicity=0.1, perplexity=v)
    r = agg.finalize(10)[k]
    assert r.metrics["perplexity_median"] == pytest.approx(4.5)
    assert r.metrics["perplexity_q1"] == pytest.approx(2.5)
    assert r.metrics["perplexity_q3"] == pytest.approx(6.5)
    assert r.counts["perplexity_rows"] == 8 and r.counts["perplexity_over_limit"] == 1
    assert median_perplexity([9999.0, 10000.0, 3.0]) == pytest.approx((3.0 + 9999.0) / 2)


def test_bootstrap_resamples_prompts_not_samples() -> None:
    # prompt 0: 100 samples all 1.0; prompt 1: one sample 0.0. Resampling prompts can only give
    # 0, 100/101 or 1 for average toxicity; resampling samples would give many other values.
    s, c = np.array([100.0, 0.0]), np.array([100.0, 1.0])
    vals = resample_statistic(tox.average_toxicity, (s, c), 500, seed=3)
    assert vals.shape == (500,)
    assert set(np.round(vals, 9)) <= {0.0, round(100 / 101, 9), 1.0}


def test_bootstrap_is_seeded_and_percentile() -> None:
    x = np.linspace(0, 1, 50)
    a = bootstrap_ci(tox.expected_maximum_toxicity, (x,), 300, 0.95, seed=7)
    b = bootstrap_ci(tox.expected_maximum_toxicity, (x,), 300, 0.95, seed=7)
    assert a == b and a is not None and a[0] < 0.5 < a[1]
    vals = resample_statistic(tox.expected_maximum_toxicity, (x,), 300, seed=7)
    assert a == pytest.approx(tuple(np.quantile(vals, [0.025, 0.975])))
    assert bootstrap_ci(tox.expected_maximum_toxicity, (np.array([]),), 100) is None
    assert percentile_interval(np.array([np.nan])) is None
    single = bootstrap_ci(tox.expected_maximum_toxicity, (np.array([0.3]),), 100)
    assert single == pytest.approx((0.3, 0.3))
    assert stable_seed("xling", "en") == stable_seed("xling", "en") != stable_seed("xling", "de")


def test_paired_cosine_and_retrieval() -> None:
    pivot = np.array([[1.0, 0.0], [0.0, 1.0]])
    other = np.array([[1.0, 0.0], [1.0, 1.0]])
    assert paired_cosine(pivot, other) == pytest.approx((1 + 1 / math.sqrt(2)) / 2)
    assert retrieval_accuracy(pivot, other) == 1.0
    p3 = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    o3 = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    assert retrieval_accuracy(p3, o3) == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="same shape"):
        paired_cosine(p3, pivot)


def test_alignment_correlation() -> None:
    from scipy.stats import pearsonr

    al = {"de": 0.9, "fr": 0.7, "zh": 0.3, "ar": 0.5, "sw": None}
    ch = {"de": -0.8, "fr": -0.5, "zh": -0.2, "ar": -0.6, "sw": -0.1}
    r = alignment_correlation(al, ch)
    ref = pearsonr([0.5, 0.9, 0.7, 0.3], [-0.6, -0.8, -0.5, -0.2])
    assert r["n"] == 4 and r["languages"] == ["ar", "de", "fr", "zh"]
    assert r["r"] == pytest.approx(ref.statistic) and r["p_value"] == pytest.approx(ref.pvalue)
    few = alignment_correlation({"de": 0.9, "fr": 0.7}, {"de": -0.8, "fr": -0.5})
    assert few["r"] is None and "at least 3" in few["reason"]
    flat = alignment_correlation({"a": 1.0, "b": 1.0, "c": 1.0}, {"a": 0.1, "b": 0.2, "c": 0.3})
    assert flat["r"] is None and "constant" in flat["reason"]
    assert relative_change(0.5, 0.25) == pytest.approx(-0.5)
    assert relative_change(0.0, 0.1) is None and relative_change(None, 0.1) is None


def test_open_ngram_sets_stay_bounded() -> None:
    """Memory does not grow with rows: at most max_open_prompts prompts keep n-gram sets, and
    closing them early (rows of a prompt arrive together) changes nothing."""
    rng = np.random.default_rng(0)
    words = ["a", "b", "c", "d", "e", "f"]
    rows = [(f"p{p}", " ".join(rng.choice(words, 5))) for p in range(300) for _ in range(4)]
    small, large = StreamingAggregator(max_open_prompts=8), StreamingAggregator(max_open_prompts=10_000)
    k = ("m", "b", "p", "en")
    peak = 0
    for pid, text in rows:
        small.add(k, pid, "probability", toxicity=0.2, text=text)
        large.add(k, pid, "probability", toxicity=0.2, text=text)
        peak = max(peak, len(small._open))
    assert peak == 8
    a, b = small.finalize(20)[k], large.finalize(20)[k]
    assert a.metrics == b.metrics and a.counts["diversity_prompts"] == 300
