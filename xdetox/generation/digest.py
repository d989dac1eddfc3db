"""The model digest written on every generation row: sha256 over the model's weight files.

It is computed the same way from an upstream commit record (whose outputs already carry each
file's sha256: cheap) and from a folder (hashing the files), so the same weights give the same
digest wherever they came from: ``sha256:`` + sha256 over sorted "<relative path>\\t<sha256>\\n"
lines of the weight files (safetensors, bin, pt; base/ included for base + adapter).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

from xdetox.manifest import CommitRecord
from xdetox.store.files import common_prefix, file_sha256

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")


def is_weight_file(name: str) -> bool:
    return name.endswith(WEIGHT_SUFFIXES) and not name.endswith("training_args.bin")


def combine(entries: Iterable[tuple[str, str]]) -> str:
    h = hashlib.sha256()
    for rel, sha in sorted(entries):
        h.update(f"{rel}\t{sha}\n".encode())
    return "sha256:" + h.hexdigest()


def digest_from_record(record: CommitRecord) -> str:
    keys = [o.key for o in record.outputs]
    prefix = common_prefix(keys)
    weights = [(o.key[len(prefix):].lstrip("/"), o.sha256) for o in record.outputs if is_weight_file(o.key)]
    if not weights:  # no recognisable weight files: fall back to every output
        weights = [(o.key[len(prefix):].lstrip("/"), o.sha256) for o in record.outputs]
    return combine(weights)


def digest_from_folder(folder: Path) -> str:
    files = sorted(p for p in folder.rglob("*") if p.is_file() and is_weight_file(p.name))
    if not files:
        files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
    return combine((p.relative_to(folder).as_posix(), file_sha256(p)) for p in files)


def digest_for_source(source: str, revision: str | None, folder: str) -> str:
    """A folder is hashed; a hub id that transformers resolves itself is named by id and revision."""
    path = Path(folder)
    if path.is_dir():
        return digest_from_folder(path)
    return f"hub:{source}@{revision or 'unpinned'}"
