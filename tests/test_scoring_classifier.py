"""The classifier scorer on tiny randomly initialised sequence classifiers built here."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.scoring_fixtures import build_classifier, gen_row
from xdetox.kinds.scorers.classifier import ClassifierScorer
from xdetox.scoring.base import build_scorer
from xdetox.scoring.classifier import ClassifierLabelError, ClassifierToxicityScorer

TEXTS = ["you are a stupid idiot", "what a lovely day", "x", "der Hund", "敏捷的棕色狐狸跳过了懒狗 " * 3,
         "the quick brown fox jumps over the lazy dog and keeps running far away"]


@pytest.fixture(scope="module")
def clf_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_classifier(tmp_path_factory.mktemp("clf"), ["non-toxic", "toxic"])


@pytest.fixture(scope="module")
def multi_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_classifier(tmp_path_factory.mktemp("multi"), ["toxicity", "insult", "threat"], multi_label=True)


def make(folder: Path, **kw: object) -> ClassifierToxicityScorer:
    spec = ClassifierScorer(model=str(folder), **{"toxic_label": "toxic", **kw})  # type: ignore[arg-type]
    return ClassifierToxicityScorer.from_spec(spec, device="cpu")


def test_probabilities_in_unit_interval_and_batching_invariant(clf_dir: Path) -> None:
    one = make(clf_dir, batch_size=1).probabilities(TEXTS)
    many = make(clf_dir, batch_size=4).probabilities(TEXTS)
    assert all(0.0 <= p <= 1.0 for p in one)
    assert many == pytest.approx(one, abs=1e-5)
    assert len(set(round(p, 6) for p in one)) > 1  # not a constant


def test_label_by_name_or_index_matches_softmax(clf_dir: Path) -> None:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    toxic = make(clf_dir, toxic_label="toxic").probabilities(TEXTS[:2])
    by_index = make(clf_dir, toxic_label=1).probabilities(TEXTS[:2])
    other = make(clf_dir, toxic_label="non-toxic").probabilities(TEXTS[:2])
    assert toxic == pytest.approx(by_index)
    assert [a + b for a, b in zip(toxic, other, strict=True)] == pytest.approx([1.0, 1.0])
    model = AutoModelForSequenceClassification.from_pretrained(str(clf_dir)).eval()
    tok = AutoTokenizer.from_pretrained(str(clf_dir))
    with torch.no_grad():
        logits = model(**tok(TEXTS[0], return_tensors="pt")).logits[0]
    assert toxic[0] == pytest.approx(torch.softmax(logits, -1)[1].item(), abs=1e-6)


def test_unknown_label_is_a_clear_error(clf_dir: Path) -> None:
    with pytest.raises(ClassifierLabelError, match=r"scoring.toxic_label: 'hateful'.*0='non-toxic', 1='toxic'"):
        make(clf_dir, toxic_label="hateful")
    with pytest.raises(ClassifierLabelError, match="index 5"):
        make(clf_dir, toxic_label=5)


def test_multi_label_uses_sigmoid(multi_dir: Path) -> None:
    s = make(multi_dir, toxic_label="insult")
    assert s.multi_label and s.label_index == 1
    p = s.probabilities(TEXTS)
    assert all(0.0 <= x <= 1.0 for x in p)


def test_unsupported_language_is_missing(clf_dir: Path) -> None:
    s = make(clf_dir, languages=["en", "de"])
    rows = [gen_row("hello you idiot", "en"), gen_row("你好", "zh"), gen_row("Hallo", "de"), gen_row(" ", "en")]
    res = s.score_batch(rows)
    assert res[3].toxicity is None and res[3].score_error == "classifier: empty text"
    assert res[0].toxicity is not None and res[2].toxicity is not None
    assert res[1].toxicity is None and res[1].score_error == "classifier does not support language zh"
    assert s.score_kind == "probability" and s.id == f"classifier-{clf_dir.name.lower()}"
    assert "+label1+" in s.version


def test_version_changes_with_the_weights(clf_dir: Path, tmp_path: Path) -> None:
    other = build_classifier(tmp_path / "other", ["non-toxic", "toxic"], seed=7)
    assert make(clf_dir).version != make(other).version


def test_build_scorer_from_spec_dump(clf_dir: Path) -> None:
    s = build_scorer({"kind": "classifier", "model": str(clf_dir), "toxic_label": "toxic", "batch_size": 2})
    assert isinstance(s, ClassifierToxicityScorer) and s.batch_size == 2
    assert len(s.score_batch([gen_row(t, "en", i) for i, t in enumerate(TEXTS)])) == len(TEXTS)


@pytest.mark.s3
def test_classifier_from_s3(clf_dir: Path, s3_store_uri: str, isolated_cache: Path) -> None:
    from xdetox.store import open_store

    store = open_store(s3_store_uri)
    for p in clf_dir.iterdir():
        store.put_file(f"classifiers/tiny/{p.name}", p)
    s = build_scorer({"kind": "classifier", "model": f"{s3_store_uri}/classifiers/tiny", "toxic_label": "toxic"})
    local = make(clf_dir)
    assert s.version == local.version  # same weights, same version
    assert [r.toxicity for r in s.score_batch([gen_row(t, "en") for t in TEXTS[:2]])] == pytest.approx(
        local.probabilities(TEXTS[:2]))
    assert (isolated_cache / "models").is_dir()


def test_position_limit_from_config_and_tokenizer() -> None:
    from types import SimpleNamespace

    from xdetox.scoring.classifier import position_limit

    xlmr = SimpleNamespace(max_position_embeddings=514, pad_token_id=1, model_type="xlm-roberta")
    # fairseq positions start after the padding index 1: 514 - (1 + 1) = 512 usable
    assert position_limit(xlmr, SimpleNamespace(model_max_length=int(1e30))) == 512
    bert = SimpleNamespace(max_position_embeddings=128, pad_token_id=0, model_type="bert")
    assert position_limit(bert, SimpleNamespace(model_max_length=64)) == 64
    assert position_limit(SimpleNamespace(model_type="x"), SimpleNamespace()) is None


def test_long_text_is_clamped_not_crashed_and_truncation_recorded(
        clf_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING", logger="xdetox.scoring.classifier"):
        scorer = make(clf_dir, max_length=4096)  # the fixture's BERT embeds 128 positions
    assert scorer.max_length == 128
    assert "4096" in caplog.text and "128" in caplog.text
    long = "the quick brown fox jumps over the lazy dog " * 200  # far over 128 tokens
    res = scorer.score_batch([gen_row(long), gen_row("what a lovely day")])
    assert res[0].toxicity is not None and 0.0 <= res[0].toxicity <= 1.0
    assert (res[0].truncated, res[1].truncated) == (True, False)
    short = make(clf_dir, max_length=16)  # below the limit: kept as asked
    assert short.max_length == 16
