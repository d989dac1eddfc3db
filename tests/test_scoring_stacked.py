"""The embedded stacked scorer: word-list hit features by hand, the combiner's arithmetic by hand,
digest checks, real scores of the vendored model."""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from xdetox.cli.main import app
from xdetox.scoring.base import build_scorer
from xdetox.scoring.ngram import BUILTIN_DIR as NGRAM_DIR
from xdetox.scoring.ngram import ModelFileError, NgramToxicityScorer
from xdetox.scoring.ngram_build import LEXICON_DIR
from xdetox.scoring.ngram_features import featurize, linear_scores
from xdetox.scoring.stacked import BUILTIN_DIR, StackedToxicityScorer, load_combiner
from xdetox.scoring.stacked_features import FEATURES, feature_matrix
from xdetox.scoring.wordlist_features import WordListFeatures

LISTS = {"en": ["idiot", "son of a bitch", "cunt"], "ru": ["дебил"], "ja": ["バカ"], "ko": ["개새끼"]}


@pytest.fixture(scope="module")
def wl() -> WordListFeatures:
    return WordListFeatures(LISTS)


def test_exact_stem_and_english_hits_by_hand(wl: WordListFeatures) -> None:
    texts = ["You IDIOT, son of a bitch!", "idiots", "ты дебила", "お前はバカだ", "du Idiot", "개새끼야", "Scunthorpe"]
    langs = ["en", "en", "ru", "ja", "de", "ko", "en"]
    got = wl.counts(texts, langs).tolist()
    # columns: exact hits of the row's own list, words starting with an entry's stem, English-list hits
    assert got == [
        [2, 2, 0],  # "idiot" and "son of a bitch" whole; stems "idio" and "son of a bitc" start words
        [0, 1, 0],  # inflected: only the stem "idio"
        [0, 1, 0],  # "дебила": stem "деби" (5 letters minus the last)
        [1, 0, 0],  # Japanese has no spaces: the entry anywhere, no stems
        [0, 0, 1],  # no German list here: the English "idiot" still counts, in its own column
        [0, 1, 0],  # Korean particle attached: the whole entry as a word start
        [0, 0, 0],  # "cunt" inside Scunthorpe starts no word
    ]


def test_hits_never_span_two_texts_and_batches_do_not_matter(wl: WordListFeatures) -> None:
    # "son of a" ends one text and "bitch" starts the next: no hit across the boundary
    assert wl.counts(["he is a son of a", "bitch"], ["en", "en"]).tolist() == [[0, 0, 0], [0, 0, 0]]
    alone = wl.counts(["ты дебил"], ["ru"])
    batch = wl.counts(["hello", "ты дебил", "バカ"], ["en", "ru", "ja"])
    assert batch[1].tolist() == alone[0].tolist() == [1, 1, 0]
    assert wl.counts([], []).shape == (0, 3)


def test_a_nul_inside_a_text_is_a_blank_not_a_text_boundary(wl: WordListFeatures) -> None:
    # generated text may hold any code point; NUL is also what joins a batch's texts internally
    assert wl.counts(["you\x00idiot", "idiot"], ["en", "en"]).tolist() == [[1, 1, 0], [1, 1, 0]]
    z = featurize(["calm\x00day", "x"], ["en", "en"], 16)
    assert set(z[0].tolist()) == {0, 1} and z[2][0] == featurize(["calm day"], ["en"], 16)[2][0]


def test_the_lists_of_one_language_do_not_match_in_another(wl: WordListFeatures) -> None:
    # the Russian entry in a Ukrainian row: lists are salted by language (English is the exception)
    assert wl.counts(["ти дебил"], ["uk"]).tolist() == [[0, 0, 0]]


def test_feature_matrix_by_hand() -> None:
    z = np.array([2.0, -1.0])
    counts = np.array([[1, 3, 2], [0, 0, 0]])
    x = feature_matrix(z, counts, np.array([True, False]), np.array([3.0, 0.5]))
    assert x.tolist() == [[2.0, 0.0, math.log(4.0), math.log(4.0), 0.0, 3.0, 0.0],  # hits = 1 own + 2 English
                          [0.0, -1.0, 0.0, 0.0, 1.0, 0.0, 0.5]]


def _model_with(tmp_path: Path, weights: list[float], bias: float) -> Path:
    """A copy of the vendored model folder whose combiner has the given weights (digest updated)."""
    folder = tmp_path / "m"
    shutil.copytree(BUILTIN_DIR, folder)
    payload = json.dumps({"features": list(FEATURES), "weights": weights, "bias": bias}).encode()
    (folder / "combiner.json").write_bytes(payload)
    man = json.loads((folder / "manifest.json").read_text())
    man["sha256"] = hashlib.sha256(payload).hexdigest()
    (folder / "manifest.json").write_text(json.dumps(man))
    return folder


def test_probability_is_the_sigmoid_of_the_combiner_by_hand(tmp_path: Path) -> None:
    # only log1p(hits) with weight 1: p = sigmoid(log(1 + h)) = (1 + h) / (2 + h)
    s = StackedToxicityScorer(_model_with(tmp_path, [0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0], 0.0))
    p = s.probabilities(["a calm day", "an idiot", "idiot idiot idiot"], ["en", "en", "en"])
    assert p.tolist() == pytest.approx([1 / 2, 2 / 3, 4 / 5])


def test_tampered_or_mismatched_files_fail_loudly(tmp_path: Path) -> None:
    folder = tmp_path / "a"
    shutil.copytree(BUILTIN_DIR, folder)
    (folder / "combiner.json").write_bytes((folder / "combiner.json").read_bytes().replace(b"0.", b"1.", 1))
    with pytest.raises(ModelFileError, match="combiner.json: sha256"):
        load_combiner(folder)
    lists = tmp_path / "lists"
    shutil.copytree(LEXICON_DIR, lists)
    with (lists / "sv.txt").open("a", encoding="utf-8") as f:
        f.write("tårta\n")  # an edited list: the combiner was fitted on other features
    with pytest.raises(ModelFileError, match="lists.*does not match"):
        load_combiner(BUILTIN_DIR, lists_dir=lists)
    with pytest.raises(ModelFileError, match="missing"):
        load_combiner(tmp_path / "nowhere")


def test_a_rebuilt_ngram_model_does_not_pair_with_the_old_combiner(tmp_path: Path) -> None:
    # the combiner's logit weights were fitted for one n-gram model: another one (here: a manifest
    # naming other weights) is refused, not silently combined
    ngram = tmp_path / "ngram"
    shutil.copytree(NGRAM_DIR, ngram)
    man = json.loads((ngram / "manifest.json").read_text())
    man["sha256"] = "0" * 64
    (ngram / "manifest.json").write_text(json.dumps(man))
    with pytest.raises(ModelFileError, match="model.npz: sha256 000000000000"):
        load_combiner(BUILTIN_DIR, ngram_dir=ngram)


def test_stacked_spec_takes_a_calibration_map_and_dumps_minimal() -> None:
    from xdetox.kinds import scorers

    assert scorers.validate_spec({"kind": "stacked"}).model_dump(mode="json") == {"kind": "stacked", "model": "builtin"}
    spec = scorers.validate_spec({"kind": "stacked", "calibration": "s3://bucket/maps/stacked.json"})
    assert spec.calibration == "s3://bucket/maps/stacked.json"  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def scorer() -> StackedToxicityScorer:
    return StackedToxicityScorer()


def test_builtin_model_ranks_toxic_first_in_every_regime(scorer: StackedToxicityScorer) -> None:
    pairs = {
        "en": ("you are a fucking idiot", "you are a kind person"),
        "ru": ("ты тупой урод", "ты хороший человек"),  # ParaDetox language
        "cs": ("ty jsi kurva debil", "ty jsi milý člověk"),  # word list only
        "pl": ("ty jebany chuju", "ty dobry człowieku"),  # inflected: chuj -> chuju
        "ja": ("お前はクソ野郎だ", "あなたは親切な人です"),
        "sv": ("håll käften din idiot", "du är snäll"),
        "xx": ("fuck you", "hello you"),  # no list, no ParaDetox: shared n-grams and the English list
    }
    texts = [t for pair in pairs.values() for t in pair]
    langs = [lang for lang in pairs for _ in range(2)]
    p = scorer.probabilities(texts, langs)
    assert ((p >= 0.0) & (p <= 1.0)).all()
    for k, lang in enumerate(pairs):
        assert p[2 * k] > p[2 * k + 1], lang
    assert scorer.score_kind == "probability" and scorer.supports("xx")
    assert scorer.probabilities([], []).shape == (0,)
    # empty, blank and punctuation-only texts get 0.0 (nothing to be toxic); a regional code is scored
    q = scorer.probabilities(["", " ", "!!!", "você é um idiota"], ["en", "en", "pt-BR", "pt-BR"])
    assert q[:3].tolist() == [0.0, 0.0, 0.0] and 0.5 <= q[3] < 1.0


def test_manifest_names_its_data_and_never_rtplx() -> None:
    man = json.loads((BUILTIN_DIR / "manifest.json").read_text())
    text = json.dumps(man).lower()
    assert "rtp" not in text.replace("never on rtp-lx", "") and "xling" not in text
    assert set(man["design_rows"]) == {f"{r}:{lang}" for r in ("paradetox", "wordlist")
                                       for lang in ("am", "ar", "de", "en", "es", "hi", "ru", "uk", "zh")}
    assert sum((BUILTIN_DIR / f).stat().st_size for f in ("combiner.json", "manifest.json")) < 5 * 2 ** 20


def test_spec_builds_the_builtin_model() -> None:
    s = build_scorer({"kind": "stacked"})
    assert isinstance(s, StackedToxicityScorer) and s.id == "stacked-lr"


@pytest.mark.parametrize(("kind", "scorer_id"), [("ngram", "ngram-lr"), ("stacked", "stacked-lr")])
def test_score_step_runs_each_embedded_probability_kind(tmp_path: Path, kind: str, scorer_id: str) -> None:
    """The kind end to end through a real score step: probability rows, no hits, nothing missing."""
    from tests.test_score_step import gen_rows, output_rows, setup_run
    from xdetox.steps.runner import run_step

    rows = gen_rows(10)  # includes an unknown language "xx": still scored (shared n-grams)
    store, m = setup_run(tmp_path, rows, {"kind": kind})
    rec, cached = run_step(m, store, log=lambda _: None)
    out = output_rows(store, rec)
    assert not cached and len(out) == 10 and rec.info["missing"] == 0
    assert all(r.score_kind == "probability" and r.scorer_id == scorer_id and r.hits is None
               and r.toxicity is not None and 0.0 <= r.toxicity <= 1.0 for r in out)
    by_text = {r.text: r.toxicity for r in out if r.language == "en"}
    assert by_text["you fucking idiot"] > by_text["a calm sentence"]  # type: ignore[operator]


@pytest.mark.slow
def test_released_combiner_rebuilds_from_the_vendored_data(tmp_path: Path) -> None:
    """`xdetox scorer build-stacked` on the vendored data gives the vendored combiner (~1 min).

    On the CPU model it was built on the file comes out byte-identical; on another CPU model
    L-BFGS-B's last bits differ (measured on an AMD EPYC against the release: relative 1e-15 to
    1e-14 in 6 of 8 numbers, so the file's digest differs too). The weights are therefore compared
    to a relative 1e-9, orders of magnitude below what any change of data, features or settings
    moves them by; everything else the manifest records must be equal."""
    res = CliRunner().invoke(app, ["scorer", "build-stacked", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    new = json.loads((tmp_path / "combiner.json").read_text())
    old = json.loads((BUILTIN_DIR / "combiner.json").read_text())
    assert set(new) == set(old) and new["features"] == old["features"]
    assert len(new["weights"]) == len(old["weights"]) == len(old["features"])
    np.testing.assert_allclose(new["weights"] + [new["bias"]], old["weights"] + [old["bias"]], rtol=1e-9, atol=0)
    new_man = json.loads((tmp_path / "manifest.json").read_text())
    old_man = json.loads((BUILTIN_DIR / "manifest.json").read_text())
    # each manifest names its own combiner file's digest
    assert new_man["sha256"] == hashlib.sha256((tmp_path / "combiner.json").read_bytes()).hexdigest()
    assert old_man["sha256"] == hashlib.sha256((BUILTIN_DIR / "combiner.json").read_bytes()).hexdigest()
    assert {k: v for k, v in new_man.items() if k != "sha256"} == {k: v for k, v in old_man.items() if k != "sha256"}


def test_word_max_logit_is_the_worst_words_own_logit_whatever_the_sentence_length() -> None:
    from xdetox.scoring.ngram_features import word_max_logits

    # constant weights: each n-gram occurrence of an English text reads 3 columns (shared, language-
    # and family-salted), so every word's mean is 3 * 0.25 = 0.75 and its logit bias + 0.75, however
    # long the text or the word
    flat = np.full(2**16, 0.25, dtype=np.float32)
    assert word_max_logits(["a", "idiot", "the weather is nice today", ""], ["en"] * 4, flat, -1.0).tolist() \
        == [-0.25, -0.25, -0.25, -1.0]  # a text without words gets the bias
    ngram = NgramToxicityScorer()
    w, b = ngram.weights, ngram.bias
    alone = linear_scores(["idiot", "you", "are", "such", "an"], ["en"] * 5, w, b)
    long = "you are such an idiot"
    z = word_max_logits([long, long + " " + long, "you are such an"], ["en"] * 3, w, b)
    # the max over the words of each word's logit alone; doubling the text changes nothing
    assert z[0] == pytest.approx(alone.max()) and z[1] == pytest.approx(z[0])
    assert z[2] == pytest.approx(alone[1:].max())
    # the whole-text logit is diluted by the other words, the word's is not
    assert linear_scores([long], ["en"], w, b)[0] < z[0]


def test_one_pass_logits_agree_with_the_design_rows_separate_functions() -> None:
    """The scorer hashes once for both logits; the combiner was fitted on the text logit of
    linear_scores (the n-gram scorer's own path): they must agree (to float rounding) or the
    combiner would see another feature at inference than in its fit."""
    from xdetox.scoring.ngram_features import text_and_word_max_logits

    ngram = NgramToxicityScorer()
    texts = ["you are such an idiot!", "", "calm day, nice people", "今天天气很好 你个傻逼", "ну ты и дебил"]
    langs = ["en", "en", "en", "zh", "ru"]
    z, _ = text_and_word_max_logits(texts, langs, ngram.weights, ngram.bias)
    np.testing.assert_allclose(z, linear_scores(texts, langs, ngram.weights, ngram.bias), atol=1e-12)
