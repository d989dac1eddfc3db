"""The store interface every step reads from and writes to.

A store is rooted at a URI (``file:///abs/path`` or ``s3://bucket/prefix``); keys are relative to
that root and checked by :func:`xdetox.store.keys.check_key`. Every put is atomic: a reader sees
the whole object or nothing (rename on a file system, a single PUT or a completed multipart
upload on S3).
"""

from __future__ import annotations

import abc
import hashlib
import io
from collections.abc import Iterator
from pathlib import Path

from xdetox.store.keys import check_key, join


class Store(abc.ABC):
    uri: str

    # -- primitives each backend implements
    @abc.abstractmethod
    def _put_bytes(self, key: str, data: bytes) -> None: ...

    @abc.abstractmethod
    def _put_file(self, key: str, path: Path) -> None: ...

    # ``sha256``, where given, is the digest a commit record promises: a body that does not match
    # is a transfer fault (retried on S3) and never handed to the caller.
    @abc.abstractmethod
    def _get_bytes(self, key: str, sha256: str | None = None) -> bytes: ...

    @abc.abstractmethod
    def _get_file(self, key: str, path: Path, sha256: str | None = None) -> None: ...

    @abc.abstractmethod
    def _put_if_absent(self, key: str, data: bytes) -> bool:
        """Write ``data`` only if no object is at ``key``, atomically against other writers."""

    @abc.abstractmethod
    def _exists(self, key: str) -> bool: ...

    @abc.abstractmethod
    def _list(self, prefix: str) -> Iterator[str]: ...

    @abc.abstractmethod
    def _delete(self, key: str) -> None: ...

    @abc.abstractmethod
    def _local_path(self, key: str) -> Path | None:
        """The object's path on this machine when the store is a file system, else None."""

    # -- the public, key-checked interface
    def put_bytes(self, key: str, data: bytes) -> None:
        self._put_bytes(check_key(key), data)

    def put_if_absent(self, key: str, data: bytes) -> bool:
        """Create the object at ``key`` with ``data`` unless one exists; True if this call created it.

        Of several processes racing on one key exactly one gets True (a hard link on a file
        system, ``If-None-Match: *`` on S3), so it can serve as a lock or a first-writer-wins record.
        Put something unique to the writer in ``data`` (a uuid): an S3 PUT that botocore retried
        after it had landed is recognised as this call's own by its equal bytes.
        """
        return self._put_if_absent(check_key(key), data)

    def put_text(self, key: str, text: str) -> None:
        self.put_bytes(key, text.encode("utf-8"))

    def put_file(self, key: str, path: Path) -> None:
        self._put_file(check_key(key), Path(path))

    def get_bytes(self, key: str, sha256: str | None = None) -> bytes:
        return self._get_bytes(check_key(key), sha256)

    def get_text(self, key: str, sha256: str | None = None) -> str:
        return self.get_bytes(key, sha256).decode("utf-8")

    def iter_lines(self, key: str, sha256: str | None = None) -> Iterator[str]:
        """The object's text, line by line (streamed from disk on a file store, which is not
        checked against ``sha256``: nothing travels over a network there)."""
        return self._iter_lines(check_key(key), sha256)

    def _iter_lines(self, key: str, sha256: str | None = None) -> Iterator[str]:
        # Split on "\n" only, like a file: str.splitlines() would also split on U+2028 and other
        # separators that JSON text written with ensure_ascii=False may hold inside a string.
        yield from io.StringIO(self._get_bytes(key, sha256).decode("utf-8"))

    def get_file(self, key: str, path: Path, sha256: str | None = None) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._get_file(check_key(key), Path(path), sha256)

    def exists(self, key: str) -> bool:
        return self._exists(check_key(key))

    def list(self, prefix: str = "") -> list[str]:
        """Keys under ``prefix`` (a folder-like prefix; '' lists everything), sorted."""
        if prefix:
            check_key(prefix.rstrip("/") or "x")
        return sorted(self._list(prefix))

    def delete(self, key: str) -> None:
        self._delete(check_key(key))

    def delete_prefix(self, prefix: str) -> int:
        keys = self.list(prefix)
        for k in keys:
            self._delete(k)
        return len(keys)

    def local_path(self, key: str) -> Path | None:
        return self._local_path(check_key(key))

    def size(self, key: str) -> int | None:
        """The object's size in bytes, or None when the store cannot tell (a failed HEAD)."""
        return self._size(check_key(key))

    def _size(self, key: str) -> int | None:
        local = self._local_path(key)
        try:
            return local.stat().st_size if local is not None else None
        except OSError:
            return None

    def child(self, prefix: str) -> Store:
        """A store rooted at ``prefix`` below this one (keys cannot climb back out)."""
        return PrefixedStore(self, join(prefix))

    def sha256(self, key: str) -> str:
        local = self.local_path(key)
        h = hashlib.sha256()
        if local is not None:
            with open(local, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
        else:
            h.update(self.get_bytes(key))
        return h.hexdigest()


class PrefixedStore(Store):
    """A view of another store below a fixed prefix."""

    def __init__(self, parent: Store, prefix: str) -> None:
        self.parent = parent
        self.prefix = prefix.strip("/")
        self.uri = parent.uri.rstrip("/") + "/" + self.prefix

    def _k(self, key: str) -> str:
        return f"{self.prefix}/{key}"

    def _put_bytes(self, key: str, data: bytes) -> None:
        self.parent._put_bytes(self._k(key), data)

    def _put_file(self, key: str, path: Path) -> None:
        self.parent._put_file(self._k(key), path)

    def _get_bytes(self, key: str, sha256: str | None = None) -> bytes:
        return self.parent._get_bytes(self._k(key), sha256)

    def _get_file(self, key: str, path: Path, sha256: str | None = None) -> None:
        self.parent._get_file(self._k(key), path, sha256)

    def _iter_lines(self, key: str, sha256: str | None = None) -> Iterator[str]:
        return self.parent._iter_lines(self._k(key), sha256)

    def _put_if_absent(self, key: str, data: bytes) -> bool:
        return self.parent._put_if_absent(self._k(key), data)

    def _exists(self, key: str) -> bool:
        return self.parent._exists(self._k(key))

    def _list(self, prefix: str) -> Iterator[str]:
        n = len(self.prefix) + 1
        for k in self.parent._list(self._k(prefix) if prefix else self.prefix + "/"):
            yield k[n:]

    def _delete(self, key: str) -> None:
        self.parent._delete(self._k(key))

    def _local_path(self, key: str) -> Path | None:
        return self.parent._local_path(self._k(key))

    def _size(self, key: str) -> int | None:
        return self.parent._size(self._k(key))


class StoreError(RuntimeError):
    """A store operation failed after its retries."""


class NotFoundError(StoreError, FileNotFoundError):
    """No object at that key."""
