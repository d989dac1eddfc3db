"""Stores addressed by URI: ``file://`` and ``s3://``."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

from xdetox.store.base import NotFoundError, Store, StoreError
from xdetox.store.keys import UnsafeKeyError, check_field, check_key, check_s3_prefix, check_segment, join


def open_store(uri: str) -> Store:
    """Open the store at ``uri``: ``file://path`` (relative paths allowed) or ``s3://bucket/prefix``."""
    if uri.startswith("s3://"):
        from xdetox.store.s3 import S3Store

        parsed = urlparse(uri)
        if not parsed.netloc:
            raise ValueError(f"store URI {uri!r} has no bucket")
        if parsed.query or parsed.fragment:
            raise ValueError(f"store URI {uri!r}: '?' and '#' have no meaning in a store URI")
        return S3Store(parsed.netloc, check_s3_prefix(uri, parsed.path))
    if uri.startswith("file://"):
        rest = uri[len("file://"):]
        path = Path(unquote(rest)) if rest.startswith("/") else Path(unquote(rest)).resolve()
        from xdetox.store.local import LocalStore

        return LocalStore(path)
    if "://" in uri:
        raise ValueError(f"unsupported store URI {uri!r}: use file:// or s3://")
    from xdetox.store.local import LocalStore

    return LocalStore(Path(uri))


def split_uri(uri: str) -> tuple[str, str]:
    """Split a full object URI into (store root URI, key) at its last path component."""
    head, _, tail = uri.rstrip("/").rpartition("/")
    return head, tail


__all__ = [
    "NotFoundError", "Store", "StoreError", "UnsafeKeyError", "check_field", "check_key", "check_s3_prefix",
    "check_segment", "join", "open_store", "split_uri",
]
