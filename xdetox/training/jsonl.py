"""Strict JSONL reading for training data: every error names the file and the line."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from xdetox.records import RecordError, iter_objects


class DataFileError(ValueError):
    """A training data file is unusable; the message names the file and (when it applies) the line."""


def _objects(lines: Iterable[str], name: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """xdetox.records.iter_objects, with this module's error type and wording."""
    try:
        yield from iter_objects(lines, name)
    except RecordError as e:
        raise DataFileError(f"{name}:{e.line}: {e.message.replace('not valid JSON', 'malformed JSON')}") from None


def read_jsonl(path: Path, required: tuple[str, ...], source: str | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line number, object) for each non-blank line; each must be an object with string
    values for ``required``. Raises DataFileError naming ``source`` (default: the path) and line."""
    name = source or str(path)
    if not path.exists():
        raise DataFileError(f"{name}: file not found")
    seen = 0
    with open(path, encoding="utf-8") as f:
        for lineno, obj in _objects(f, name):
            for field in required:
                if field not in obj:
                    raise DataFileError(
                        f"{name}:{lineno}: missing field {field!r} (required: {', '.join(required)})"
                    )
                if not isinstance(obj[field], str):
                    raise DataFileError(
                        f"{name}:{lineno}: field {field!r} must be a string, got {type(obj[field]).__name__}"
                    )
            seen += 1
            yield lineno, obj
    if seen == 0:
        raise DataFileError(f"{name}: file is empty (no JSON lines)")
