"""The file-system store (``file://``): atomic by write-to-temp then rename."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from xdetox.store.base import NotFoundError, Store, StoreError


class LocalStore(Store):
    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()
        self.uri = self.root.as_uri()

    def _path(self, key: str) -> Path:
        p = (self.root / key).resolve()
        # check_key already refused '..'; this also catches symlinks pointing outside the root.
        if p != self.root and self.root not in p.parents:
            from xdetox.store.keys import UnsafeKeyError

            raise UnsafeKeyError(f"key {key!r} resolves outside the store root")
        return p

    def _atomic_write(self, key: str, writer) -> None:  # type: ignore[no-untyped-def]
        dest = self._path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=dest.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                writer(f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, dest)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def _put_bytes(self, key: str, data: bytes) -> None:
        self._atomic_write(key, lambda f: f.write(data))

    def _put_file(self, key: str, path: Path) -> None:
        if path.resolve() == self._path(key):
            return

        def copy(f) -> None:  # type: ignore[no-untyped-def]
            with open(path, "rb") as src:
                shutil.copyfileobj(src, f, 1 << 20)

        self._atomic_write(key, copy)

    def _put_if_absent(self, key: str, data: bytes) -> bool:
        dest = self._path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=dest.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            # link() fails if dest exists, and dest appears whole: a reader never sees half of it.
            os.link(tmp, dest)
            return True
        except FileExistsError:
            return False
        finally:
            Path(tmp).unlink(missing_ok=True)

    def _get_bytes(self, key: str, sha256: str | None = None) -> bytes:
        try:
            data = self._path(key).read_bytes()
        except (FileNotFoundError, IsADirectoryError):
            raise NotFoundError(f"{self.uri}/{key}: no such object") from None
        if sha256 is not None and (got := hashlib.sha256(data).hexdigest()) != sha256:
            raise StoreError(f"{self.uri}/{key}: sha256 {got} does not match its commit record ({sha256})")
        return data

    def _iter_lines(self, key: str, sha256: str | None = None) -> Iterator[str]:
        path = self._path(key)
        if not path.is_file():
            raise NotFoundError(f"{self.uri}/{key}: no such object")
        with open(path, encoding="utf-8") as f:
            yield from f

    def _get_file(self, key: str, path: Path, sha256: str | None = None) -> None:
        src = self._path(key)
        if not src.is_file():
            raise NotFoundError(f"{self.uri}/{key}: no such object")
        if src.resolve() != path.resolve():
            shutil.copyfile(src, path)

    def _exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def _list(self, prefix: str) -> Iterator[str]:
        base = self.root
        start = self._path(prefix.rstrip("/")) if prefix else base
        if start.is_file():
            yield prefix
            return
        if not start.is_dir():
            # A prefix may also be a partial file name, as on S3.
            parent = start.parent
            if not parent.is_dir():
                return
            for p in parent.iterdir():
                rel = p.relative_to(base).as_posix()
                if rel.startswith(prefix) and p.is_file() and not p.name.startswith(".tmp-"):
                    yield rel
            return
        for dirpath, _dirs, files in os.walk(start):
            for name in files:
                if name.startswith(".tmp-"):
                    continue  # an interrupted atomic write: never visible
                yield (Path(dirpath) / name).relative_to(base).as_posix()

    def _delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def _local_path(self, key: str) -> Path | None:
        return self._path(key)
