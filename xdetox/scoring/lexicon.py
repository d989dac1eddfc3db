"""The embedded lexicon scorer: counts word-list hits, per language, with spans at original offsets.

Lists are the filtered LDNOOBW lists in ``xdetox/data/lexicons`` (built by
``scripts/vendor_lexicons.py``; see its docstring for the filters). Text and entries are both
normalised (NFKC + casefold, Turkish I) and matched per language in one of four ways:

- ``token`` (space-separated scripts): whole word tokens (``\\w+`` of the ``regex`` module, so
  marks in Devanagari or Arabic stay inside words); a multi-word entry matches the same token
  sequence, so ``mother-fucker`` and ``mother fucker`` both match ``mother fucker``;
- ``prefix`` (Korean): like ``token`` but the last token may continue, because particles attach
  to the word (``개새끼야`` holds ``개새끼``);
- ``segmented`` (Chinese): substring candidates from an Aho-Corasick automaton are kept only
  when both ends fall on jieba word boundaries, with the lexicon's entries added to jieba's
  dictionary so a real occurrence is cut as one word;
- ``substring`` (Japanese, Thai and other scripts without spaces): guarded substring matching
  (entries have at least two characters; the vendoring drops one-character entries).

Overlapping matches resolve leftmost-longest. An allowlisted word (the spec's
``LexiconScorer.allowlist``) is removed from the list and shields its occurrences: a match
inside an allowlisted word is not a hit (allowlist ``乳制品`` keeps ``乳`` from matching there).
A language without a list gives a missing score (``hits=None``), never 0 hits.

Version 2 of the lists (``lists-v2``, ``manifest-v2.json``: version 1 plus the hand curation of
``xdetox/data/lexicons/curation``) also brings built-in shield words (``shields-v2``), which
work like allowlisted words that are not entries. Version 3 (``lists-v3``: version 2 plus the
fuller hand-written layer ``curation/v3``, ``shields-v3``) is what the stacked scorer version 7 was
built on; version 4 (``lists-v4``: version 3 without the homographs whose benign sense is common, those
it added and those inherited from LDNOOBW, nor topic words and identity terms, ``curation/v4``)
is what stacked version 8 was built on; version 5 (``lists-v5``: version 4 plus one concept checklist of
profanity, sexual vulgarity, insults, contempt, threats and slurs in every RTP-LX language, ``curation/v5``)
is the default; ``version: 4``, ``3`` and ``2`` select those lists
byte-identically; version 1 (what runs before 2026-12-04 recorded, and what
the nightly pins) keeps the version string its rows always had.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Sequence
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

import regex

from xdetox.records import GenerationRow
from xdetox.scoring.base import Scorer, ScoreResult, missing
from xdetox.scoring.normalize import base_language, normalize, normalize_with_offsets

LEXICON_DIR = Path(__file__).resolve().parents[1] / "data" / "lexicons"
#: bump when matching changes, so score rows name a new version
MATCHER_VERSION = "1"

_WORD = regex.compile(r"\w+")
_SEGMENTED = frozenset({"zh"})
_SUBSTRING = frozenset({"ja", "th", "my", "km", "lo", "dz"})
_PREFIX = frozenset({"ko"})

Match = tuple[int, int, str]  # start, end (normalised offsets), entry


def matching_mode(lang: str) -> str:
    b = base_language(lang)
    if b in _SEGMENTED:
        return "segmented"
    if b in _SUBSTRING:
        return "substring"
    return "prefix" if b in _PREFIX else "token"


def _leftmost_longest(cands: Iterable[Match]) -> list[Match]:
    out: list[Match] = []
    last_end = -1
    for s, e, t in sorted(cands, key=lambda m: (m[0], -(m[1] - m[0]))):
        if s >= last_end:
            out.append((s, e, t))
            last_end = e
    return out


class _Matcher:
    """Finds entries of one language in normalised text."""

    def __init__(self, entries: Iterable[str], mode: str) -> None:
        self.mode = mode
        self.entries = sorted(set(entries))
        if mode in ("token", "prefix"):
            self.seqs: dict[str, str] = {}  # token sequence joined by " " -> entry
            self.lengths_by_first: dict[str, set[int]] = {}
            for e in self.entries:
                toks = _WORD.findall(e)
                if not toks:
                    continue
                self.seqs.setdefault(" ".join(toks), e)
                self.lengths_by_first.setdefault(toks[0], set()).add(len(toks))
            self.max_tokens = max((len(k.split(" ")) for k in self.seqs), default=1)
            self.last_token_lengths = sorted({len(k.split(" ")[-1]) for k in self.seqs}, reverse=True)
            # prefix mode: entries indexed by all their tokens but the last
            self.heads: dict[str, dict[str, str]] = {}
            for key, e in self.seqs.items():
                head, _, last = key.rpartition(" ")
                self.heads.setdefault(head, {})[last] = e
        else:
            import ahocorasick

            self.automaton: Any = ahocorasick.Automaton()
            for e in self.entries:
                self.automaton.add_word(e, e)
            if self.entries:
                self.automaton.make_automaton()

    def find(self, text: str, boundaries: set[int] | None = None) -> list[Match]:
        if not self.entries:
            return []
        if self.mode == "token":
            return self._find_tokens(text)
        if self.mode == "prefix":
            return self._find_prefix(text)
        cands = []
        for end_idx, e in self.automaton.iter(text):
            start, end = end_idx - len(e) + 1, end_idx + 1
            if boundaries is not None and (start not in boundaries or end not in boundaries):
                continue
            cands.append((start, end, e))
        return _leftmost_longest(cands)

    def _find_tokens(self, text: str) -> list[Match]:
        toks = [(m.start(), m.end(), m.group()) for m in _WORD.finditer(text)]
        out: list[Match] = []
        i = 0
        while i < len(toks):
            lengths = self.lengths_by_first.get(toks[i][2])
            hit = None
            if lengths:
                for k in sorted(lengths, reverse=True):
                    if i + k <= len(toks):
                        e = self.seqs.get(" ".join(t[2] for t in toks[i:i + k]))
                        if e is not None:
                            hit = (toks[i][0], toks[i + k - 1][1], e, k)
                            break
            if hit:
                out.append(hit[:3])
                i += hit[3]
            else:
                i += 1
        return out

    def _find_prefix(self, text: str) -> list[Match]:
        toks = [(m.start(), m.end(), m.group()) for m in _WORD.finditer(text)]
        cands: list[Match] = []
        for i in range(len(toks)):
            # heads of length 0 .. (max entry tokens - 1) ending before token j = i + len(head)
            for j in range(i, min(len(toks), i + self.max_tokens)):
                lasts = self.heads.get(" ".join(t[2] for t in toks[i:j]))
                if lasts is None:
                    continue
                word = toks[j][2]
                for n in self.last_token_lengths:
                    e = lasts.get(word[:n]) if n <= len(word) else None
                    if e is not None:
                        cands.append((toks[i][0], toks[j][0] + n, e))
                        break
        return _leftmost_longest(cands)


@lru_cache(maxsize=4)
def _jieba_with(words: frozenset[str]) -> Any:
    """A jieba tokenizer that cuts each of ``words`` as one word (built once per word set: ~2 s)."""
    import jieba

    jieba.setLogLevel(logging.WARNING)
    tok = jieba.Tokenizer()
    for w in sorted(words):
        tok.add_word(w)
    return tok


class LexiconToxicityScorer(Scorer):
    score_kind = "hits"

    def __init__(self, allowlist: dict[str, list[str]] | None = None, lexicon_dir: Path = LEXICON_DIR,
                 version: int = 5) -> None:
        self.lexicon_dir = Path(lexicon_dir)
        manifest_name, self.lists_dir = (("manifest.json", self.lexicon_dir / "lists") if version == 1 else
                                         (f"manifest-v{version}.json", self.lexicon_dir / f"lists-v{version}"))
        self.manifest: dict[str, Any] = json.loads((self.lexicon_dir / manifest_name).read_text("utf-8"))
        self.languages: dict[str, dict[str, Any]] = self.manifest["languages"]
        self.allowlist = {k: sorted(set(v)) for k, v in (allowlist or {}).items()}
        self.shields: dict[str, list[str]] = {}
        if version != 1:
            for path in sorted((self.lexicon_dir / f"shields-v{version}").glob("*.txt")):
                self.shields[path.stem] = path.read_text("utf-8").splitlines()
        self.id = "lexicon-ldnoobw"
        h = hashlib.sha256()
        h.update((self.lexicon_dir / manifest_name).read_bytes())
        h.update(json.dumps(self.allowlist, sort_keys=True, ensure_ascii=False).encode())
        h.update(MATCHER_VERSION.encode())
        # version 1 keeps the string its recorded rows carry; later versions name themselves
        self.version = f"{MATCHER_VERSION}+{h.hexdigest()[:12]}" if version == 1 else \
            f"{MATCHER_VERSION}+v{version}.{h.hexdigest()[:12]}"
        self._matchers: dict[str, tuple[_Matcher, _Matcher | None]] = {}

    @classmethod
    def from_spec(cls, spec: Any) -> LexiconToxicityScorer:
        return cls(allowlist=spec.allowlist, version=spec.version)

    def list_language(self, language: str) -> str | None:
        """The list that scores ``language``: the exact code (``hi-Latn``), else its base (``pt-BR``)."""
        if language in self.languages:
            return language
        b = base_language(language)
        return b if b in self.languages else None

    def supports(self, language: str) -> bool:
        return self.list_language(language) is not None

    def _matcher(self, lang: str) -> tuple[_Matcher, _Matcher | None]:
        if lang not in self._matchers:
            mode = matching_mode(lang)
            entries = (self.lists_dir / f"{lang}.txt").read_text("utf-8").splitlines()
            allowed = {" ".join(normalize(w, lang).split()) for w in self.allowlist.get(lang, [])}
            allowed |= {" ".join(normalize(w, lang).split()) for w in self.allowlist.get(base_language(lang), [])}
            allowed.discard("")
            kept = [e for e in entries if e and e not in allowed]
            shielding = allowed | set(self.shields.get(lang, []))
            shield = _Matcher(shielding, mode) if shielding else None
            self._matchers[lang] = (_Matcher(kept, mode), shield)
        return self._matchers[lang]

    @cached_property
    def _jieba(self) -> Any:
        words = set((self.lists_dir / "zh.txt").read_text("utf-8").splitlines())
        words |= {normalize(w, "zh") for w in self.allowlist.get("zh", [])}
        return _jieba_with(frozenset(w for w in words if w))

    def prepare(self, language: str) -> None:
        """Load what scoring ``language`` needs (its list; jieba for Chinese) now rather than lazily."""
        lang = self.list_language(language)
        if lang is not None:
            matcher, _ = self._matcher(lang)
            if matcher.mode == "segmented":
                _ = self._jieba

    def match(self, text: str, language: str) -> list[list[Any]] | None:
        """Matches as ``[start, end, entry]`` at offsets of ``text``; None when there is no list."""
        lang = self.list_language(language)
        if lang is None:
            return None
        norm, starts, ends = normalize_with_offsets(text, lang)
        matcher, shield = self._matcher(lang)
        boundaries = None
        if matcher.mode == "segmented":
            if not matcher.find(norm):
                return []  # segmenting is the slow part: only texts with a candidate need it
            boundaries = {0, len(norm)}
            for _, s, e in self._jieba.tokenize(norm, HMM=False):
                boundaries.add(s)
                boundaries.add(e)
        found = matcher.find(norm, boundaries)
        if shield is not None and found:
            guards = shield.find(norm, boundaries)
            found = [m for m in found if not any(g[0] <= m[0] and m[1] <= g[1] for g in guards)]
        return [[starts[s], ends[e - 1], term] for s, e, term in found]

    def score_batch(self, rows: Sequence[GenerationRow]) -> list[ScoreResult]:
        out = []
        for row in rows:
            spans = self.match(row.text, row.language)
            if spans is None:
                out.append(missing(f"no lexicon for {row.language}"))
            else:
                out.append(ScoreResult(hits=len(spans), spans=spans))
        return out
