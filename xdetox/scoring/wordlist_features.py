"""Word-list hit counts for a whole batch at once, on the n-gram features' encoded code points.

The stacked scorer (``xdetox/scoring/stacked.py``) needs, per text, how many entries of its
language's word list it holds, how many words start like an entry (inflected forms: ru
``дебила`` from ``дебил``, pl ``kurwo`` from ``kurwa``), and how many English-list entries it holds
(English profanity turns up in every language's web text). The lexicon scorer answers the first
question with spans at original offsets, in pure Python at 5,000-11,000 texts/s: too slow for a
scorer that must do 20,000 texts/s per core with an n-gram model besides. Here a hit is found by
hashing, as numbers, the code points that follow each word start (each position, in the
substring-matched languages) and looking the hashes up in sorted tables of the entries' hashes.
A start is dropped as soon as its hash is no entry's prefix, so a batch costs a few numpy passes.

Text and entries go through the same encoding (``ngram_features.encode``: NFKC, casefold,
punctuation blanked, runs of spaces collapsed, one space each side), so an entry matches exactly
where its normalised characters occur:

- ``exact`` (space-separated scripts): the entry as whole words (key ``" entry "``);
- ``exact`` (``substring`` languages, ja zh th ...: no spaces between words): the entry anywhere
  (entries of one character are skipped there, as in the lexicon's vendoring);
- ``stem`` (space-separated scripts): a word starting with the entry's stem (the entry without
  its last character when it has 5 or more, the whole entry when it has 4; none shorter; Korean,
  where particles attach to the word, the whole entry from 2 characters). Counts exact hits too;
- ``english``: the English list's exact hits in a text of another language.

Hashes are 64-bit (FNV-style multiply-add, wrapping), salted per language: with ~10^6 lookups
per batch against ~10^4 keys a 64-bit collision is about 10^-9 per batch. Unlike the lexicon
scorer, overlapping hits all count (``son of a bitch`` is also ``bitch``) and shield words are
not applied: these are features for a fitted combiner, whose weights absorb both.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from xdetox.scoring.ngram_features import encode
from xdetox.scoring.normalize import base_language

SUBSTRING = frozenset({"ja", "zh", "th", "my", "km", "lo", "dz"})
PREFIX_ANY_LENGTH = frozenset({"ko"})
_P = np.uint64(1099511628211)  # the FNV-1a 64-bit prime
_SPACE = 32


@lru_cache(maxsize=256)
def salt64(language: str) -> int:
    return int(hashlib.sha256(f"wordlist:{base_language(language)}".encode()).hexdigest()[:16], 16)


def _hash(salt: int, cps: Sequence[int]) -> tuple[int, list[int]]:
    """The key's hash and the hashes of all its proper prefixes (Python ints, wrapping like numpy)."""
    h, prefixes = salt, []
    for c in cps:
        prefixes.append(h)
        h = (h * int(_P) + c) % 2 ** 64
    return h, prefixes[1:]


def entry_codepoints(entry: str) -> list[int]:
    """The entry as the text encoding sees it, without the padding spaces."""
    cps, _ = encode([entry])
    return [int(c) for c in cps[1:-1]]


def stem_length(n: int, language: str) -> int | None:
    if base_language(language) in PREFIX_ANY_LENGTH:
        return n if n >= 2 else None
    if n >= 5:
        return n - 1
    return n if n == 4 else None


_FILTER_BITS = 20
_FILTER_SHIFT = np.uint64(64 - _FILTER_BITS)


def _filter(hashes: set[int]) -> np.ndarray:
    """A one-hash Bloom filter over the top bits: a cheap gather that rejects most non-keys."""
    bits = np.zeros(2 ** _FILTER_BITS, dtype=bool)
    if hashes:
        bits[np.array(sorted(hashes), dtype=np.uint64) >> _FILTER_SHIFT] = True
    return bits


@dataclass(frozen=True)
class _Table:
    keys: np.ndarray  # sorted uint64: hashes of whole keys
    key_filter: np.ndarray  # bool per top-bits value of a key hash
    prefix_filter: np.ndarray  # the same for every proper prefix of a key (pruning: false positives only cost time)
    max_len: int

    @classmethod
    def build(cls, keyed: Iterable[tuple[int, list[int]]]) -> _Table:
        keys: set[int] = set()
        prefixes: set[int] = set()
        max_len = 0
        for salt, cps in keyed:
            h, pre = _hash(salt, cps)
            keys.add(h)
            prefixes.update(pre)
            max_len = max(max_len, len(cps))
        return cls(np.array(sorted(keys), dtype=np.uint64), _filter(keys), _filter(prefixes), max_len)

    def is_key(self, h: np.ndarray) -> np.ndarray:
        out = self.key_filter[h >> _FILTER_SHIFT]
        cand = np.flatnonzero(out)
        if len(cand):
            i = np.minimum(np.searchsorted(self.keys, h[cand]), len(self.keys) - 1)
            out[cand] = self.keys[i] == h[cand]
        return out


def _count(cps: np.ndarray, starts: np.ndarray, salts: np.ndarray, tables: Sequence[_Table], prefix_filter: np.ndarray,
           text_of: np.ndarray, n_texts: int) -> np.ndarray:
    """(len(tables), n_texts): per table and text, the number of (start, length) windows whose hash
    is one of the table's keys. One walk serves all tables: a start lives while it begins like a
    key of any of them (``prefix_filter``, the union of the tables' prefix filters). ``cps`` ends with a 0, so a window stops at the end of
    its text without a bounds check."""
    out = np.zeros((len(tables), n_texts), dtype=np.int64)
    # a start on a space consumes it at once: every space-led key begins with it, so that step
    # keeps every such start and is the widest of the walk
    led = cps[starts] == _SPACE
    h = np.where(led, salts * _P + np.uint64(_SPACE), salts)
    pos = starts + led
    with np.errstate(over="ignore"):
        for _ in range(max(t.max_len for t in tables)):
            c = cps[pos]
            valid = c != 0  # a window never crosses into the next text
            h = h * _P + c
            for k, table in enumerate(tables):
                hit = table.is_key(h) & valid
                if hit.any():
                    out[k] += np.bincount(text_of[pos[hit]], minlength=n_texts)
            alive = np.flatnonzero(valid & prefix_filter[h >> _FILTER_SHIFT])
            if len(alive) == 0:
                break
            pos, h = pos[alive] + 1, h[alive]
    return out


class WordListFeatures:
    """Hit counts of the word lists in ``lists`` (language -> entries) for batches of texts."""

    def __init__(self, lists: Mapping[str, Iterable[str]], english: str = "en") -> None:
        exact, stems, eng = [], [], []
        self.languages = frozenset(base_language(lang) for lang in lists)
        for lang, entries in sorted(lists.items()):
            lang = base_language(lang)
            salt = salt64(lang)
            sub = lang in SUBSTRING
            for entry in sorted(set(entries)):
                cps = entry_codepoints(entry)
                if not cps or (sub and len(cps) < 2):
                    continue
                if sub:
                    exact.append((salt, cps))
                    continue
                exact.append((salt, [_SPACE, *cps, _SPACE]))
                k = stem_length(len(cps), lang)
                if k is not None:
                    stems.append((salt, [_SPACE, *cps[:k]]))
                if lang == english:
                    eng.append((salt64(english), [_SPACE, *cps, _SPACE]))
        self.english = english
        self.exact, self.stem, self.eng = _Table.build(exact), _Table.build(stems), _Table.build(eng)
        self.own_prefixes = self.exact.prefix_filter | self.stem.prefix_filter

    @classmethod
    def from_folder(cls, folder: Path, languages: Iterable[str]) -> WordListFeatures:
        lists = {}
        for lang in languages:
            path = folder / f"{lang}.txt"
            if path.is_file():
                lists[lang] = [w for w in path.read_text("utf-8").splitlines() if w]
        return cls(lists)

    def counts(self, texts: Sequence[str], languages: Sequence[str],
               encoded: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
        """(len(texts), 3) int array: exact hits, stem hits, English-list hits (0 for English texts)."""
        n = len(texts)
        if n == 0:
            return np.zeros((0, 3), dtype=np.int64)
        cps, sep = encode(texts) if encoded is None else encoded
        text_of = np.cumsum(sep, dtype=np.int32) - sep
        # per distinct language, not per row: a batch usually holds one or a few
        distinct, row_lang = np.unique(np.asarray(languages, dtype=object).astype(str), return_inverse=True)
        base = [base_language(str(lang)) for lang in distinct]
        row_salt = np.array([salt64(b) for b in base], dtype=np.uint64)[row_lang]
        substring_row = np.array([b in SUBSTRING for b in base])[row_lang]
        english_row = np.array([b == self.english for b in base])[row_lang]
        space = cps == _SPACE
        # word starts are spaces (the key carries its leading space); substring rows start anywhere
        token_starts = np.flatnonzero(space & ~substring_row[text_of])
        any_starts = np.flatnonzero(~sep & ~space & substring_row[text_of])
        starts = np.sort(np.concatenate([token_starts, any_starts]))
        padded = np.append(cps, np.uint32(0)).astype(np.uint64)  # the final 0 ends the last text's windows
        out = np.zeros((n, 3), dtype=np.int64)
        # stem keys exist only for space-separated languages, so substring rows never hit one
        out[:, :2] = _count(padded, starts, row_salt[text_of[starts]], (self.exact, self.stem), self.own_prefixes,
                              text_of, n).T
        eng_starts = np.flatnonzero(space & ~english_row[text_of])
        salts = np.full(len(eng_starts), salt64(self.english), dtype=np.uint64)
        out[:, 2] = _count(padded, eng_starts, salts, (self.eng,), self.eng.prefix_filter, text_of, n)[0]
        return out
