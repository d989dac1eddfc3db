"""What every prompt-set loader returns, and the checks they share."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xdetox.records import iter_objects


class PromptSetError(ValueError):
    """A prompt set that cannot be loaded: names the source, file, line or field at fault."""


@dataclass(frozen=True)
class PromptItem:
    """One prompt in one language. ``prompt_id`` is the same for the same prompt in every
    language when the set is parallel (xling-prompts-200, RTP-LX's shared Index)."""

    prompt_id: str
    language: str
    prompt: str
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


def read_objects(path: Path, source: str | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
    """(1-based line, object) per non-blank line, streamed; a bad line raises RecordError naming
    ``source`` (default: the path) and the line."""
    # Bytes, decoded line by line, so that a binary or non-UTF-8 file is named with line and byte
    # offset instead of ending in a bare UnicodeDecodeError.
    empty = True
    with open(path, "rb") as f:
        for item in iter_objects(f, source or str(path)):
            empty = False
            yield item
    if empty:
        raise PromptSetError(f"{source or path}: the file is empty; expected one JSON object per line")


def text_field(obj: dict[str, Any], name: str, path: Path | str, line: int) -> str:
    value = obj.get(name)
    if not isinstance(value, str) or not value.strip():
        raise PromptSetError(f"{path}:{line}: field {name!r} must be a non-empty string, got {value!r}")
    return value


def check_languages(
    wanted: Iterable[str], available: Iterable[str], source: str, where: str
) -> None:
    """Raise naming the source and what it has when a wanted language is missing."""
    have = sorted(set(available))
    missing = [lang for lang in wanted if lang not in have]
    if missing:
        raise PromptSetError(
            f"prompt set {source!r} has no {', '.join(repr(m) for m in missing)} ({where}); "
            f"languages it has: {' '.join(have) or 'none'}"
        )
