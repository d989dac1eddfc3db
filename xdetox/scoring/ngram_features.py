"""Hashed character n-gram features, computed for a whole batch at once with numpy.

Shared by the embedded n-gram scorer (``xdetox/scoring/ngram.py``) and its builder
(``xdetox/scoring/ngram_build.py``), so training and scoring see exactly the same features.

A text is normalised (NFKC + casefold, punctuation and symbols to spaces, runs of whitespace to
one space) and padded with a space
on each side, so word starts and ends are part of n-grams (`` idiot ``). Every character n-gram
for n in ``ORDERS`` gives two features: a shared one (the same in every language: cognates and
English loan swear words transfer), one salted with the text's language (what a word means in
this language) and, since version 5, one salted with its language family (``FAMILIES``: what a
word means in related languages; none for a language alone in its family). In languages written
without spaces (``UNSEGMENTED``: zh ja) n-grams touching a space are not features (version 5): the
padding there is only the text's edge, a length signal. A text's features all have the value ``1 / (number of its n-grams)``: the
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

FEATURE_VERSION = "5"
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


@lru_cache(maxsize=1)
def _nfkc_inert() -> np.ndarray:
    """Per code point below ``_TABLE_SIZE`` (the last entry: all above, conservatively False):
    True when NFKC leaves it alone in any text made only of such code points: its own NFKC is
    itself, it has combining class 0 (nothing to reorder) and it is not the second half of a
    canonical composition (nothing composes with the code point before it; Hangul vowel and
    final jamo compose algorithmically). A text of inert code points is its own NFKC, so ``encode``
    normalises only the texts holding another one: CPython's NFKC checks a string quickly only
    while every code point is "quick-check yes", and one "…" or fullwidth comma in a batch sent the
    whole batch through the full algorithm (a tenth of the stacked scorer's time in de, es, ar).
    Built on first use (~0.03 s)."""
    inert = np.ones(_TABLE_SIZE + 1, dtype=bool)
    inert[_TABLE_SIZE] = False
    for cp in range(_TABLE_SIZE):
        c = chr(cp)
        if unicodedata.combining(c):
            inert[cp] = False
        d = unicodedata.decomposition(c)  # '' for a code point NFKC cannot change on its own
        if d:
            if unicodedata.normalize("NFKC", c) != c:
                inert[cp] = False
            if not d.startswith("<") and len(d.split()) == 2:
                inert[int(d.split()[1], 16)] = False
    inert[0x1161:0x1176] = inert[0x11A8:0x11C3] = False
    return inert


def encode(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(code points, separator mask) of the batch: each text prepared, punctuation blanked, runs of
    spaces collapsed, padded with one space each side, texts joined by a 0 code point. Shared by the
    n-gram features and the word-list features (``xdetox/scoring/wordlist_features.py``)."""
    # a NUL inside a text would read as a separator and shift every later text's row: it is a
    # control character, blanked like the others
    raw = " \x00 ".join(texts)
    if raw.count("\x00") != len(texts) - 1:
        raw = " \x00 ".join(t.replace("\x00", " ") for t in texts)
    # NFKC text by text, only where a text holds a code point that is not inert (``_nfkc_inert``),
    # or for the whole batch when most do (hi: virama); then casefold the whole batch in one call.
    # The same as preparing each text, because NFKC never composes across the space and NUL that
    # join them (no composition starts or ends with either) and casefold maps each code point on
    # its own (bench/check_identical.py feeds neighbours that would compose)
    raw_cps = np.frombuffer(raw.encode("utf-32-le"), dtype=np.uint32)
    odd = np.flatnonzero(~_nfkc_inert()[np.minimum(raw_cps, _TABLE_SIZE)])
    if len(odd):
        todo = np.unique(np.searchsorted(np.flatnonzero(raw_cps == 0), odd))
        if len(todo) > len(texts) // 2:
            raw = unicodedata.normalize("NFKC", raw)
        else:
            parts = raw.split("\x00")  # the i-th is text i with its join spaces
            for i in todo.tolist():
                parts[i] = unicodedata.normalize("NFKC", parts[i])
            raw = "\x00".join(parts)
    joined = (" " + raw + " ").casefold()
    cps = np.frombuffer(joined.encode("utf-32-le"), dtype=np.uint32).copy()
    sep = cps == 0
    cps[_BLANK[np.minimum(cps, _TABLE_SIZE)] & ~sep] = 32
    space = cps == 32
    keep = ~(space & np.concatenate(([False], space[:-1])))
    return cps[keep], sep[keep]


#: languages written without spaces between words: their n-grams touching a space (the padding,
#: or blanked punctuation) are not features (``_windows``). In them the padding is only the text's
#: edge, so the share of edge n-grams is a length signal (1 / length), and ParaDetox's zh toxic side
#: is the shorter one: v5 scored a lone "的" 0.99. Toggled off by design runs only.
UNSEGMENTED: frozenset[str] = frozenset({"zh", "ja"})
#: related-language families (feature version 5): a third copy of each n-gram salted by the
#: family, so a language known only from its word list shares weights with its ParaDetox-trained
#: relatives (nl sv with de en, fr it pt with es, uk with ru, cs with pl) beyond the shared copy,
#: which every language reads. Genealogical subgroups as Glottolog classifies them (Slavic,
#: Germanic, Romance, all Indo-European); the other languages of the lists (am ar hi id ja ko zh) are
#: alone in theirs and get no family copy. Design runs (``stacked_build``) switch it off.
FAMILIES: dict[str, str] = {
    "cs": "slavic", "pl": "slavic", "ru": "slavic", "uk": "slavic",
    "de": "germanic", "en": "germanic", "nl": "germanic", "sv": "germanic",
    "es": "romance", "fr": "romance", "it": "romance", "pt": "romance",
}


@lru_cache(maxsize=256)
def family_salt(language: str) -> int:
    """0 when the language has no family (no family copy)."""
    fam = FAMILIES.get(base_language(language))
    return 0 if fam is None else int(hashlib.sha256(f"family:{fam}".encode()).hexdigest()[:8], 16)


def _count_up_to(mask: np.ndarray, inclusive: bool = True) -> np.ndarray:
    """Per position, how many True positions of ``mask`` come before it (and at it, when
    ``inclusive``): ``np.cumsum(mask, dtype=np.int32)`` (minus ``mask`` when not inclusive), built
    from the True positions with ``np.repeat``, about 5x faster than numpy's cumsum over a bool
    array (which converts element by element)."""
    edges = np.flatnonzero(mask) + (0 if inclusive else 1)
    return np.repeat(np.arange(len(edges) + 1, dtype=np.int32), np.diff(edges, prepend=0, append=len(mask)))


#: a per-position value of ``_Batch``: one number where every text of the batch has the same (the
#: usual batch holds one language: no per-position array, no gathers from it), else an array
PerPosition = np.ndarray | np.uint32 | bool


class _Batch:
    """What every window walk needs about an encoded batch, computed once."""

    def __init__(self, cps: np.ndarray, sep: np.ndarray, languages: Sequence[str]) -> None:
        self.cps, self.sep = cps, sep
        # the text of a position (a separator: the text before it)
        # int32: half the memory traffic of the default int64 in every gather and concatenation below
        self.text_of = _count_up_to(sep, inclusive=False)
        self.space = cps == 32
        distinct = set(languages)
        if len(distinct) == 1:
            lang = base_language(next(iter(distinct)))
            fam = family_salt(lang)
            self.salts: PerPosition = np.uint32(language_salt(lang))
            self.fsalts: PerPosition | None = np.uint32(fam) if fam else None
            self.unsegmented: PerPosition | None = True if lang in UNSEGMENTED else None
            return
        base = {lang: base_language(lang) for lang in distinct}
        langs = [base[lang] for lang in languages]
        self.salts = np.array([language_salt(lang) for lang in langs], dtype=np.uint32)[self.text_of]
        fams = np.array([family_salt(lang) for lang in langs], dtype=np.uint32)
        self.fsalts = fams[self.text_of] if fams.any() else None
        unseg = np.array([lang in UNSEGMENTED for lang in langs], dtype=bool)
        self.unsegmented = unseg[self.text_of] if unseg.any() else None


def _windows(b: _Batch, shift: np.uint32) -> Iterator[tuple[int, np.ndarray, np.ndarray, np.ndarray,
                                                            np.ndarray | slice | None, np.ndarray | None]]:
    """Per order n of ``ORDERS``: (n, start positions of the n-grams holding no separator, no space
    for unigrams and none at all in an unsegmented language; their shared columns; their
    language-salted columns; which of them have a family (a mask, or ``slice(None)``: all); those
    ones' family-salted columns), by one rolling hash. Whether a window holds a separator (a space)
    is carried from length n-1 to n with one ``&``, not read from running counts."""
    cps, not_sep, not_space = b.cps, ~b.sep, ~b.space
    inside = not_sep  # by start position: the window of the current length holds no separator
    no_space = not_space if b.unsegmented is not None else None  # ... and no space
    h = cps
    with np.errstate(over="ignore"):
        for n in range(1, max(ORDERS) + 1):
            m = len(cps) - n + 1
            if m <= 0:
                break
            if n > 1:
                # in place from n = 3 on (h is then this walk's own array; at n = 2 it is cps)
                h = h[:m] * _P if n == 2 else np.multiply(h[:m], _P, out=h[:m])
                h += cps[n - 1:n - 1 + m]
                inside = inside[:m] & not_sep[n - 1:n - 1 + m]
                if no_space is not None:
                    no_space = no_space[:m] & not_space[n - 1:n - 1 + m]
            if n not in ORDERS:
                continue
            if n == 1:
                keep = inside & not_space
            elif no_space is None:
                keep = inside
            elif b.unsegmented is True:
                keep = inside & no_space
            else:
                keep = inside & ~(b.unsegmented[:m] & ~no_space)
            ok = np.flatnonzero(keep)
            hn = h[ok]
            hn ^= _ORDER_SALT[n]
            shared = hn * _MIX
            shared >>= shift
            fam: np.ndarray | slice | None = None
            fcols = None
            if isinstance(b.fsalts, np.ndarray):
                f = b.fsalts[ok]
                fam = f != 0
                fcols = ((hn[fam] ^ f[fam]) * _MIX) >> shift
            elif b.fsalts is not None:
                fam, fcols = slice(None), hn ^ b.fsalts
                fcols *= _MIX
                fcols >>= shift
            hn ^= b.salts[ok] if isinstance(b.salts, np.ndarray) else b.salts
            hn *= _MIX
            hn >>= shift
            yield n, ok, shared, hn, fam, fcols


def featurize(texts: Sequence[str], languages: Sequence[str], bits: int,
              encoded: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row, column, scale): one (row, column) pair per feature occurrence (duplicates are to be
    summed; rows are positions in ``texts``, columns in ``[0, 2**bits)``), and per text the value
    every one of its features has, ``1 / (number of its n-grams)`` (1 for a contentless text).
    ``encoded`` is ``encode(texts)`` when the caller already has it."""
    if not texts:
        empty = np.zeros(0, dtype=np.intp)
        return empty, empty, np.zeros(0, dtype=np.float64)
    b = _Batch(*(encode(texts) if encoded is None else encoded), languages)
    rows, cols, counts = [], [], np.zeros(len(texts), dtype=np.int64)
    for _, ok, shared, salted, fam, fcols in _windows(b, np.uint32(32 - bits)):
        r = b.text_of[ok]
        rows += [r, r]
        cols += [shared, salted]
        if fam is not None and fcols is not None:
            rows.append(r[fam])
            cols.append(fcols)
        counts += np.bincount(r, minlength=len(texts))
    # the space unigram is not a feature (see the module docstring), so it is not counted either
    scale = 1.0 / np.maximum(counts, 1).astype(np.float64)
    return np.concatenate(rows), np.concatenate(cols), scale


def contentless(texts: Sequence[str], encoded: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Per text: True when it holds no letter, mark or digit (empty, whitespace, punctuation,
    symbols, emoji). Nothing in such a text can be toxic as the scorers read text, so they give it
    probability 0.0 instead of a logit made of the bias alone; Perspective API, which paper 1's
    harness sends an empty continuation to as " ", scores it near 0 as well."""
    if not texts:
        return np.zeros(0, dtype=bool)
    cps, sep = encode(texts) if encoded is None else encoded
    # letters, marks and digits between one separator and the next (no per-position text index)
    content = np.flatnonzero((cps != 32) & ~sep)
    edges = np.concatenate(([0], np.flatnonzero(sep), [len(sep)]))
    return np.diff(np.searchsorted(content, edges)) == 0


def linear_scores(texts: Sequence[str], languages: Sequence[str], weights: np.ndarray, bias: float,
                  encoded: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """The model's logits: bias + features . weights, per text (no sparse matrix built)."""
    bits = int(np.log2(len(weights)))
    row, col, scale = featurize(texts, languages, bits, encoded)
    return bias + np.bincount(row, weights=np.take(weights, col), minlength=len(texts)) * scale



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
    b = _Batch(*(encode(texts) if encoded is None else encoded), languages)
    text_of = b.text_of
    n_grams = np.zeros(len(texts), dtype=np.int64)
    # texts' position ranges [edges[i], edges[i+1]) (a separator never starts a window): a sorted
    # array of window starts is counted per text by binary search, not a bincount over it
    edges = np.concatenate(([0], np.flatnonzero(b.sep), [len(b.sep)]))
    # word id of a position: boundaries (spaces, separators) up to and including it; a space takes
    # the id of the word after it, so a window's word is the id at its start ("  " cannot occur)
    word_of = _count_up_to(b.space | b.sep)
    not_space = ~b.space
    interior, interior_n = not_space, 2  # by start: no space at start+1 .. start+n-2 (n: interior_n)
    n_words = int(word_of[-1]) + 1
    text_sums = np.zeros(len(texts), dtype=np.float64)
    sums = np.zeros(n_words, dtype=np.float64)
    counts = np.zeros(n_words, dtype=np.int64)
    for n, ok, shared, salted, fam, fcols in _windows(b, np.uint32(32 - int(np.log2(len(weights))))):
        # np.take: a fifth faster than indexing for these random gathers from the 4 MB table
        w = np.add(np.take(weights, shared), np.take(weights, salted), dtype=np.float64)
        if fam is not None and fcols is not None:
            w[fam] += np.take(weights, fcols)
        text_sums += np.bincount(text_of[ok], weights=w, minlength=len(texts))
        n_grams += np.diff(np.searchsorted(ok, edges))
        wid = word_of[ok]
        if n >= 3:  # within one word: no space strictly inside the window
            while interior_n < n:  # carried from length n-1 to n by one &
                interior_n += 1
                interior = not_space[1:] if interior_n == 3 else interior[:-1] & not_space[interior_n - 2:]
            within = interior[ok]
            wid, w = wid[within], w[within]
        sums += np.bincount(wid, weights=w, minlength=n_words)
        counts += np.bincount(wid, minlength=n_words)
    z = bias + text_sums / np.maximum(n_grams, 1)
    has = counts > 0
    word_logit = bias + sums[has] / counts[has]
    # the text a word belongs to: that of its first position (word ids grow with position, so a
    # text's words are one run and its max one reduceat)
    word_text = text_of[np.searchsorted(word_of, np.flatnonzero(has), side="left")]
    out = np.full(len(texts), bias)
    if len(word_text):
        first = np.flatnonzero(np.diff(word_text, prepend=-1))
        out[word_text[first]] = np.maximum.reduceat(word_logit, first)
    return z, out
