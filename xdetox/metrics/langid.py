"""The offline language identifier behind language consistency (lingua-language-detector).

See xdetox.metrics.language for what is counted and why; this module alone needs lingua.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from typing import TYPE_CHECKING

from xdetox.metrics.language import DISTRACTORS, base_code, long_enough

if TYPE_CHECKING:
    from lingua import Language, LanguageDetector


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
