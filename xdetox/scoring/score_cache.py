"""A store-wide, append-only cache of API scores: after Perspective's shutdown it is all that remains.

Layout: ``cache/scores/<scorer id>/batch-<UTC time>-<uuid>.jsonl`` at the root of a store (not of
a run, so every run of the store shares it). Each line is one entry::

    {"key": sha256, "value": 0.42, "api_version": "v1alpha1", "obtained": "2026-12-04T13:00:00Z"}

``key`` = sha256 over (text as sent, language, sorted attribute set, scorer id, API version): the
same text scored the same way by any run hits the same entry. Only scores are cached, never
errors (a missing score is retried next time, never frozen as missing).

Concurrency: a writer never rewrites an object; each batch of new entries is a new object with a
unique name, so two shards writing at once cannot lose each other's entries (no read-modify-write,
no conditional put needed). Readers take the union of all objects; duplicates are harmless (the
first one listed wins; both are scores of the same request).

``export``/``import`` move a cache between stores as one JSONL file; an import is written as one
object named by its content hash, so importing the same file twice adds nothing.

``compact`` merges a scorer's many small objects (every shard loads them all at its start: on S3 a
round trip each) into one object named by its content hash, checks it reads back whole, and only
then deletes the objects it merged; objects written meanwhile are not touched. A reader that listed
an object a compaction then deleted lists again (the merged object holds its entries).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from xdetox.store import NotFoundError, Store

PREFIX = "cache/scores"
#: concurrent object reads when loading a cache (boto3's client is thread-safe; its default pool
#: holds 10 connections)
LOAD_THREADS = 8


def cache_key(text: str, language: str, attributes: Sequence[str], scorer_id: str, version: str) -> str:
    # JSON of a list: unambiguous field boundaries (a text containing a separator cannot collide)
    payload = json.dumps([text, language, sorted(attributes), scorer_id, version], ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Entry:
    key: str
    value: float
    api_version: str
    obtained: str

    def to_json(self) -> str:
        return json.dumps({"key": self.key, "value": self.value, "api_version": self.api_version,
                           "obtained": self.obtained}, separators=(",", ":"))


def root_of(store: Store) -> Store:
    """The store's root: a step's store is a child rooted at runs/<id>/; the cache lives above runs."""
    while hasattr(store, "parent") and isinstance(getattr(store, "parent"), Store):  # noqa: B009
        store = store.parent  # type: ignore[attr-defined]
    return store


def now_utc() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class ScoreCache:
    """Entries of one scorer id in one store; ``load`` reads them all, ``append`` adds a batch object."""

    def __init__(self, store: Store, scorer_id: str) -> None:
        self.store = root_of(store)
        self.scorer_id = scorer_id
        self.prefix = f"{PREFIX}/{scorer_id}/"
        self._entries: dict[str, Entry] | None = None

    def objects(self) -> list[str]:
        return sorted(k for k in self.store.list(self.prefix) if k.endswith(".jsonl"))

    def _read(self, key: str) -> Iterator[Entry]:
        for n, line in enumerate(self.store.iter_lines(key), 1):
            if not line.strip():
                continue
            try:
                d = json.loads(line)
                yield Entry(str(d["key"]), float(d["value"]), str(d["api_version"]), str(d["obtained"]))
            except (ValueError, KeyError, TypeError) as e:
                raise ValueError(f"{self.store.uri}/{key}: line {n}: bad score cache entry ({e})") from None

    def _read_all(self, objects: list[str]) -> dict[str, Entry]:
        from concurrent.futures import ThreadPoolExecutor

        entries: dict[str, Entry] = {}
        # objects are small and many (one per scored batch): on S3 a read is a round trip, so
        # they are fetched LOAD_THREADS at a time; map keeps the listed order (first one wins)
        with ThreadPoolExecutor(max_workers=LOAD_THREADS) as pool:
            for batch in pool.map(lambda obj: list(self._read(obj)), objects):
                for e in batch:
                    entries.setdefault(e.key, e)
        return entries

    def load(self) -> dict[str, Entry]:
        if self._entries is None:
            for attempt in range(3):
                try:
                    self._entries = self._read_all(self.objects())
                    break
                except NotFoundError:  # a compaction merged and deleted an object after it was listed
                    if attempt == 2:
                        raise
        assert self._entries is not None
        return self._entries

    def compact(self) -> tuple[int, int]:
        """Merge every object of this scorer into one; returns (objects merged, entries). Idempotent:
        one object is left as it is."""
        objects = self.objects()
        entries = self._read_all(objects)
        if len(objects) <= 1:
            return 0, len(entries)
        body = "".join(e.to_json() + "\n" for _, e in sorted(entries.items()))
        merged = f"{self.prefix}compact-{hashlib.sha256(body.encode()).hexdigest()[:32]}.jsonl"
        self.store.put_text(merged, body)
        back = {e.key: e for e in self._read(merged)}
        if back != entries:  # never delete what the merged object does not hold
            raise ValueError(f"{self.store.uri}/{merged}: read back {len(back)} entries, wrote {len(entries)}; "
                             "nothing deleted")
        for obj in objects:
            if obj != merged:
                self.store.delete(obj)
        self._entries = None
        return len(objects), len(entries)

    def get(self, key: str) -> Entry | None:
        return self.load().get(key)

    def append(self, entries: Sequence[Entry], name: str | None = None) -> str | None:
        """Write ``entries`` as a new object (never overwriting one); returns its key."""
        if not entries:
            return None
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        obj = f"{self.prefix}{name or f'batch-{stamp}-{uuid.uuid4().hex}'}.jsonl"
        self.store.put_text(obj, "".join(e.to_json() + "\n" for e in entries))
        known = self.load()
        for e in entries:
            known.setdefault(e.key, e)
        return obj


# --------------------------------------------------------------------------- export / import
def export_lines(store: Store) -> Iterator[str]:
    """Every entry of every scorer in ``store`` as JSONL lines carrying their scorer id."""
    root = root_of(store)
    for sid in scorer_ids(root):
        for key, e in sorted(ScoreCache(root, sid).load().items()):
            d: dict[str, Any] = {"scorer_id": sid, "key": key, "value": e.value, "api_version": e.api_version,
                                 "obtained": e.obtained}
            yield json.dumps(d, separators=(",", ":")) + "\n"


def scorer_ids(store: Store) -> list[str]:
    """The scorer ids that have a cache in ``store``."""
    root = root_of(store)
    return sorted({k[len(PREFIX) + 1:].split("/", 1)[0] for k in root.list(PREFIX + "/") if k.endswith(".jsonl")})


def import_lines(store: Store, lines: Iterable[str], source: str) -> dict[str, int]:
    """Add exported entries to ``store``'s cache; entries it already has are skipped. Counts per scorer."""
    by_id: dict[str, list[Entry]] = {}
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
            sid = str(d["scorer_id"])
            if not sid or "/" in sid or sid.startswith("."):
                raise ValueError(f"bad scorer_id {sid!r}")
            by_id.setdefault(sid, []).append(
                Entry(str(d["key"]), float(d["value"]), str(d["api_version"]), str(d["obtained"])))
        except (ValueError, KeyError, TypeError) as e:
            raise ValueError(f"{source}: line {n}: not a score cache entry ({e})") from None
    added: dict[str, int] = {}
    for sid, entries in by_id.items():
        cache = ScoreCache(store, sid)
        known = cache.load()
        new = list({e.key: e for e in reversed(entries) if e.key not in known}.values())[::-1]  # first wins
        if new:
            digest = hashlib.sha256("".join(e.to_json() for e in new).encode()).hexdigest()[:32]
            cache.append(new, name=f"import-{digest}")
        added[sid] = len(new)
    return added
