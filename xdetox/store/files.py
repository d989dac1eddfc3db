"""Local-file helpers shared by every layer above the store: the cache root, file digests, key prefixes.

They lived in xdetox.steps.context; libraries (models, prompts, generation, training, scoring)
need them too, and must not import the steps layer (import-linter's layers contract).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def cache_root() -> Path:
    return Path(os.environ.get("XDETOX_CACHE_DIR", Path.home() / ".cache" / "xdetox"))


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def common_prefix(keys: list[str]) -> str:
    """The longest folder prefix shared by ``keys`` (no trailing slash)."""
    if not keys:
        return ""
    parts = [k.split("/")[:-1] for k in keys]
    common: list[str] = []
    for segs in zip(*parts, strict=False):
        if all(s == segs[0] for s in segs):
            common.append(segs[0])
        else:
            break
    return "/".join(common)
