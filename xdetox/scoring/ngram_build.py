"""Build the embedded n-gram scorer's model from data the project may vendor.

Training texts (never RTP-LX, never the xling prompts: those only evaluate):

- multilingual ParaDetox pairs (``xdetox/data/paradetox``; am ar de en es hi ru uk zh): the
  toxic side is label 1, its detoxified rewrite label 0, so the model learns what the rewrite
  removed, not the topic;
- word-list pairs for every language of ``BuildConfig.languages`` (the lists of lexicon version 5,
  ``xdetox/data/lexicons/lists-v5``: LDNOOBW filtered, plus the hand curations, benign homographs,
  topic words and identity terms removed, one concept checklist added; version 4's lists for stacked
  version 8, version 3's for stacked version 7, version 2's up
  to stacked version 6): a list entry inserted at a random word position
  into a neutral ParaDetox sentence (label 1) beside the same sentence without it (label 0). The
  carrier is from the entry's own language when ParaDetox has it, else from all languages' neutral
  sides; the pair is tagged with the entry's language, so the carrier's n-grams cancel and only
  the entry's own n-grams (shared and language-salted) carry weight. This is what gives the 10
  RTP-LX languages without ParaDetox (cs fr id it ja ko nl pl pt sv) a model at all. With each
  such pair, a one-word pair: the entry alone (1) beside one word of the carrier alone (0), so a
  very short text is scored by its word rather than by the bias.
- ParaDetox word pairs (a word the rewrite removed alone, 1, beside a word it kept alone, 0) and,
  in zh (no spaces), piece pairs (a span the rewrite removed or replaced alone beside a kept piece
  of the same length alone; since feature version 5), so short texts of ParaDetox languages are
  scored by what they hold, not by which side of ParaDetox is shorter.

``style_matched`` gives a pair's toxic side with the spans its rewrite removed deleted: the stacked
combiner's extra negatives (``stacked_build``) and, as ``BuildConfig.style_negatives``, a design
variant of this model's data that was not adopted (docs/SCORERS.md).

The model is a logistic regression fitted by SGD (scikit-learn ``SGDClassifier``, log loss,
fixed seed and epoch count, so a rebuild on the same inputs gives the same weights). Design
choices (L2 strength, word-list weight and entries, extended lists or not) were made on ParaDetox's
held-out split (``split_hf_shuffle42 == "test"``) and on leave-one-language-out runs (a ParaDetox
language's pairs left out of training, its test pairs scored), which mimic a language known only
from its word list. The released model trains on all pairs of both splits.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import unicodedata
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from xdetox.scoring.ngram_features import FEATURE_VERSION, ORDERS, UNSEGMENTED, featurize, prepare
from xdetox.scoring.normalize import base_language

DATA = Path(__file__).resolve().parents[1] / "data"
PARADETOX_DIR = DATA / "paradetox"
LEXICON_DIR = DATA / "lexicons" / "lists-v5"  # the curated lists (lexicon version 5): benign entries removed, checklist added


@dataclass(frozen=True)
class BuildConfig:
    bits: int = 20
    #: 1e-6 since feature version 4: mean-pooled features are ~sqrt(n) smaller than version 3's, so
    #: the same alpha regularised far harder (design table in docs/SCORERS.md)
    alpha: float = 1e-6
    epochs: int = 30
    seed: int = 0
    #: weight of a word-list pair relative to a ParaDetox pair
    wordlist_weight: float = 1.0
    #: at most this many entries per language (seeded sample), so the large lists don't dominate
    max_entries: int = 1500
    #: "all" (the released model) or "train" (design: ParaDetox's test split held out)
    split: str = "all"
    #: ParaDetox languages whose pairs are left out (leave-one-language-out design runs)
    exclude_paradetox: tuple[str, ...] = ()
    #: word-list languages: the 17 RTP-LX languages and the 9 ParaDetox ones (other lists' entries
    #: would only add shared n-grams the model cannot check against any neutral text)
    #: also train on one-word texts: each word-list entry alone (1) beside one word of its neutral
    #: carrier alone (0), so a short text's score comes from its words, not from the bias
    short_pairs: bool = True
    #: no separate intercept: with mean-pooled features it duplicates a shift of every weight, and
    #: without it a text made of n-grams the model never saw gets logit 0 (p 0.5), not the bias's say
    intercept: bool = False
    #: also train on one-word texts from ParaDetox itself: a word its rewrite removed (1) beside a
    #: word the rewrite kept (0), so single words of ParaDetox languages are scored by what they are
    paradetox_word_pairs: bool = True
    #: style-matched negatives: per ParaDetox pair, its toxic side with the spans its rewrite removed
    #: deleted (``style_matched``), label 0 beside the toxic side's 1: the same raw web text, differing
    #: only in the toxic words. "none", "add" (beside the rewrite) or "replace" (instead of it)
    style_negatives: str = "none"
    #: in languages written without spaces (zh), the word pairs' counterpart: per pair, one span its
    #: rewrite removed alone (1) beside a piece of the same length its rewrite kept alone (0), so a
    #: short zh text is scored by what its characters are, not by which side of ParaDetox is shorter
    piece_pairs: bool = True
    languages: tuple[str, ...] = ("am", "ar", "cs", "de", "en", "es", "fr", "hi", "id", "it", "ja", "ko", "nl",
                                  "pl", "pt", "ru", "sv", "uk", "zh")


@dataclass
class TrainingSet:
    texts: list[str] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    languages: list[str] = field(default_factory=list)
    weights: list[float] = field(default_factory=list)
    sources: dict[str, int] = field(default_factory=dict)

    def add(self, text: str, label: int, language: str, weight: float, source: str) -> None:
        self.texts.append(text)
        self.labels.append(label)
        self.languages.append(language)
        self.weights.append(weight)
        self.sources[source] = self.sources.get(source, 0) + 1


def paradetox_pairs(folder: Path = PARADETOX_DIR) -> dict[str, list[dict[str, str]]]:
    out = {}
    for path in sorted(folder.glob("*.reconstructed.jsonl")):
        lang = path.name.split(".")[0]
        out[lang] = [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]
    return out


def word_list(lang: str, lexicon_dir: Path = LEXICON_DIR) -> list[str]:
    path = lexicon_dir / f"{lang}.txt"
    return sorted({w for w in path.read_text("utf-8").splitlines() if w}) if path.is_file() else []


def list_languages(lexicon_dir: Path = LEXICON_DIR) -> list[str]:
    return sorted(p.stem for p in lexicon_dir.glob("*.txt"))


def training_set(cfg: BuildConfig, pairs: dict[str, list[dict[str, str]]] | None = None,
                 lexicon_dir: Path = LEXICON_DIR) -> TrainingSet:
    pairs = paradetox_pairs() if pairs is None else pairs
    rng = random.Random(cfg.seed)
    ts = TrainingSet()
    used = {lang: [r for r in rows if cfg.split == "all" or r["split_hf_shuffle42"] == cfg.split]
            for lang, rows in pairs.items() if lang not in cfg.exclude_paradetox}
    for lang, rows in sorted(used.items()):
        for r in rows:
            ts.add(r["toxic_sentence"], 1, lang, 1.0, "paradetox")
            matched = style_matched(r["toxic_sentence"], r["neutral_sentence"], lang) \
                if cfg.style_negatives != "none" else None
            if cfg.style_negatives != "replace" or matched is None:
                ts.add(r["neutral_sentence"], 0, lang, 1.0, "paradetox")
            if matched is not None:
                ts.add(matched, 0, lang, 1.0, "paradetox-style")
    if cfg.paradetox_word_pairs:
        _add_word_pairs(ts, used, random.Random(cfg.seed + 1))
    if cfg.piece_pairs:
        _add_piece_pairs(ts, used, random.Random(cfg.seed + 2))
    neutral = {lang: [r["neutral_sentence"] for r in rows] for lang, rows in used.items()}
    everywhere = [s for lang in sorted(neutral) for s in neutral[lang]]
    for lang in cfg.languages or list_languages(lexicon_dir):
        entries = word_list(lang, lexicon_dir)
        if len(entries) > cfg.max_entries:
            entries = sorted(rng.sample(entries, cfg.max_entries))
        carriers = neutral.get(lang) or everywhere
        for entry in entries:
            carrier = rng.choice(carriers)
            words = carrier.split()
            k = rng.randint(0, len(words))
            ts.add(" ".join([*words[:k], entry, *words[k:]]), 1, lang, cfg.wordlist_weight, "wordlist")
            ts.add(carrier, 0, lang, cfg.wordlist_weight, "wordlist")
            if cfg.short_pairs and words:
                ts.add(entry, 1, lang, cfg.wordlist_weight, "wordlist-short")
                ts.add(rng.choice(words), 0, lang, cfg.wordlist_weight, "wordlist-short")
    return ts


def _key(token: str) -> str:
    """A token as the features see it: casefolded, only its letters, marks and digits."""
    return "".join(c for c in prepare(token) if unicodedata.category(c)[0] in "LMN")


def style_matched(toxic: str, rewrite: str, language: str) -> str | None:
    """``toxic`` with the spans its rewrite removed or replaced deleted (difflib over words, over
    characters in languages written without spaces), or None when that removes nothing or leaves
    no letter or digit. Tokens are compared as the features see them (casefolded, punctuation
    ignored), so a rewrite that only fixed case or commas removes nothing."""
    from difflib import SequenceMatcher

    if base_language(language) in UNSEGMENTED:
        a, b = list(toxic), list(rewrite)
        ka, kb = [_key(c) or " " for c in a], [_key(c) or " " for c in b]
        joiner = ""
    else:
        a = toxic.split()
        ka, kb = [_key(t) for t in a], [_key(t) for t in rewrite.split()]
        a, ka = [t for t, k in zip(a, ka, strict=True) if k], [k for k in ka if k]
        kb = [k for k in kb if k]
        joiner = " "
    kept = [a[i] for tag, i1, i2, _, _ in SequenceMatcher(None, ka, kb, autojunk=False).get_opcodes()
            if tag == "equal" for i in range(i1, i2)]
    out = joiner.join(kept).strip()
    if len(kept) == len(a) or not any(_key(c) for c in out):
        return None
    return out


def split_words(text: str) -> list[str]:
    return [w for w in (t.strip(_PUNCT) for t in text.casefold().split()) if w]


_PUNCT = ".,!?;:\"'()[]{}«»“”„…-–—*#@/\\"


def _add_word_pairs(ts: TrainingSet, used: dict[str, list[dict[str, str]]], rng: random.Random) -> None:
    """Per ParaDetox pair whose rewrite removed a word: one removed word alone (1), one kept word
    alone (0). Languages written without spaces (zh) have no words to pick and are skipped."""
    for lang, rows in sorted(used.items()):
        for r in rows:
            kept = split_words(r["neutral_sentence"])
            removed = sorted(set(split_words(r["toxic_sentence"])) - set(kept))
            if removed and kept and len(kept) > 1:
                ts.add(rng.choice(removed), 1, lang, 1.0, "paradetox-words")
                ts.add(rng.choice(kept), 0, lang, 1.0, "paradetox-words")


def removed_and_kept(toxic: str, rewrite: str) -> tuple[list[str], list[str]]:
    """Character spans of ``toxic`` that its rewrite removed or replaced, and those it kept (difflib
    over characters as the features see them), each with at least one letter or digit."""
    from difflib import SequenceMatcher

    ka, kb = [_key(c) or " " for c in toxic], [_key(c) or " " for c in rewrite]
    removed, kept = [], []
    for tag, i1, i2, _, _ in SequenceMatcher(None, ka, kb, autojunk=False).get_opcodes():
        span = "".join(ka[i1:i2]).strip()
        if tag != "insert" and span:
            (kept if tag == "equal" else removed).append(span)
    return removed, kept


def _add_piece_pairs(ts: TrainingSet, used: dict[str, list[dict[str, str]]], rng: random.Random) -> None:
    for lang, rows in sorted(used.items()):
        if lang not in UNSEGMENTED:
            continue
        for r in rows:
            removed, kept = removed_and_kept(r["toxic_sentence"], r["neutral_sentence"])
            if removed and kept:
                piece = rng.choice(removed)
                block = rng.choice(kept)
                n = min(len(piece), len(block))
                k = rng.randint(0, len(block) - n)
                ts.add(piece, 1, lang, 1.0, "paradetox-pieces")
                ts.add(block[k:k + n], 0, lang, 1.0, "paradetox-pieces")


def design_matrix(texts: Sequence[str], languages: Sequence[str], bits: int):  # type: ignore[no-untyped-def]
    import scipy.sparse as sp

    row, col, scale = featurize(texts, languages, bits)
    return sp.csr_matrix((scale[row], (row, col)), shape=(len(texts), 2 ** bits))


def fit(ts: TrainingSet, cfg: BuildConfig) -> tuple[np.ndarray, float]:
    """The n-gram weights and bias. Version 3 fitted length nuisance columns alongside and dropped
    them; mean-pooled features (version 4) carry no length, so there are none."""
    from sklearn.linear_model import SGDClassifier

    model = SGDClassifier(loss="log_loss", alpha=cfg.alpha, max_iter=cfg.epochs, tol=None,
                          random_state=cfg.seed, fit_intercept=cfg.intercept)
    x = design_matrix(ts.texts, ts.languages, cfg.bits)
    model.fit(x, np.array(ts.labels), sample_weight=np.array(ts.weights))
    return model.coef_[0][:2 ** cfg.bits].astype(np.float32), float(np.asarray(model.intercept_).ravel()[0])


def save(out: Path, weights: np.ndarray, bias: float, cfg: BuildConfig, ts: TrainingSet) -> dict[str, object]:
    """Write model.npz (float16 weights: half the size, scores change by < 1e-3) and manifest.json."""
    out.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    # np.savez_compressed writes zip entries with the current time: pin it for byte-identical rebuilds
    import zipfile

    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, arr in (("weights", weights.astype(np.float16)), ("bias", np.array(bias, dtype=np.float64))):
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            payload = io.BytesIO()
            np.save(payload, arr, allow_pickle=False)
            zf.writestr(info, payload.getvalue())
    data = buf.getvalue()
    (out / "model.npz").write_bytes(data)
    manifest: dict[str, object] = {
        "about": "Embedded n-gram toxicity scorer, built by `xdetox scorer build-ngram` "
                 "(xdetox/scoring/ngram_build.py). Trained on multilingual ParaDetox (OpenRAIL++, "
                 "xdetox/data/paradetox/NOTICE) and LDNOOBW word lists (xdetox/data/lexicons). Never on RTP-LX.",
        "sha256": hashlib.sha256(data).hexdigest(),
        "feature_version": FEATURE_VERSION,
        "orders": list(ORDERS),
        "config": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(cfg).items()},
        "training_texts": len(ts.texts),
        "sources": dict(sorted(ts.sources.items())),
        "languages": sorted(set(ts.languages)),
        "word_lists": f"xdetox/data/lexicons/{LEXICON_DIR.name}",
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return manifest


def build(out: Path, cfg: BuildConfig | None = None) -> dict[str, object]:
    cfg = cfg or BuildConfig()
    ts = training_set(cfg)
    weights, bias = fit(ts, cfg)
    return save(out, weights, bias, cfg, ts)
