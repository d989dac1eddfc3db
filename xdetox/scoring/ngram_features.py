"""Hashed character n-gram features, computed for a whole batch at once with numpy.

Shared by the embedded n-gram scorer (``xdetox/scoring/ngram.py``) and its builder
(``xdetox/scoring/ngram_build.py``), so training and scoring see exactly the same features.

A text is normalised (NFKC + casefold, punctuation and symbols to spaces, runs of whitespace to
one space) and padded with a space
on each side, so word starts and ends are part of n-grams (`` idiot ``). Every character n-gram
for n in ``ORDERS`` gives two features: a shared one (the same in every language: cognates and
English loan swear words transfer) and one salted with the text's language (what a word means in
this language). A text's features all have the value ``1 / (number of its n-grams)``: the
logit is the bias plus the MEAN weight of the text's n-grams, so it does not grow or shrink with
length (a text repeated twice scores as once). Version 3 used ``1 / sqrt(n)``: the logit was then
the bias plus ``sqrt(n)`` times the mean weight, and as most n-gram weights are negative the score
rose as a text got shorter (an empty text scored 0.94-1.0). The lone space n-gram is left out: it
only counts words (length and word density), and in zh, where spaces are only the padding, its
share of a text is 1 / length. A text with no letter, mark or digit has no n-gram at all; the
scorers give it probability 0.0 explicitly (``contentless``).

Hand-written rather than scikit-learn's ``HashingVectorizer`` because that one builds each
n-gram as a Python string (about 10x slower here): this one hashes UTF-32 code points with
wrapping uint64 arithmetic over the concatenated batch, so a batch costs a few numpy passes.
The hash is fixed (constants below); changing it changes ``FEATURE_VERSION`` and needs a rebuilt
model.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Iterator, Sequence
from functools import lru_cache

import numpy as np

from xdetox.scoring.normalize import base_language

FEATURE_VERSION = "4"
ORDERS = (1, 2, 3, 4, 5)
# 32-bit arithmetic: half the memory traffic of 64-bit, and 2**32 hash values leave collisions to
# the final fold into 2**bits columns. Multipliers: the FNV-1a 32-bit prime for the rolling
# hash, Knuth's golden-ratio constant for spreading into the high bits that are kept.
_P = np.uint32(16777619)
_MIX = np.uint32(0x9E3779B1)
_ORDER_SALT = {n: np.uint32(int(hashlib.sha256(f"order{n}".encode()).hexdigest()[:8], 16)) for n in ORDERS}


@lru_cache(maxsize=256)
def language_salt(language: str) -> int:
    return int(hashlib.sha256(f"lang:{base_language(language)}".encode()).hexdigest()[:8], 16)


# Punctuation, symbols, separators and control characters (Unicode categories P*, S*, Z*, C*)
# become spaces, and runs of spaces one space: in ParaDetox the toxic side is raw web text
# (tokenised " , ", hashtags, emoji) and the neutral side was typed by annotators, so punctuation
# would teach the model the sources' formatting, not toxicity. Letters, marks (Devanagari vowel
# signs) and digits stay. Done on the code-point array with a lookup table: a regex or
# str.translate pass per text costs more than all the hashing.
_TABLE_SIZE = 0x30000  # every assigned letter is below this; anything above is kept as is
_BLANK = np.array([unicodedata.category(chr(cp))[0] in "PSZC" for cp in range(_TABLE_SIZE)] + [False])


def prepare(text: str) -> str:
    """NFKC + casefold (what featurize starts from; it then blanks punctuation itself)."""
    return unicodedata.normalize("NFKC", text).casefold()


def encode(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(code points, separator mask) of the batch: each text prepared, punctuation blanked, runs of
    spaces collapsed, padded with one space each side, texts joined by a 0 code point. Shared by the
    n-gram features and the word-list features (``xdetox/scoring/wordlist_features.py``)."""
    # a NUL inside a text would read as a separator and shift every later text's row: it is a
    # control character, blanked like the others
    joined = "\x00".join(" " + prepare(t).replace("\x00", " ") + " " for t in texts)
    cps = np.frombuffer(joined.encode("utf-32-le"), dtype=np.uint32).copy()
    sep = cps == 0
    cps[_BLANK[np.minimum(cps, _TABLE_SIZE)] & ~sep] = 32
    space = cps == 32
    keep = ~(space & np.concatenate(([False], space[:-1])))
    return cps[keep], sep[keep]


def _ngram_counts(text_of: np.ndarray, sep: np.ndarray, space: np.ndarray, n_texts: int) -> np.ndarray:
    """Per text, how many n-grams it has (the lone space, not a feature, is not counted)."""
    lengths = np.bincount(text_of[~sep], minlength=n_texts)
    return sum(np.maximum(lengths - n + 1, 0) for n in ORDERS) - np.bincount(text_of[space], minlength=n_texts)


def _windows(cps: np.ndarray, sep: np.ndarray, space: np.ndarray, salts: np.ndarray,
             shift: np.uint32) -> Iterator[tuple[int, np.ndarray, np.ndarray, np.ndarray]]:
    """Per order n of ``ORDERS``: (n, start positions of the n-grams holding no separator, and for
    unigrams no space; their shared columns; their language-salted columns), by one rolling hash."""
    seps_before = np.concatenate(([0], np.cumsum(sep, dtype=np.int32)))
    h = np.zeros(len(cps), dtype=np.uint32)
    with np.errstate(over="ignore"):
        for n in range(1, max(ORDERS) + 1):
            m = len(cps) - n + 1
            if m <= 0:
                break
            h = h[:m] * _P + cps[n - 1:n - 1 + m]
            if n not in ORDERS:
                continue
            inside = seps_before[n:n + m] == seps_before[:m]  # no separator inside the window
            if n == 1:
                inside &= ~space[:m]
            ok = np.flatnonzero(inside)
            hn = h[ok] ^ _ORDER_SALT[n]
            yield n, ok, (hn * _MIX) >> shift, ((hn ^ salts[ok]) * _MIX) >> shift


def featurize(texts: Sequence[str], languages: Sequence[str], bits: int,
              encoded: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row, column, scale): one (row, column) pair per feature occurrence (duplicates are to be
    summed; rows are positions in ``texts``, columns in ``[0, 2**bits)``), and per text the value
    every one of its features has, ``1 / (number of its n-grams)`` (1 for a contentless text).
    ``encoded`` is ``encode(texts)`` when the caller already has it."""
    if not texts:
        empty = np.zeros(0, dtype=np.intp)
        return empty, empty, np.zeros(0, dtype=np.float64)
    cps, sep = encode(texts) if encoded is None else encoded
    # the text each position belongs to, and that text's language salt
    # int32: half the memory traffic of the default int64 in every gather and concatenation below
    text_of = np.cumsum(sep, dtype=np.int32) - sep
    space = cps == 32
    # the space unigram is not a feature (see the module docstring), so it is not counted either
    scale = 1.0 / np.maximum(_ngram_counts(text_of, sep, space, len(texts)), 1).astype(np.float64)
    salts = np.array([language_salt(lang) for lang in languages], dtype=np.uint32)[text_of]
    rows, cols = [], []
    for _, ok, shared, salted in _windows(cps, sep, space, salts, np.uint32(32 - bits)):
        rows += [text_of[ok]] * 2
        cols += [shared, salted]
    return np.concatenate(rows), np.concatenate(cols), scale


def contentless(texts: Sequence[str], encoded: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Per text: True when it holds no letter, mark or digit (empty, whitespace, punctuation,
    symbols, emoji). Nothing in such a text can be toxic as the scorers read text, so they give it
    probability 0.0 instead of a logit made of the bias alone; Perspective API, which paper 1's
    harness sends an empty continuation to as " ", scores it near 0 as well."""
    if not texts:
        return np.zeros(0, dtype=bool)
    cps, sep = encode(texts) if encoded is None else encoded
    text_of = np.cumsum(sep, dtype=np.int32) - sep
    content = np.bincount(text_of[~sep & (cps != 32)], minlength=len(texts))
    return content == 0


def linear_scores(texts: Sequence[str], languages: Sequence[str], weights: np.ndarray, bias: float,
                  encoded: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """The model's logits: bias + features . weights, per text (no sparse matrix built)."""
    bits = int(np.log2(len(weights)))
    row, col, scale = featurize(texts, languages, bits, encoded)
    return bias + np.bincount(row, weights=weights[col], minlength=len(texts)) * scale



def word_max_logits(texts: Sequence[str], languages: Sequence[str], weights: np.ndarray, bias: float,
                    encoded: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Per text: the MAX over its words of the word's own logit (see ``text_and_word_max_logits``)."""
    return text_and_word_max_logits(texts, languages, weights, bias, encoded)[1]


def text_and_word_max_logits(texts: Sequence[str], languages: Sequence[str], weights: np.ndarray, bias: float,
                             encoded: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per text: (its logit, as ``linear_scores``; the MAX over its words of the word's own logit),
    from one hashing pass. A word's logit is ``bias`` + the mean weight of the n-grams lying within
    the word (its boundary spaces included, `` idiot``, ``idiot ``; n-grams spanning two words are
    left out). The text logit is a mean over the whole text, so one listed word in a long sentence
    is diluted by the sentence's length; its word's logit is not, and a max over words does not
    grow with length the way a sum would (a text repeated twice has the same words). A text
    without words (contentless) gets ``bias`` for both: the scorers give it 0.0 anyway. An
    unsegmented script (zh, ja) is one "word" per run of characters."""
    if not texts:
        return np.zeros(0, dtype=np.float64), np.zeros(0, dtype=np.float64)
    cps, sep = encode(texts) if encoded is None else encoded
    text_of = np.cumsum(sep, dtype=np.int32) - sep
    space = cps == 32
    n_grams = _ngram_counts(text_of, sep, space, len(texts))
    # word id of a position: boundaries (spaces, separators) up to and including it
    word_of = np.cumsum(space | sep, dtype=np.int32)
    spaces_before = np.concatenate(([0], np.cumsum(space, dtype=np.int32)))
    salts = np.array([language_salt(lang) for lang in languages], dtype=np.uint32)[text_of]
    n_words = int(word_of[-1]) + 1
    text_sums = np.zeros(len(texts), dtype=np.float64)
    sums = np.zeros(n_words, dtype=np.float64)
    counts = np.zeros(n_words, dtype=np.float64)
    for n, ok, shared, salted in _windows(cps, sep, space, salts, np.uint32(32 - int(np.log2(len(weights))))):
        w = weights[shared].astype(np.float64) + weights[salted]
        text_sums += np.bincount(text_of[ok], weights=w, minlength=len(texts))
        if n >= 3:  # within one word: no space strictly inside the window ("  " cannot occur)
            within = spaces_before[ok + n - 1] == spaces_before[ok + 1]
            ok, w = ok[within], w[within]
        wid = word_of[ok + space[ok]]  # the word of the window's first non-space position
        sums += np.bincount(wid, weights=w, minlength=n_words)
        counts += np.bincount(wid, minlength=n_words)
    z = bias + text_sums / np.maximum(n_grams, 1)
    has = counts > 0
    word_logit = bias + sums[has] / counts[has]
    # the text a word belongs to: that of its first position (word ids grow with position)
    first_pos = np.searchsorted(word_of, np.flatnonzero(has), side="left")
    out = np.full(len(texts), -np.inf)
    np.maximum.at(out, text_of[first_pos], word_logit)
    return z, np.where(np.isfinite(out), out, bias)
