"""Resumable partial state of one step: numbered chunks or a latest checkpoint folder, plus progress.

One helper for every step that works in pieces (generate: chunks of prompts; score: chunks of rows;
train: trainer checkpoints), so resuming is written and tested once. It lives under a prefix of
the run's store (``steps/<key>/partial/``, see :func:`xdetox.manifest.partial_prefix`; the store
layer knows no manifests, so callers pass it). Nothing there is listed in a commit record, so no
reader ever takes it for output.

Guarantees a killed step can rely on:

- every piece is written whole (an atomic put); a checkpoint folder counts only once ``LATEST``,
  written after its files, names it;
- ``progress.json`` is written after the piece it counts, so it never claims more than is stored
  (``xdetox status`` shows it: "96 of 120 prompts");
- :meth:`PartialState.clear` removes everything once the step's outputs are written.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from xdetox.store.base import NotFoundError, Store

PROGRESS = "progress.json"
LATEST = "LATEST"


@dataclass(frozen=True)
class Progress:
    """How far a step got: ``done`` of ``total`` ``unit`` (total None when unknown)."""

    done: int
    total: int | None
    unit: str
    pieces: int = 0

    def text(self) -> str:
        return f"{self.done} of {self.total} {self.unit}" if self.total is not None else f"{self.done} {self.unit}"

    def as_dict(self) -> dict[str, int | str | None]:
        return {"done": self.done, "total": self.total, "unit": self.unit, "pieces": self.pieces}


def read_progress(store: Store, prefix: str) -> Progress | None:
    """The progress a (running or killed) step last stored under ``prefix``, or None."""
    try:
        doc = json.loads(store.get_bytes(f"{prefix.rstrip('/')}/{PROGRESS}"))
        return Progress(done=int(doc["done"]), total=None if doc.get("total") is None else int(doc["total"]),
                        unit=str(doc["unit"]), pieces=int(doc.get("pieces") or 0))
    except (NotFoundError, ValueError, KeyError, TypeError):
        return None  # no progress yet, or a foreign file: status shows none rather than failing


class PartialState:
    """The partial state of one step under ``prefix``, counting ``total`` ``unit``."""

    def __init__(self, store: Store, prefix: str, unit: str, total: int | None = None) -> None:
        self.store = store
        self.prefix = prefix.rstrip("/")
        self.unit = unit
        self.total = total

    # -- progress
    def report(self, done: int, pieces: int) -> None:
        """Record that ``done`` units (in ``pieces`` chunks or checkpoints) are stored."""
        doc = Progress(done, self.total, self.unit, pieces).as_dict()
        self.store.put_text(f"{self.prefix}/{PROGRESS}", json.dumps(doc, sort_keys=True) + "\n")

    def progress(self) -> Progress | None:
        return read_progress(self.store, self.prefix)

    # -- numbered chunks (JSONL files concatenated, in order, into the step's output)
    def chunk_key(self, index: int) -> str:
        return f"{self.prefix}/chunk-{index:05d}.jsonl"

    def has_chunk(self, index: int) -> bool:
        return self.store.exists(self.chunk_key(index))

    def stored_chunks(self) -> int:
        """How many chunks, from 0 on without a gap, are stored."""
        n = 0
        while self.has_chunk(n):
            n += 1
        return n

    def put_chunk(self, index: int, path: Path, done: int) -> None:
        """Store chunk ``index`` from ``path``; ``done`` counts the units of chunks 0..index."""
        self.store.put_file(self.chunk_key(index), path)
        self.report(done, index + 1)

    def chunk_lines(self, index: int) -> Iterator[str]:
        return self.store.iter_lines(self.chunk_key(index))

    def fetch_chunk(self, index: int, scratch: Path) -> Path | None:
        """A local path to chunk ``index`` if it is stored, else None (no copy on a file store).
        A downloaded copy sits in ``scratch``: :meth:`release_chunk` removes it."""
        key = self.chunk_key(index)
        if not self.store.exists(key):
            return None
        local = self.store.local_path(key)
        if local is not None:
            return local
        target = scratch / f"fetched-{index:05d}.jsonl"
        self.store.get_file(key, target)
        return target

    def release_chunk(self, index: int, path: Path) -> None:
        if self.store.local_path(self.chunk_key(index)) is None:
            path.unlink(missing_ok=True)

    def concatenate(self, count: int, dest: Path, scratch: Path) -> int:
        """Stream chunks 0..count-1 into ``dest``; returns the number of lines written."""
        lines = 0
        with open(dest, "wb") as out:
            for index in range(count):
                path = self.fetch_chunk(index, scratch)
                if path is None:
                    raise RuntimeError(f"{self.store.uri}/{self.chunk_key(index)} vanished before the output "
                                       "was written (another run of this step at the same time?)")
                with open(path, "rb") as src:
                    for block in iter(lambda: src.read(1 << 20), b""):  # noqa: B023 - used at once
                        out.write(block)
                        lines += block.count(b"\n")
                self.release_chunk(index, path)
        return lines

    # -- the latest checkpoint folder (a trainer's)
    def put_checkpoint(self, folder: Path, done: int) -> None:
        """Store ``folder`` as the latest checkpoint (named by its folder name), then drop older ones."""
        name = folder.name
        keep = f"{self.prefix}/{name}/"
        old = [k for k in self.store.list(self.prefix + "/") if k.count("/") > self.prefix.count("/") + 1
               and not k.startswith(keep)]
        for f in sorted(folder.rglob("*")):
            if f.is_file():
                self.store.put_file(keep + f.relative_to(folder).as_posix(), f)
        self.store.put_text(f"{self.prefix}/{LATEST}", name)  # last: the checkpoint is whole
        self.report(done, 1)
        for k in old:
            self.store.delete(k)

    def latest_checkpoint(self, dest: Path) -> Path | None:
        """Download the latest whole checkpoint into ``dest/<name>`` and return that folder, or None."""
        try:
            name = self.store.get_text(f"{self.prefix}/{LATEST}").strip()
        except NotFoundError:
            return None
        base = f"{self.prefix}/{name}/"
        keys = self.store.list(base)
        if not name or not keys:
            return None
        for k in keys:
            self.store.get_file(k, dest / name / k[len(base):])
        return dest / name

    def clear(self) -> int:
        return self.store.delete_prefix(self.prefix + "/")
