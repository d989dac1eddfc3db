"""Text normalisation shared by the lexicon vendoring script and the lexicon scorer.

NFKC folds compatibility forms (full-width Latin, ligatures), casefold removes case, and Turkish
and Azerbaijani map dotted/dotless I before casefolding (``İ``→``i``, ``I``→``ı``), where the
generic rule would give ``i̇``/``i``. ``normalize_with_offsets`` also returns, for every
character of the normalised text, the span of the original text it came from, so that matches
are reported at ORIGINAL offsets even when normalisation changes lengths (``ß``→``ss``).
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

import regex

_TURKIC = frozenset({"tr", "az"})
_TURKIC_I = str.maketrans({"İ": "i", "I": "ı"})
_GRAPHEME = regex.compile(r"\X")


def base_language(lang: str) -> str:
    return lang.split("-")[0].lower()


def normalize(text: str, lang: str) -> str:
    if base_language(lang) in _TURKIC:
        text = text.translate(_TURKIC_I)
    return unicodedata.normalize("NFKC", text).casefold()


@lru_cache(maxsize=65536)
def _fold_char(c: str) -> str:
    return unicodedata.normalize("NFKC", c).casefold()


def normalize_with_offsets(text: str, lang: str) -> tuple[str, list[int], list[int]]:
    """(normalised text, starts, ends): normalised char k comes from ``text[starts[k]:ends[k]]``."""
    if base_language(lang) in _TURKIC:
        text = text.translate(_TURKIC_I)  # one char to one char: offsets unchanged
    if unicodedata.is_normalized("NFKC", text):
        folded = text.casefold()
        # casefold never shortens a character, so equal length means one-to-one.
        if len(folded) == len(text):
            idx = list(range(len(text)))
            return folded, idx, [i + 1 for i in idx]
    whole = unicodedata.normalize("NFKC", text).casefold()
    # Per character (cached), accepted when it equals the whole-string result: nothing composed
    # across characters (full-width punctuation, ligatures, ß all take this path).
    pieces = [_fold_char(c) for c in text]
    if "".join(pieces) == whole:
        starts, ends = [], []
        for i, piece in enumerate(pieces):
            starts.extend([i] * len(piece))
            ends.extend([i + 1] * len(piece))
        return whole, starts, ends
    # Slow path: per grapheme cluster, so combining sequences still compose under NFKC.
    out: list[str] = []
    starts, ends = [], []
    for m in _GRAPHEME.finditer(text):
        piece = unicodedata.normalize("NFKC", m.group()).casefold()
        out.append(piece)
        starts.extend([m.start()] * len(piece))
        ends.extend([m.end()] * len(piece))
    return "".join(out), starts, ends
