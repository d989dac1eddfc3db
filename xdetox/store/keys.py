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


def check_segment(name: str, what: str = "step key") -> str:
    """A single key segment (a step key, a run id): a safe key with no '/' in it."""
    try:
        check_key(name)
    except UnsafeKeyError as e:
        raise UnsafeKeyError(f"{what}: {e}") from None
    if "/" in name:
        raise UnsafeKeyError(f"{what}: {name!r} contains '/'; it must be a single path segment")
    return name


def check_field(value: str, what: str) -> str:
    """``check_key`` whose error names the field the key came from (a spec or manifest field)."""
    try:
        return check_key(value)
    except UnsafeKeyError as e:
        raise UnsafeKeyError(f"{what}: {e}") from None


def check_s3_prefix(uri: str, prefix: str) -> str:
    """The prefix of an ``s3://bucket/prefix`` store URI, refused if it holds '.', '..' or '//':
    S3 keys are opaque strings, so AWS would store ``prefix/../x`` verbatim instead of climbing."""
    stripped = prefix.strip("/")
    if not stripped:
        return ""
    if "//" in prefix.lstrip("/").rstrip("/"):
        raise UnsafeKeyError(f"store URI {uri!r}: empty segment in the prefix")
    try:
        return check_key(stripped)
    except UnsafeKeyError as e:
        raise UnsafeKeyError(f"store URI {uri!r}: {e}") from None


def join(*parts: str) -> str:
    """Join key parts and check the result."""
    key = posixpath.join(*[p.strip("/") for p in parts if p])
    return check_key(key)
