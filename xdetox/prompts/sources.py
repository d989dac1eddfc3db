"""Turn a user-given data location (path, file:// or s3:// URI) into a local file or folder.

S3 objects are downloaded once into the xdetox cache (``$XDETOX_CACHE_DIR/data/<bucket>/<key>``)
and fetched again when their size changed. Data such as RTP-LX is read from where the user keeps
it and never copied into the project.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlparse

from xdetox.prompts.base import PromptSetError


def localize(location: str, what: str) -> Path:
    """A local path for ``location``; ``what`` names the spec field for error messages."""
    location = location.strip()
    if not location:
        raise PromptSetError(f"{what}: empty path")
    if location.startswith("s3://"):
        return _download_s3(location, what)
    if location.startswith("file://"):
        location = unquote(location[len("file://"):])  # file:///abs or file://relative, as open_store
    elif "://" in location:
        raise PromptSetError(f"{what}: unsupported URI {location!r}; use a path, file:// or s3://")
    path = Path(os.path.expanduser(location))
    if not path.exists():
        raise PromptSetError(f"{what}: {location!r} does not exist")
    return path


def _download_s3(uri: str, what: str) -> Path:
    from xdetox.store import open_store
    from xdetox.store.files import cache_root

    parsed = urlparse(uri)
    bucket, key = parsed.netloc, parsed.path.strip("/")
    if not bucket:
        raise PromptSetError(f"{what}: {uri!r} has no bucket")
    store = open_store(f"s3://{bucket}")
    dest_root = cache_root() / "data" / bucket
    if key and store.exists(key):  # a single object
        keys = [key]
    else:
        keys = store.list(key + "/" if key else "")
        if not keys:
            raise PromptSetError(f"{what}: no objects under {uri}")
    for k in keys:
        target = dest_root / k
        size = _remote_size(store, k)
        if target.exists() and (size is None or target.stat().st_size == size):
            continue
        store.get_file(k, target)
    return dest_root / key if key else dest_root


def _remote_size(store: object, key: str) -> int | None:
    # S3Store exposes head_object through its client; other stores need no size check.
    client = getattr(store, "client", None)
    bucket = getattr(store, "bucket", None)
    prefix = getattr(store, "prefix", "")
    if client is None or bucket is None:
        return None
    full = f"{prefix}/{key}" if prefix else key
    try:
        return int(client.head_object(Bucket=bucket, Key=full)["ContentLength"])
    except Exception:  # a failed HEAD just means: download again
        return None
