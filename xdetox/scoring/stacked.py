"""The embedded stacked scorer: ``P(toxic) = sigmoid(combiner . features)``.

Features (``xdetox/scoring/stacked_features.py``): the embedded n-gram model's logit
(``xdetox/scoring/ngram.py``) and word-list hit counts (``xdetox/scoring/wordlist_features.py``,
lexicon version 5's lists since version 9), both computed from one encoding of the batch. The combiner's weights
are ``combiner.json`` beside a ``manifest.json`` naming the digests of everything it was fitted
with: its own file, the n-gram model and the word lists. Loading checks all three, so a rebuilt
n-gram model or an edited list cannot silently pair with a combiner fitted for another.

Why stacked: the n-gram model ranks well where ParaDetox taught it the language and poorly where
it only saw word-list entries inserted into other languages' sentences; a hit count puts texts
holding a listed word first but ties everything else. The combiner lets hits lead and the logit
order within ties, with a separate logit weight for the two regimes (docs/SCORERS.md has the
design table, all on ParaDetox's held-out pairs). Every language gets a probability in [0, 1]: a
language without a list or ParaDetox data is scored through the shared n-grams and the English list.
A text with no letter, mark or digit (empty, whitespace, punctuation, emoji) scores 0.0.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from xdetox.records import GenerationRow
from xdetox.scoring.base import Scorer, ScoreResult
from xdetox.scoring.ngram import BUILTIN_DIR as NGRAM_DIR
from xdetox.scoring.ngram import ModelFileError, load_model
from xdetox.scoring.ngram_build import LEXICON_DIR
from xdetox.scoring.ngram_features import contentless, encode, text_and_word_max_logits
from xdetox.scoring.normalize import base_language
from xdetox.scoring.stacked_features import (
    FEATURES,
    STACKED_VERSION,
    WORDLIST_LANGUAGES,
    feature_matrix,
    lists_digest,
)
from xdetox.scoring.wordlist_features import WordListFeatures

BUILTIN_DIR = Path(__file__).resolve().parents[1] / "data" / "stacked-scorer"


def load_combiner(folder: Path, ngram_dir: Path = NGRAM_DIR, lists_dir: Path = LEXICON_DIR
                  ) -> tuple[np.ndarray, float, dict[str, Any]]:
    manifest_path, combiner_path = folder / "manifest.json", folder / "combiner.json"
    for p in (manifest_path, combiner_path):
        if not p.is_file():
            raise ModelFileError(f"{p}: missing (build it with `xdetox scorer build-stacked --out {folder}`)")
    manifest = json.loads(manifest_path.read_text("utf-8"))
    payload = combiner_path.read_bytes()
    checks = [(hashlib.sha256(payload).hexdigest(), manifest.get("sha256"), combiner_path),
              (json.loads((ngram_dir / "manifest.json").read_text("utf-8")).get("sha256"),
               manifest.get("ngram_model_sha256"), ngram_dir / "model.npz"),
              (lists_digest(lists_dir, WORDLIST_LANGUAGES), manifest.get("word_lists_sha256"), lists_dir)]
    for actual, expected, what in checks:
        if actual != expected:
            raise ModelFileError(f"{what}: sha256 {str(actual)[:12]}… does not match {manifest_path}'s "
                                 f"{str(expected)[:12]}… (rebuild with `xdetox scorer build-stacked`)")
    combiner = json.loads(payload)
    if tuple(combiner["features"]) != FEATURES:
        raise ModelFileError(f"{combiner_path}: features {combiner['features']} are not this xdetox's {list(FEATURES)}")
    return np.array(combiner["weights"], dtype=np.float64), float(combiner["bias"]), manifest


class StackedToxicityScorer(Scorer):
    score_kind = "probability"

    def __init__(self, model_dir: Path = BUILTIN_DIR, ngram_dir: Path = NGRAM_DIR, lists_dir: Path = LEXICON_DIR) -> None:
        self.coef, self.bias, self.manifest = load_combiner(Path(model_dir), Path(ngram_dir), Path(lists_dir))
        self.ngram_weights, self.ngram_bias, _ = load_model(Path(ngram_dir))
        self.lists = WordListFeatures.from_folder(Path(lists_dir), WORDLIST_LANGUAGES)
        self.paradetox_languages = frozenset(self.manifest["ngram_paradetox_languages"])
        self.id = "stacked-lr"
        self.version = f"{STACKED_VERSION}+{self.manifest['sha256'][:12]}"

    @classmethod
    def from_spec(cls, spec: Any) -> StackedToxicityScorer:
        return cls(BUILTIN_DIR if spec.model == "builtin" else Path(spec.model))

    def supports(self, language: str) -> bool:
        return True

    def features(self, texts: Sequence[str], languages: Sequence[str],
                 encoded: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
        encoded = encoded if encoded is not None or not texts else encode(texts)
        # one hashing pass for the text logit and the max word logit
        z, zmax = text_and_word_max_logits(texts, languages, self.ngram_weights, self.ngram_bias, encoded)
        counts = self.lists.counts(texts, languages, encoded)
        return feature_matrix(np.asarray(z, dtype=np.float64), counts, self._paradetox(languages), zmax)

    def _paradetox(self, languages: Sequence[str]) -> np.ndarray:
        """Per row: whether the n-gram model learnt its language from ParaDetox pairs (asked once
        per distinct code: a batch holds one or a few)."""
        known = {lang: base_language(lang) in self.paradetox_languages for lang in set(languages)}
        if len(known) == 1:
            return np.full(len(languages), next(iter(known.values())), dtype=bool)
        return np.array([known[lang] for lang in languages], dtype=bool)

    def probabilities(self, texts: Sequence[str], languages: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros(0)
        encoded = encode(texts)  # once for the n-grams, the hits and the contentless check
        logit = self.features(texts, languages, encoded) @ self.coef + self.bias
        # no letter or digit: nothing to be toxic (ngram_features.contentless), not the bias's verdict
        return np.where(contentless(texts, encoded), 0.0, 1.0 / (1.0 + np.exp(-logit)))

    def score_batch(self, rows: Sequence[GenerationRow]) -> list[ScoreResult]:
        p = self.probabilities([r.text for r in rows], [r.language for r in rows])
        # map over the positional first field (toxicity): half the cost of a comprehension with a
        # keyword, which at 20,000 texts/s is a few per cent of the scorer's time
        return list(map(ScoreResult, p.tolist()))
