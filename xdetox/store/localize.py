"""A local file or folder for a location a user names: a path, a ``file://`` URI or an ``s3://`` URI.

One implementation for prompt files, training data, probes and model folders (there were three,
with three ideas of ``file://`` and of when a cached download is stale). Rules:

- ``file://`` is a path after the scheme, like the store's ``file://./runs``: ``file:///abs`` is
  absolute, ``file://models/tiny`` is relative (urlparse would take "models" for a host); ``~``
  is expanded in plain paths and ``file://`` alike.
- ``s3://bucket/key`` is one object, or, when no object has that key, every object below
  ``key/``. Objects are downloaded into ``$XDETOX_CACHE_DIR/<area>/<bucket>/<key>`` (atomically,
  by the store) and fetched again whenever the cached size differs from the object's or the
  object's size cannot be read, so an object replaced under the same URI is not served stale.
- Any other scheme is refused. Errors are :class:`LocationError`; callers add the spec field.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlparse

from xdetox.store.base import Store
from xdetox.store.files import cache_root
from xdetox.store.keys import check_key


class LocationError(ValueError):
    """A location that names nothing usable (no such file, no objects, an unknown scheme)."""


def localize(location: str, area: str = "data", must_exist: bool = True) -> Path:
    """A local path for ``location``; S3 downloads go to the cache's ``area`` ("data", "models")."""
    location = location.strip()
    if not location:
        raise LocationError("empty path")
    if location.startswith("s3://"):
        return _download(location, area)
    if location.startswith("file://"):
        location = unquote(location[len("file://"):])
    elif "://" in location:
        raise LocationError(f"unsupported URI {location!r}; use a path, file:// or s3://")
    path = Path(os.path.expanduser(location))
    if must_exist and not path.exists():
        raise LocationError(f"{location!r} does not exist")
    return path


def _download(uri: str, area: str) -> Path:
    from xdetox.store import open_store

    parsed = urlparse(uri)
    bucket, key = parsed.netloc, parsed.path.strip("/")
    if not bucket:
        raise LocationError(f"{uri!r} has no bucket")
    store = open_store(f"s3://{bucket}")
    keys = [key] if key and store.exists(key) else store.list(key + "/" if key else "")
    if not keys:
        raise LocationError(f"no objects under {uri}")
    root = cache_root() / area / bucket
    for k in keys:
        check_key(k)  # a listed key names a local path below: nothing may climb out of the cache
        _fetch(store, k, root.joinpath(*k.split("/")))
    return root.joinpath(*key.split("/")) if key else root


def _fetch(store: Store, key: str, target: Path) -> None:
    size = store.size(key)
    if size is not None and target.is_file() and target.stat().st_size == size:
        return
    store.get_file(key, target)
