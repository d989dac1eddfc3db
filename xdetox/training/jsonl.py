"""Strict JSONL reading for training data: every error names the file and the line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any


class DataFileError(ValueError):
    """A training data file is unusable; the message names the file and (when it applies) the line."""


def read_jsonl(path: Path, required: tuple[str, ...], source: str | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line number, object) for each non-blank line; each must be an object with string
    values for ``required``. Raises DataFileError naming ``source`` (default: the path) and line."""
    name = source or str(path)
    if not path.exists():
        raise DataFileError(f"{name}: file not found")
    seen = 0
    with open(path, encoding="utf-8") as f:
        for lineno, raw in enumerate(f, start=1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw)
            except json.JSONDecodeError as e:
                raise DataFileError(f"{name}:{lineno}: malformed JSON ({e.msg} at column {e.colno})") from None
            if not isinstance(obj, dict):
                raise DataFileError(f"{name}:{lineno}: expected a JSON object, got {type(obj).__name__}")
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
