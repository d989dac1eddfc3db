"""Language consistency: is a continuation in its prompt's language?

Cross-lingual detoxification can lower toxicity by drifting into another language or into noise
(Neplenbroek et al. 2025, arXiv 2412.14050), so every evaluation also reports the share of
continuations that an independent, offline language identifier assigns to the prompt's language.

- Identifier: lingua-language-detector (its models ship in the wheel; nothing from a hub). Built
  once per process, over the spec's languages plus ``DISTRACTORS`` only, not all 75 languages
  lingua knows: building and querying it over every language is slow, and a continuation that
  drifts is overwhelmingly into one of these widely-trained languages. A drift into a language
  outside that set is counted as whichever candidate is closest, i.e. it can be missed.
- Only continuations long enough to identify count: >= ``MIN_WORDS`` whitespace words, or for
  scripts written without spaces (zh, ja, ko) >= ``MIN_CHARS_CJK`` non-space characters. Shorter
  ones are left out of both numerator and denominator (counted as ``language_short_rows``).
- A prompt language lingua does not support has no value (missing, never 0).
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from lingua import Language, LanguageDetector

LANGUAGE_METRIC = "language_consistency"
MIN_WORDS = 3
MIN_CHARS_CJK = 6
CJK = frozenset({"zh", "ja", "ko"})
DISTRACTORS: tuple[str, ...] = ("en", "es", "fr", "de", "it", "pt", "nl", "ru", "zh", "ja")


def consistency_share(prompt_consistent: np.ndarray, prompt_counted: np.ndarray) -> np.ndarray:
    """Share of counted continuations identified as the prompt's language: a ratio of sums over
    the prompt axis (last), so resampling prompts stays exact; NaN where nothing was counted."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(prompt_consistent, dtype=float).sum(axis=-1) / np.asarray(prompt_counted, dtype=float).sum(axis=-1)


def base_code(language: str) -> str:
    """``zh-Hans`` / ``pt_BR`` -> ``zh`` / ``pt``: lingua identifies languages, not variants."""
    return language.replace("_", "-").split("-", 1)[0].lower()


def long_enough(text: str, language: str) -> bool:
    """Whether ``text`` is long enough for its language to be identified reliably."""
    if base_code(language) in CJK:
        return sum(1 for ch in text if not ch.isspace()) >= MIN_CHARS_CJK
    return len(text.split()) >= MIN_WORDS


def lingua_language(code: str) -> Language | None:
    """lingua's Language for an ISO 639-1 code, or None when lingua does not know it."""
    from lingua import IsoCode639_1, Language  # lazy: only the evaluate step needs lingua

    try:
        return Language.from_iso_code_639_1(IsoCode639_1.from_str(base_code(code)))
    except ValueError:
        return None


class LanguageIdentifier:
    """Identifies continuations among a fixed candidate set (the spec's languages + distractors)."""

    def __init__(self, languages: Iterable[str]) -> None:
        from lingua import LanguageDetectorBuilder

        codes = sorted({base_code(x) for x in languages} | set(DISTRACTORS))
        langs = {lang for lang in (lingua_language(c) for c in codes) if lang is not None}
        self.candidates: tuple[str, ...] = tuple(sorted(lang.iso_code_639_1.name.lower() for lang in langs))
        self._detector: LanguageDetector = LanguageDetectorBuilder.from_languages(*langs).build()

    def supports(self, language: str) -> bool:
        return base_code(language) in self.candidates

    def identify(self, text: str) -> str | None:
        found = self._detector.detect_language_of(text)
        return None if found is None else found.iso_code_639_1.name.lower()

    def consistent(self, text: str, language: str) -> bool | None:
        """True/False: identified as / not as ``language``; None when it does not count (too short,
        or a language the identifier does not support)."""
        if not self.supports(language) or not long_enough(text, language):
            return None
        return self.identify(text) == base_code(language)


@lru_cache(maxsize=8)
def _cached(codes: frozenset[str]) -> LanguageIdentifier:
    return LanguageIdentifier(codes)


def identifier_for(languages: Iterable[str]) -> LanguageIdentifier:
    """One identifier per process and language set (building one loads lingua's models)."""
    return _cached(frozenset(base_code(x) for x in languages))
