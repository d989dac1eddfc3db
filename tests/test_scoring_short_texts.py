"""Short and contentless texts in both embedded probability scorers (the feature-version-3 defect:
an empty text scored 0.94-1.0 and the score rose as a text got shorter, docs/SCORERS.md)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from xdetox.scoring.ngram import NgramToxicityScorer
from xdetox.scoring.ngram_build import PARADETOX_DIR
from xdetox.scoring.ngram_features import contentless
from xdetox.scoring.stacked import StackedToxicityScorer

LANGS = ("am", "ar", "cs", "de", "en", "es", "fr", "hi", "id", "it", "ja", "ko", "nl", "pl", "pt", "ru", "sv",
         "uk", "zh", "xx")
CONTENTLESS = ("", " ", "\t\n ", ".", "。", "!!! ???", "…", "🙂🙂", "#@*", "\x00")


@pytest.fixture(scope="module", params=["ngram", "stacked"])
def scorer(request: pytest.FixtureRequest) -> NgramToxicityScorer | StackedToxicityScorer:
    return NgramToxicityScorer() if request.param == "ngram" else StackedToxicityScorer()


def test_contentless_by_hand() -> None:
    got = contentless(["", " .", "a", "。", "7", "हूँ", "🙂 x", "!?"])
    assert got.tolist() == [True, True, False, True, False, False, False, True]
    assert contentless([]).tolist() == []


def test_texts_without_letters_or_digits_score_zero_in_every_language(scorer) -> None:  # type: ignore[no-untyped-def]
    texts = [t for _ in LANGS for t in CONTENTLESS]
    langs = [lang for lang in LANGS for _ in CONTENTLESS]
    p = scorer.probabilities(texts, langs)
    assert p.tolist() == [0.0] * len(texts)
    # beside real texts in the same batch: only the contentless rows are 0
    mixed = scorer.probabilities(["", "you fucking idiot", "."], ["en", "en", "en"])
    assert mixed[0] == 0.0 and mixed[2] == 0.0 and mixed[1] >= 0.5


def _pairs(lang: str) -> list[dict[str, str]]:
    path = PARADETOX_DIR / f"{lang}.reconstructed.jsonl"
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


@pytest.mark.parametrize("lang", ["am", "ar", "de", "en", "es", "hi", "ru", "uk", "zh"])
def test_a_text_repeated_twice_scores_as_once(scorer, lang: str) -> None:  # type: ignore[no-untyped-def]
    """Mean-pooled n-grams: doubling a text changes only the n-grams across the join, so a neutral
    sentence's score moves by little; a toxic one stays toxic."""
    rows = [r for r in _pairs(lang) if r["split_hf_shuffle42"] == "test"][:20]
    neutral = [r["neutral_sentence"] for r in rows]
    once = scorer.probabilities(neutral, [lang] * len(neutral))
    twice = scorer.probabilities([t + " " + t for t in neutral], [lang] * len(neutral))
    # the n-grams are averaged, so only the join moves them; the stacked scorer's word-list hits are
    # counts (log1p), so a neutral sentence holding a listed word's stem moves more when doubled: stacked
    # version 8 ar 0.096, hi 0.107; version 9 ar 0.179 (جماع "intercourse" starts جماعة "group"), hi 0.157
    # (हरामी's stem is हराम "forbidden"): both collisions date from before version 9, whose n-gram part
    # scores those two sentences higher (0.56, 0.64), where the logistic curve is steepest
    moved = np.abs(twice - once)
    if isinstance(scorer, NgramToxicityScorer):
        assert moved.mean() < 0.01 and moved.max() < 0.05, lang
    else:
        assert moved.mean() < 0.02 and moved.max() < 0.2, lang
    toxic = scorer.probabilities(["you fucking idiot", "you fucking idiot you fucking idiot"], ["en", "en"])
    assert toxic.min() >= 0.5 and abs(toxic[1] - toxic[0]) < 0.05


def test_short_zh_texts_are_scored_by_their_characters_not_their_length(scorer) -> None:  # type: ignore[no-untyped-def]
    """Feature version 5: in zh the padding is only the text's edge, so n-grams touching it were a
    length signal and ParaDetox's shorter toxic side made every short zh text toxic (version 4/5:
    "的" 0.99 alone). Common characters and greetings alone now score low, an insult alone high."""
    benign = ["的", "了", "是", "我", "你好", "谢谢", "今天天气很好"]
    p = scorer.probabilities([*benign, "傻逼"], ["zh"] * (len(benign) + 1))
    assert (p[:-1] < 0.5).all(), dict(zip(benign, p[:-1].round(2).tolist(), strict=True))
    assert p[-1] >= 0.5
