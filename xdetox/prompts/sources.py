"""Turn a user-given data location (path, file:// or s3:// URI) into a local file or folder.

The store's :func:`xdetox.store.localize.localize` does it (S3 objects cached under
``$XDETOX_CACHE_DIR/data/<bucket>/<key>``, fetched again when their size changed); this names the
spec field in its errors. Data such as RTP-LX is read from where the user keeps it and never
copied into the project.
"""

from __future__ import annotations

from pathlib import Path

from xdetox.prompts.base import PromptSetError
from xdetox.store.localize import LocationError
from xdetox.store.localize import localize as _localize


def localize(location: str, what: str) -> Path:
    """A local path for ``location``; ``what`` names the spec field for error messages."""
    try:
        return _localize(location, "data")
    except LocationError as e:
        raise PromptSetError(f"{what}: {e}") from None
