"""Resumable partial state of a generate shard: one JSONL file per finished chunk.

Chunk files live under ``steps/<step-key>/partial/`` in the run's store: each is written whole
(an atomic put), and none is listed in a commit record, so no reader ever takes one for output.
A restarted shard reuses every chunk whose rows are exactly the ones it expects (same prompts,
languages and sample indexes, in order) and regenerates the rest; the shard file is their
concatenation. Generation is deterministic per prompt, so a regenerated chunk equals the lost one.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from xdetox.manifest import step_prefix
from xdetox.records import GenerationRow, RecordError, parse_lines
from xdetox.store import Store

RowKey = tuple[str, str, int]  # (prompt id, language, sample index)


class ChunkStore:
    def __init__(self, store: Store, step_key: str) -> None:
        self.store = store
        self.prefix = f"{step_prefix(step_key)}/partial"

    def key(self, index: int) -> str:
        return f"{self.prefix}/chunk-{index:05d}.jsonl"

    def fetch(self, index: int, scratch: Path) -> Path | None:
        """A local path to chunk ``index`` if it is committed, else None (no copy on a file store)."""
        key = self.key(index)
        if not self.store.exists(key):
            return None
        local = self.store.local_path(key)
        if local is not None:
            return local
        target = scratch / f"fetched-{index:05d}.jsonl"
        self.store.get_file(key, target)
        return target

    def valid(self, index: int, expected: list[RowKey], scratch: Path) -> tuple[bool, str]:
        """(True, '') when chunk ``index`` holds exactly the ``expected`` rows; else (False, why)."""
        path = self.fetch(index, scratch)
        if path is None:
            return False, "missing"
        got: list[RowKey] = []
        try:
            with open(path, encoding="utf-8") as f:
                for row in parse_lines(f, f"{self.store.uri}/{self.key(index)}", GenerationRow):
                    got.append((row.prompt_id, row.language, row.sample_index))
        except RecordError as e:
            return False, str(e)
        finally:
            if self.store.local_path(self.key(index)) is None:
                path.unlink(missing_ok=True)
        if got != expected:
            return False, f"has {len(got)} rows, expected {len(expected)} (or other prompts)"
        return True, ""

    def put(self, index: int, path: Path) -> None:
        self.store.put_file(self.key(index), path)

    def concatenate(self, count: int, dest: Path, scratch: Path) -> int:
        """Stream chunks 0..count-1 into ``dest``; returns the number of lines written."""
        lines = 0
        with open(dest, "wb") as out:
            for index in range(count):
                path = self.fetch(index, scratch)
                if path is None:
                    raise RuntimeError(f"{self.store.uri}/{self.key(index)} vanished before the shard was written")
                with open(path, "rb") as src:
                    for block in iter(lambda: src.read(1 << 20), b""):  # noqa: B023 - used at once
                        out.write(block)
                        lines += block.count(b"\n")
                if self.store.local_path(self.key(index)) is None:
                    path.unlink(missing_ok=True)
        return lines

    def clear(self) -> int:
        return self.store.delete_prefix(self.prefix + "/")


def expected_keys(items: Iterable[tuple[str, str]], samples: int) -> list[RowKey]:
    return [(pid, lang, s) for pid, lang in items for s in range(samples)]
