"""Word-list hit counts for a whole batch at once, on the n-gram features' encoded code points.

The stacked scorer (``xdetox/scoring/stacked.py``) needs, per text, how many entries of its
language's word list it holds, how many words start like an entry (inflected forms: ru
``дебила`` from ``дебил``, pl ``kurwo`` from ``kurwa``), and how many English-list entries it holds
(English profanity turns up in every language's web text). The lexicon scorer answers the first
question with spans at original offsets, at about 35,000 texts/s per core: more than half the
budget of a scorer that must do 20,000 texts/s per core with an n-gram model besides (this
counting: 300,000+). Here a hit is found by hashing, as numbers, the code points that follow
each word start (each position, in the substring-matched languages) and looking the hashes up in
sorted tables of the entries' hashes. A start is dropped as soon as its hash is no entry's
prefix, so a batch costs a few numpy passes.

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
#: bits of a walk's filter byte (``WordListFeatures.own_filter`` / ``english_filter``): one per key
#: table, and the top bit for "a proper prefix of some key", so that test is a plain ``>=``
_PREFIX = 128


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


def _walk_filter(tables: Sequence[_Table]) -> np.ndarray:
    """One byte per top-bits value: bit k set where table k's key filter is, ``_PREFIX`` where any
    table's prefix filter is. A walk step then costs one gather for all its tests."""
    out = np.zeros(2 ** _FILTER_BITS, dtype=np.uint8)
    for k, table in enumerate(tables):
        out |= table.key_filter.astype(np.uint8) << k
        out[table.prefix_filter] |= _PREFIX
    return out


def _count(cps: np.ndarray, pos: np.ndarray, h: np.ndarray, tables: Sequence[_Table], walk_filter: np.ndarray,
           bounds: np.ndarray, n_texts: int) -> np.ndarray:
    """(len(tables), n_texts): per table and text, the number of windows whose hash is one of the
    table's keys, a window being a start (its first code point at ``pos``, its hash so far ``h``)
    and every length up to the longest key. One walk serves all tables: a start lives while it
    begins like a key of any of them (``walk_filter``'s prefix bit). ``cps`` ends with a 0 after
    every text, so a window stops at the end of its text without a bounds check; ``bounds`` are
    those 0s' positions (the text of a hit is found from them only for the few hits).

    Hand-written numpy rather than a regex or Aho-Corasick library: the lists' entries would have
    to be matched per text in Python (the lexicon scorer's ~35,000 texts/s); this is a few
    array passes per step over the live starts of the whole batch, and most starts die in 3-4
    steps. Per step one gather of the filter byte answers both "a key of table k?" (exact 64-bit
    check on the few candidates) and "still a prefix?"."""
    out = np.zeros((len(tables), n_texts), dtype=np.int64)
    key_bits = np.uint8(2 ** len(tables) - 1)
    with np.errstate(over="ignore"):
        for _ in range(max(t.max_len for t in tables)):
            c = cps[pos]
            h = h * _P + c
            f = walk_filter[h >> _FILTER_SHIFT]
            cand = np.flatnonzero(f & key_bits)
            if len(cand):
                cand = cand[c[cand] != 0]  # a window never crosses into the next text
                for k, table in enumerate(tables):
                    sub = cand[(f[cand] & np.uint8(1 << k)) != 0]
                    if len(sub):
                        hs = h[sub]
                        i = np.minimum(np.searchsorted(table.keys, hs), len(table.keys) - 1)
                        hit = pos[sub[table.keys[i] == hs]]
                        if len(hit):
                            out[k] += np.bincount(np.searchsorted(bounds, hit), minlength=n_texts)
            alive = np.flatnonzero((f >= _PREFIX) & (c != 0))
            if len(alive) == 0:
                break
            pos, h = pos[alive] + 1, h[alive]
    return out


def _start(cps: np.ndarray, starts: np.ndarray, salts: np.ndarray | np.uint64) -> tuple[np.ndarray, np.ndarray]:
    """(position, hash) of each start before the walk: a start on a space consumes it at once (every
    space-led key begins with it, so that step would keep every such start and be the widest)."""
    led = cps[starts] == _SPACE
    with np.errstate(over="ignore"):
        return starts + led, np.where(led, salts * _P + np.uint64(_SPACE), salts).astype(np.uint64)


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
        self.own_filter = _walk_filter((self.exact, self.stem))
        self.english_filter = _walk_filter((self.eng,))
        self._language_info: dict[str, tuple[np.uint64, bool, bool]] = {}

    @classmethod
    def from_folder(cls, folder: Path, languages: Iterable[str]) -> WordListFeatures:
        lists = {}
        for lang in languages:
            path = folder / f"{lang}.txt"
            if path.is_file():
                lists[lang] = [w for w in path.read_text("utf-8").splitlines() if w]
        return cls(lists)

    def _info(self, language: str) -> tuple[np.uint64, bool, bool]:
        """(salt, substring-matched, English) of a row language, cached: rows repeat few codes."""
        info = self._language_info.get(language)
        if info is None:
            b = base_language(str(language))
            info = self._language_info[language] = (np.uint64(salt64(b)), b in SUBSTRING, b == self.english)
        return info

    def counts(self, texts: Sequence[str], languages: Sequence[str],
               encoded: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
        """(len(texts), 3) int array: exact hits, stem hits, English-list hits (0 for English texts)."""
        n = len(texts)
        if n == 0:
            return np.zeros((0, 3), dtype=np.int64)
        cps, sep = encode(texts) if encoded is None else encoded
        bounds = np.flatnonzero(sep)
        padded = np.append(cps, np.uint32(0))  # the final 0 ends the last text's windows
        space = cps == _SPACE
        distinct = set(languages)
        out = np.zeros((n, 3), dtype=np.int64)
        if len(distinct) == 1:  # the usual batch: one language, per-row flags are scalars
            salt, substring, english = self._info(next(iter(distinct)))
            # word starts are spaces (the key carries its leading space); substring rows start anywhere
            starts = np.flatnonzero(~sep & ~space) if substring else np.flatnonzero(space)
            own_pos, own_h = _start(padded, starts, salt)
            eng_starts = None if english else (np.flatnonzero(space) if substring else starts)
        else:
            info = [self._info(lang) for lang in languages]
            # per position, its row's flags: each row's run of positions is its text and the 0 after it
            run = np.diff(bounds, prepend=-1, append=len(cps) - 1)
            salt_at = np.repeat(np.array([i[0] for i in info], dtype=np.uint64), run)
            substring_at = np.repeat(np.array([i[1] for i in info]), run)
            english_at = np.repeat(np.array([i[2] for i in info]), run)
            starts = np.flatnonzero(np.where(substring_at, ~sep & ~space, space))
            own_pos, own_h = _start(padded, starts, salt_at[starts])
            eng_starts = np.flatnonzero(space & ~english_at)
        # stem keys exist only for space-separated languages, so substring rows never hit one
        out[:, :2] = _count(padded, own_pos, own_h, (self.exact, self.stem), self.own_filter, bounds, n).T
        if eng_starts is not None and len(eng_starts):
            eng_pos, eng_h = _start(padded, eng_starts, self._info(self.english)[0])
            out[:, 2] = _count(padded, eng_pos, eng_h, (self.eng,), self.english_filter, bounds, n)[0]
        return out
