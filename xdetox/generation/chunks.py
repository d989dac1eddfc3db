"""Which stored chunks a restarted generate shard may reuse.

The chunks themselves are the step's resumable partial state (xdetox.store.partial, one JSONL file
per finished chunk of prompts). A restarted shard reuses every chunk whose rows are exactly the
ones it expects (same prompts, languages and sample indexes, in order) and regenerates the rest.
Generation is deterministic per prompt, so a regenerated chunk equals the lost one.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from xdetox.records import GenerationRow, RecordError, parse_lines
from xdetox.store.partial import PartialState

RowKey = tuple[str, str, int]  # (prompt id, language, sample index)


def chunk_is_valid(partial: PartialState, index: int, expected: list[RowKey], scratch: Path) -> tuple[bool, str]:
    """(True, '') when stored chunk ``index`` holds exactly the ``expected`` rows; else (False, why)."""
    path = partial.fetch_chunk(index, scratch)
    if path is None:
        return False, "missing"
    got: list[RowKey] = []
    try:
        with open(path, encoding="utf-8") as f:
            for row in parse_lines(f, f"{partial.store.uri}/{partial.chunk_key(index)}", GenerationRow):
                got.append((row.prompt_id, row.language, row.sample_index))
    except RecordError as e:
        return False, str(e)
    finally:
        partial.release_chunk(index, path)
    if got != expected:
        return False, f"has {len(got)} rows, expected {len(expected)} (or other prompts)"
    return True, ""


def expected_keys(items: Iterable[tuple[str, str]], samples: int) -> list[RowKey]:
    return [(pid, lang, s) for pid, lang in items for s in range(samples)]
