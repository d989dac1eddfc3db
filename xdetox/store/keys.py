"""Store keys: relative, slash-separated, and unable to escape their prefix."""

from __future__ import annotations

import posixpath


class UnsafeKeyError(ValueError):
    """A key that would escape the run's prefix (``..``, absolute paths, odd characters)."""


def check_key(key: str) -> str:
    """Return ``key`` unchanged if it is a safe relative key, else raise UnsafeKeyError."""
    if not isinstance(key, str) or not key:
        raise UnsafeKeyError("empty key")
    if "\x00" in key or "\\" in key:
        raise UnsafeKeyError(f"key {key!r} contains a NUL or backslash")
    if key.startswith("/") or (len(key) > 1 and key[1] == ":"):
        raise UnsafeKeyError(f"key {key!r} is absolute; keys are relative to the run's prefix")
    if "://" in key:
        raise UnsafeKeyError(f"key {key!r} is a URI; keys are relative to the run's prefix")
    parts = key.split("/")
    if any(p in {"..", "."} for p in parts):
        raise UnsafeKeyError(f"key {key!r} contains '.' or '..' segments")
    if any(p == "" for p in parts[:-1]):
        raise UnsafeKeyError(f"key {key!r} contains an empty segment")
    return key


def join(*parts: str) -> str:
    """Join key parts and check the result."""
    key = posixpath.join(*[p.strip("/") for p in parts if p])
    return check_key(key)
