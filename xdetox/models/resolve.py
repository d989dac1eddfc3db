"""Turn a model source from a spec into something ``from_pretrained`` can load.

Sources: ``builtin:tiny`` (built by the build_model step, never resolved here), a hub id
(``org/name``, loaded by transformers; offline runs need it in the local HF cache), a local path
(``/path`` or ``file:///path``), or an ``s3://bucket/prefix`` folder, downloaded once into the
cache with its files checked by size.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote


class ModelSourceError(ValueError):
    pass


def is_hub_id(source: str) -> bool:
    return "://" not in source and not source.startswith(("/", ".", "~", "builtin:")) and not Path(source).exists()


def resolve_model_source(source: str, revision: str | None = None) -> str:
    """A local folder path or a hub id for ``from_pretrained``."""
    if source.startswith("builtin:"):
        raise ModelSourceError(f"{source} is built by the build_model step; pass its output folder instead")
    if source.startswith("s3://"):
        return str(download_s3_folder(source))
    local = source.startswith("file://")
    if local:
        # everything after the scheme is the path: file:///abs/x is absolute, file://models/tiny is
        # relative like the store's file://./runs (urlparse would take "models" as a host)
        source = unquote(source[len("file://"):])
    p = Path(os.path.expanduser(source))
    if local or source.startswith(("/", ".", "~")) or p.exists():
        if not p.is_dir():
            raise ModelSourceError(f"model path {source!r} is not a folder")
        if not (p / "config.json").exists() and not (p / "adapter_config.json").exists():
            raise ModelSourceError(f"model folder {source!r} has no config.json or adapter_config.json")
        return str(p.resolve())
    return source  # a hub id


def download_s3_folder(uri: str) -> Path:
    """The model folder at ``uri``, in the cache (``$XDETOX_CACHE_DIR/models/<bucket>/<prefix>``)."""
    from xdetox.store.localize import LocationError, localize

    try:
        return localize(uri, "models")
    except LocationError as e:
        raise ModelSourceError(str(e)) from None
