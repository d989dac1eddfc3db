"""Which (language, prompt) items a generate shard owns: deterministic and balanced.

Items are sorted by (language, prompt id) and dealt round-robin, so shard sizes differ by at
most one, every item lands in exactly one shard, and the assignment depends only on the prompt
set and the shard count (not on file order or the machine).
"""

from __future__ import annotations

from collections.abc import Sequence

from xdetox.prompts import PromptItem


def shard_items(items: Sequence[PromptItem], index: int, count: int) -> list[PromptItem]:
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"shard {index} of {count} does not exist")
    ordered = sorted(items, key=lambda it: (it.language, it.prompt_id))
    return ordered[index::count]


def chunked(items: Sequence[PromptItem], size: int) -> list[list[PromptItem]]:
    if size < 1:
        raise ValueError("generation.chunk_prompts must be at least 1")
    return [list(items[i:i + size]) for i in range(0, len(items), size)]
