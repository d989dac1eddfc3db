"""The embedded n-gram scorer: ``P(toxic) = sigmoid(bias + w . features(text, language))``.

Features are hashed character n-grams (``xdetox/scoring/ngram_features.py``); the weights are
``model.npz`` beside a ``manifest.json`` that records the model's sha256, how it was built and on
what data. The builtin model lives in ``xdetox/data/ngram-scorer`` (``xdetox scorer build-ngram``
rebuilds it); loading checks the digest, so a corrupted or swapped file fails loudly instead of
scoring silently wrong. Every language gets a score: a language without training data of its own
is scored through the shared (language-independent) n-grams, which is why per-language agreement
with people has to be measured (``xdetox scorer check``) before its numbers are trusted there.
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
from xdetox.scoring.ngram_features import FEATURE_VERSION, contentless, encode, linear_scores

BUILTIN_DIR = Path(__file__).resolve().parents[1] / "data" / "ngram-scorer"


class ModelFileError(ValueError):
    """The model folder is missing a file, or its weights do not match the manifest's digest."""


def load_model(folder: Path) -> tuple[np.ndarray, float, dict[str, Any]]:
    manifest_path, weights_path = folder / "manifest.json", folder / "model.npz"
    for p in (manifest_path, weights_path):
        if not p.is_file():
            raise ModelFileError(f"{p}: missing (build it with `xdetox scorer build-ngram --out {folder}`)")
    manifest = json.loads(manifest_path.read_text("utf-8"))
    digest = hashlib.sha256(weights_path.read_bytes()).hexdigest()
    if digest != manifest.get("sha256"):
        raise ModelFileError(f"{weights_path}: sha256 {digest[:12]}… does not match manifest.json's "
                             f"{str(manifest.get('sha256'))[:12]}…")
    if manifest.get("feature_version") != FEATURE_VERSION:
        raise ModelFileError(f"{manifest_path}: built for feature version {manifest.get('feature_version')!r}, "
                             f"this xdetox computes version {FEATURE_VERSION!r}: rebuild it")
    with np.load(weights_path) as z:
        weights = z["weights"].astype(np.float32)  # 4 MB: stays in cache
        bias = float(z["bias"])
    return weights, bias, manifest


class NgramToxicityScorer(Scorer):
    score_kind = "probability"

    def __init__(self, model_dir: Path = BUILTIN_DIR) -> None:
        self.weights, self.bias, self.manifest = load_model(Path(model_dir))
        self.id = "ngram-lr"
        self.version = f"{FEATURE_VERSION}+{self.manifest['sha256'][:12]}"

    @classmethod
    def from_spec(cls, spec: Any) -> NgramToxicityScorer:
        return cls(BUILTIN_DIR if spec.model == "builtin" else Path(spec.model))

    def supports(self, language: str) -> bool:
        return True

    def probabilities(self, texts: Sequence[str], languages: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros(0)
        encoded = encode(texts)
        z = linear_scores(texts, languages, self.weights, self.bias, encoded)
        # no letter or digit: nothing to be toxic (ngram_features.contentless), not the bias's verdict
        return np.where(contentless(texts, encoded), 0.0, 1.0 / (1.0 + np.exp(-z)))

    def score_batch(self, rows: Sequence[GenerationRow]) -> list[ScoreResult]:
        p = self.probabilities([r.text for r in rows], [r.language for r in rows])
        return [ScoreResult(toxicity=float(v)) for v in p]
