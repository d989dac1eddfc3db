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

This module is the pure part (thresholds, the share); the identifier itself is
``xdetox.metrics.langid``, so that code which only aggregates never depends on lingua.
"""

from __future__ import annotations

import numpy as np

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
