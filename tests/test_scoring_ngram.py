"""The embedded n-gram probability scorer: features by hand, the model file's digest, real scores."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from tests.scoring_fixtures import gen_row
from xdetox.cli.main import app
from xdetox.scoring.base import build_scorer
from xdetox.scoring.ngram import BUILTIN_DIR, ModelFileError, NgramToxicityScorer, load_model
from xdetox.scoring.ngram_build import BuildConfig, fit, save, training_set
from xdetox.scoring.ngram_features import featurize, linear_scores, prepare


def test_features_of_a_short_text_by_hand() -> None:
    # " ab " has 4 characters: 4 + 3 + 2 + 1 n-grams of orders 1..4 and none of order 5, less the
    # two lone-space unigrams = 8, each once shared and once language-salted; every value is 1/8.
    # Korean has no family (ngram_features.FAMILIES): two columns per n-gram
    row, col, scale = featurize(["AB"], ["ko"], 16)
    assert prepare("AB") == "ab"  # padded with a space on each side inside featurize
    assert len(row) == 16 and set(row.tolist()) == {0}
    assert np.allclose(scale, [1 / 8])
    assert col.min() >= 0 and col.max() < 2 ** 16
    # all weights 1: logit = bias + 16 / 8 (the mean weight of the n-grams, twice)
    assert linear_scores(["AB"], ["ko"], np.ones(2 ** 16), 0.5)[0] == pytest.approx(0.5 + 2.0)
    # English is Germanic: a third, family-salted column per n-gram, the same 8 n-grams and scale
    row, col, scale = featurize(["AB"], ["en"], 16)
    assert len(row) == 24 and np.allclose(scale, [1 / 8])
    assert linear_scores(["AB"], ["en"], np.ones(2 ** 16), 0.5)[0] == pytest.approx(0.5 + 3.0)


def test_batch_neighbours_and_whitespace_do_not_change_features() -> None:
    alone = featurize(["you idiot"], ["en"], 18)
    r, c, scale = featurize(["hello", "You   idiot", "bye"], ["de", "en", "fr"], 18)
    assert sorted(c[r == 1].tolist()) == sorted(alone[1].tolist())  # no n-gram spans two texts
    assert scale[1] == alone[2][0]
    # the language salts the second copy: same shared n-grams, different salted ones
    en = set(featurize(["idiot"], ["en"], 20)[1].tolist())
    ko = set(featurize(["idiot"], ["ko"], 20)[1].tolist())
    de = set(featurize(["idiot"], ["de"], 20)[1].tolist())
    # " idiot " has 23 n-gram positions of orders 1..5 (the lone spaces are not n-grams) but 22
    # distinct n-grams ("i" recurs): 22 shared + 22 language-salted columns, and for the Germanic
    # en and de 22 family-salted ones that they share; Korean (no family) shares only the 22 shared
    assert len(ko) == 44 and len(en) == 66 and len(en & ko) == 22 and len(en & de) == 44


def test_unsegmented_languages_have_no_edge_or_cross_space_ngrams() -> None:
    """zh and ja have no spaces between words: the padding is only the text's edge, so n-grams
    touching it would be a length signal (feature version 5). By hand: "的" is one unigram (the
    padded " 的 " gave 4 n-grams before); "今天" is 今, 天, 今天."""
    row, col, scale = featurize(["的", "今天"], ["zh", "zh"], 16)
    assert np.bincount(row).tolist() == [2, 6] and np.allclose(scale, [1.0, 1 / 3])
    # a space (or blanked punctuation) splits a text into pieces whose n-grams are just the pieces'
    # own: "今天，天气" is the union of "今天" and "天气" (6 + 6 columns), nothing across the comma
    both = sorted(featurize(["今天，天气"], ["zh"], 16)[1].tolist())
    parts = sorted(featurize(["今天"], ["zh"], 16)[1].tolist() + featurize(["天气"], ["zh"], 16)[1].tolist())
    assert both == parts
    # the same character in a spaced language keeps its edge n-grams: 的, " 的", "的 ", " 的 "
    assert featurize(["的"], ["ko"], 16)[2][0] == pytest.approx(1 / 4)


def test_empty_batch_and_empty_text() -> None:
    assert len(featurize([], [], 16)[0]) == 0
    # blank text pads to one space (runs of spaces collapse) and the lone space is not an n-gram:
    # no feature at all (the scorers give such a text 0.0, tests/test_scoring_short_texts.py)
    row, col, scale = featurize(["  ", ""], ["en", "en"], 16)
    assert row.tolist() == [] and np.allclose(scale, [1.0, 1.0])


def test_punctuation_and_symbols_are_blanks() -> None:
    # ParaDetox's raw toxic side has " , ", hashtags and emoji that its rewrites lack: not features
    a = featurize(["Hello,  World!! #Merkel 🙂"], ["en"], 20)
    b = featurize(["hello world merkel"], ["en"], 20)
    assert sorted(a[1].tolist()) == sorted(b[1].tolist()) and a[2][0] == b[2][0]
    # Devanagari vowel signs are marks, not punctuation: they stay inside the word
    # " हूँ " is 5 code points: 3 unigrams (not the spaces) + 4 + 3 + 2 + 1 = 13 n-grams
    assert featurize(["हूँ"], ["hi"], 20)[2][0] == pytest.approx(1 / 13)


@pytest.fixture(scope="module")
def scorer() -> NgramToxicityScorer:
    return NgramToxicityScorer()


def test_builtin_model_scores_probabilities_in_every_language(scorer: NgramToxicityScorer) -> None:
    pairs = {
        "en": ("you are a fucking idiot", "you are a kind person"),
        "de": ("du bist ein verdammtes Arschloch", "du bist ein freundlicher Mensch"),
        "ru": ("ты тупой урод", "ты хороший человек"),
        "cs": ("ty jsi kurva debil", "ty jsi milý člověk"),  # no ParaDetox: word lists only
        "pl": ("ty jebany chuju", "ty dobry człowieku"),
        "ja": ("お前はクソ野郎だ", "あなたは親切な人です"),
    }
    rows = [gen_row(t, lang) for lang, pair in pairs.items() for t in pair]
    res = scorer.score_batch(rows)
    assert all(r.toxicity is not None and 0.0 <= r.toxicity <= 1.0 and r.hits is None for r in res)
    for k, lang in enumerate(pairs):
        assert res[2 * k].toxicity > res[2 * k + 1].toxicity, lang  # type: ignore[operator]
    assert scorer.score_kind == "probability" and scorer.supports("xx")
    assert scorer.version.endswith(scorer.manifest["sha256"][:12])


def test_spec_builds_the_builtin_model() -> None:
    s = build_scorer({"kind": "ngram"})
    assert isinstance(s, NgramToxicityScorer) and s.id == "ngram-lr"


def test_corrupted_or_missing_model_fails_loudly(tmp_path: Path) -> None:
    bad = tmp_path / "m"
    shutil.copytree(BUILTIN_DIR, bad)
    data = bytearray((bad / "model.npz").read_bytes())
    data[-100] ^= 0xFF
    (bad / "model.npz").write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="does not match"):
        load_model(bad)
    with pytest.raises(ModelFileError, match="missing"):
        load_model(tmp_path / "nowhere")


def test_manifest_names_its_data_and_never_rtplx() -> None:
    man = json.loads((BUILTIN_DIR / "manifest.json").read_text())
    assert set(man["sources"]) == {"paradetox", "paradetox-words", "paradetox-pieces", "wordlist", "wordlist-short"}
    text = json.dumps(man).lower()
    assert "rtp" not in text.replace("never on rtp-lx", "") and "xling" not in text
    assert (BUILTIN_DIR / "model.npz").stat().st_size < 5 * 2 ** 20


def test_build_is_deterministic_and_learns(tmp_path: Path) -> None:
    cfg = BuildConfig(bits=16, epochs=5, split="train", languages=("en",), max_entries=200)
    ts = training_set(cfg)
    assert ts.sources["wordlist"] == 2 * 200 and ts.sources["paradetox"] == 2 * 300 * 9
    assert ts.sources["wordlist-short"] == 2 * 200  # each entry alone beside one carrier word alone
    w1, b1 = fit(ts, cfg)
    m1 = save(tmp_path / "a", w1, b1, cfg, ts)
    w2, b2 = fit(training_set(cfg), cfg)
    m2 = save(tmp_path / "b", w2, b2, cfg, ts)
    assert m1["sha256"] == m2["sha256"]
    assert (tmp_path / "a" / "model.npz").read_bytes() == (tmp_path / "b" / "model.npz").read_bytes()
    built = NgramToxicityScorer(tmp_path / "a")
    p = built.probabilities(["what a fucking mess", "what a mess"], ["en", "en"])
    assert p[0] > p[1]


def test_cli_build_rejects_a_bad_split(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["scorer", "build-ngram", "--out", str(tmp_path), "--split", "test"])
    assert res.exit_code == 2 and "--split" in res.output


@pytest.mark.slow
def test_released_model_rebuilds_byte_identically(tmp_path: Path) -> None:
    """`xdetox scorer build-ngram` on the vendored data gives exactly the vendored model (~20-60 s)."""
    res = CliRunner().invoke(app, ["scorer", "build-ngram", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "model.npz").read_bytes() == (BUILTIN_DIR / "model.npz").read_bytes()
    assert json.loads((tmp_path / "manifest.json").read_text()) == json.loads((BUILTIN_DIR / "manifest.json").read_text())


def test_ngram_spec_takes_a_calibration_map_like_every_builtin_kind() -> None:
    """Its probabilities are on ParaDetox's scale (docs/SCORERS.md: ECE far from 0 on RTP-LX), so the
    calibration field must reach it; an uncalibrated spec dumps exactly as before."""
    from xdetox.kinds import scorers

    assert scorers.validate_spec({"kind": "ngram"}).model_dump(mode="json") == {"kind": "ngram", "model": "builtin"}
    spec = scorers.validate_spec({"kind": "ngram", "calibration": "s3://bucket/maps/ngram.json"})
    assert spec.calibration == "s3://bucket/maps/ngram.json"  # type: ignore[attr-defined]


def test_style_matched_negative_deletes_what_the_rewrite_removed() -> None:
    """The toxic side less the spans its rewrite removed or replaced: the same raw text, without
    the toxic words (difflib over words; over characters in zh/ja; case and punctuation ignored)."""
    from xdetox.scoring.ngram_build import style_matched

    assert style_matched("You made a mistake you ass.", "You made a mistake.", "en") == "You made a mistake"
    # a replaced word goes too; the raw text's other words (and their case) stay as they were
    assert style_matched("worthless scum like YOU", "unpleasant people like you", "en") == "like YOU"
    assert style_matched("尽管浪，谁接盘谁是狗，不得house", "尽管浪，谁接盘谁是狗，不得好下场", "zh") == "尽管浪，谁接盘谁是狗，不得"
    # nothing removed (a rewrite that only fixed case and commas, or only added words): no negative
    assert style_matched("you , are wrong", "You are wrong.", "en") is None
    assert style_matched("you are wrong", "you are wrong again", "en") is None
    # everything removed: no letter left, no negative
    assert style_matched("idiot !!!", "hello", "en") is None


def test_style_negatives_add_one_negative_per_changed_pair() -> None:
    pairs = {"en": [{"toxic_sentence": "you made a mistake you ass", "neutral_sentence": "you made a mistake",
                     "split_hf_shuffle42": "train"},
                    {"toxic_sentence": "ok then", "neutral_sentence": "ok then", "split_hf_shuffle42": "train"}]}
    # "xx" has no word list: only the ParaDetox rows
    cfg = BuildConfig(languages=("xx",), paradetox_word_pairs=False, style_negatives="add")
    ts = training_set(cfg, pairs)
    assert ts.sources == {"paradetox": 4, "paradetox-style": 1}
    assert ts.texts[:3] == ["you made a mistake you ass", "you made a mistake", "you made a mistake"]
    assert ts.labels[:3] == [1, 0, 0]  # the rewrite, then the style-matched negative (here the same words)
    replaced = training_set(BuildConfig(languages=("xx",), paradetox_word_pairs=False, style_negatives="replace"), pairs)
    assert replaced.sources == {"paradetox": 3, "paradetox-style": 1}  # the rewrite of the changed pair is gone


def test_removed_and_kept_spans_by_hand() -> None:
    """zh has no words to pair: the spans its rewrite removed (1) and kept (0), by characters."""
    from xdetox.scoring.ngram_build import removed_and_kept

    # "house" was replaced by "好下场"; the comma is blanked to a space (zh n-grams never cross one)
    assert removed_and_kept("谁是狗，不得house", "谁是狗，不得好下场") == (["house"], ["谁是狗 不得"])
    assert removed_and_kept("你好", "你好") == ([], ["你好"])
