"""The S3 store (``s3://bucket/prefix``) over boto3, for any S3-compatible server.

Endpoint, region and credentials come from the environment (``XDETOX_S3_ENDPOINT_URL`` or boto3's
own ``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, or an instance role);
never from a manifest. Throttling, 5xx and connection errors are retried with exponential backoff
by botocore's ``standard`` retry mode; large files go through boto3's transfer manager (multipart,
concurrent parts). A PUT, and a completed multipart upload, is atomic on S3: readers never see
half an object.
"""

from __future__ import annotations

import hashlib
import os
import random
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xdetox.store.base import NotFoundError, Store, StoreError

MiB = 1024 * 1024

# botocore's standard mode backs off rand(0, 1) * min(0.05 s * 2**i, 20 s) for non-throttling
# errors; a cut response body gets the same schedule (botocore.retries.standard.ExponentialBackoff).
_BACKOFF_BASE_S = 0.05
_BACKOFF_MAX_S = 20.0


def _transient_read_errors() -> tuple[type[BaseException], ...]:
    """Errors that mean the bytes did not arrive whole (not that the object is wrong or missing)."""
    from botocore.exceptions import (
        ConnectionClosedError,
        ConnectionError,
        IncompleteReadError,
        ReadTimeoutError,
        ResponseStreamingError,
    )
    from urllib3.exceptions import HTTPError as Urllib3Error

    return (ResponseStreamingError, IncompleteReadError, ConnectionError, ConnectionClosedError,
            ReadTimeoutError, Urllib3Error, ConnectionResetError, BrokenPipeError, TimeoutError)


def _body_errors() -> tuple[type[BaseException], ...]:
    from botocore.exceptions import IncompleteReadError, ResponseStreamingError
    from urllib3.exceptions import ProtocolError

    return (ResponseStreamingError, IncompleteReadError, ProtocolError)


class _BodyMismatch(Exception):
    """A body whose length or sha256 is not what the server or the commit record announced."""


@dataclass(frozen=True)
class S3Settings:
    endpoint_url: str | None = None
    region: str = "us-east-1"
    addressing_style: str = "auto"
    max_attempts: int = 8
    multipart_threshold: int = 64 * MiB
    multipart_chunksize: int = 16 * MiB
    max_concurrency: int = 8

    @classmethod
    def from_env(cls) -> S3Settings:
        env = os.environ
        endpoint = env.get("XDETOX_S3_ENDPOINT_URL") or env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
        return cls(
            endpoint_url=endpoint or None,
            region=env.get("AWS_DEFAULT_REGION") or env.get("AWS_REGION") or "us-east-1",
            # Self-hosted servers (MinIO, SeaweedFS, Ceph) want path-style addressing.
            addressing_style=env.get("XDETOX_S3_ADDRESSING_STYLE") or ("path" if endpoint else "auto"),
            max_attempts=int(env.get("XDETOX_S3_MAX_ATTEMPTS", "8")),
            multipart_threshold=int(env.get("XDETOX_S3_MULTIPART_THRESHOLD", str(64 * MiB))),
            multipart_chunksize=int(env.get("XDETOX_S3_MULTIPART_CHUNKSIZE", str(16 * MiB))),
            max_concurrency=int(env.get("XDETOX_S3_MAX_CONCURRENCY", "8")),
        )


def make_client(settings: S3Settings) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(
        region_name=settings.region,
        retries={"max_attempts": settings.max_attempts, "mode": "standard"},
        s3={"addressing_style": settings.addressing_style},
        connect_timeout=10,
        read_timeout=120,
    )
    return boto3.session.Session().client("s3", endpoint_url=settings.endpoint_url, config=config)


class S3Store(Store):
    def __init__(self, bucket: str, prefix: str = "", settings: S3Settings | None = None, client: Any = None) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.settings = settings or S3Settings.from_env()
        self.client = client or make_client(self.settings)
        self.uri = f"s3://{bucket}/{self.prefix}".rstrip("/")

    def _transfer_config(self) -> Any:
        from boto3.s3.transfer import TransferConfig

        s = self.settings
        return TransferConfig(
            multipart_threshold=s.multipart_threshold,
            multipart_chunksize=s.multipart_chunksize,
            max_concurrency=s.max_concurrency,
        )

    def _k(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def _call(self, what: str, key: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return fn(*args, **kwargs)
        except ClientError as e:
            code = str(e.response.get("Error", {}).get("Code", ""))
            if code in {"NoSuchKey", "404", "NotFound"}:
                raise NotFoundError(f"s3://{self.bucket}/{self._k(key)}: no such object") from None
            raise StoreError(f"{what} s3://{self.bucket}/{self._k(key)} failed: {code} {e}") from e
        except BotoCoreError as e:
            raise StoreError(f"{what} s3://{self.bucket}/{self._k(key)} failed: {e}") from e

    def _put_bytes(self, key: str, data: bytes) -> None:
        self._call("PUT", key, self.client.put_object, Bucket=self.bucket, Key=self._k(key), Body=data)

    def _put_if_absent(self, key: str, data: bytes) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.put_object(Bucket=self.bucket, Key=self._k(key), Body=data, IfNoneMatch="*")
            return True
        except ClientError as e:
            status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            code = str(e.response.get("Error", {}).get("Code", ""))
            # 412: the object exists. 409: a concurrent conditional write to the key is in flight
            # and will win or lose on its own; either way this call did not create the object.
            if status in (412, 409) or code in {"PreconditionFailed", "ConditionalRequestConflict"}:
                # botocore may have retried a PUT that had in fact landed: then the object is ours.
                try:
                    return self._get_bytes(key) == data
                except NotFoundError:
                    return False
            raise StoreError(f"conditional PUT s3://{self.bucket}/{self._k(key)} failed: {code} {e}") from e
        except Exception as e:
            from botocore.exceptions import BotoCoreError

            if isinstance(e, BotoCoreError):
                raise StoreError(f"conditional PUT s3://{self.bucket}/{self._k(key)} failed: {e}") from e
            raise

    def _put_file(self, key: str, path: Path) -> None:
        self._call(
            "upload", key, self.client.upload_file, str(path), self.bucket, self._k(key), Config=self._transfer_config()
        )

    def _with_read_retries(self, what: str, key: str, attempt: Callable[[], Any]) -> Any:
        """Run ``attempt`` (a request *and* the reading of its body) until it succeeds.

        botocore retries a request whose headers failed, but a body cut midway surfaces later, in
        ``.read()``, outside its retry loop (ResponseStreamingError, IncompleteRead, a reset); so
        the whole GET is redone here, with botocore's own backoff schedule and attempt count.
        """
        transient = _transient_read_errors()
        last: BaseException | None = None
        for i in range(max(1, self.settings.max_attempts)):
            if i:
                time.sleep(random.random() * min(_BACKOFF_BASE_S * 2 ** (i - 1), _BACKOFF_MAX_S))
            try:
                return attempt()
            except StoreError as e:
                # _call wraps BotoCoreError. Only a cut body is retried again here: botocore has
                # already spent its attempts on refused connections, timeouts and 5xx.
                if isinstance(e, NotFoundError) or not isinstance(e.__cause__, _body_errors()):
                    raise
                last = e.__cause__
            except (*transient, _BodyMismatch) as e:
                last = e
        raise StoreError(
            f"{what} s3://{self.bucket}/{self._k(key)} failed after {self.settings.max_attempts} attempts: "
            f"{type(last).__name__}: {last}"
        ) from last

    def _get_bytes(self, key: str, sha256: str | None = None) -> bytes:
        def attempt() -> bytes:
            resp = self._call("GET", key, self.client.get_object, Bucket=self.bucket, Key=self._k(key))
            data = resp["Body"].read()
            if "ContentLength" in resp and len(data) != resp["ContentLength"]:
                raise _BodyMismatch(f"got {len(data)} of {resp['ContentLength']} bytes")
            if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
                raise _BodyMismatch(f"sha256 {hashlib.sha256(data).hexdigest()} is not the committed {sha256}")
            return data

        return self._with_read_retries("GET", key, attempt)

    def _get_file(self, key: str, path: Path, sha256: str | None = None) -> None:
        # A name no other process or thread uses: two runs sharing a cache never write one file.
        tmp = path.with_name(f".tmp-{os.getpid()}-{uuid.uuid4().hex[:12]}-{path.name}")

        def attempt() -> None:
            # The transfer manager retries cut bodies itself; the sha256 check catches the rest.
            self._call(
                "download", key, self.client.download_file, self.bucket, self._k(key), str(tmp),
                Config=self._transfer_config(),
            )
            if sha256 is not None:
                h = hashlib.sha256()
                with open(tmp, "rb") as f:
                    for block in iter(lambda: f.read(1 << 20), b""):
                        h.update(block)
                if h.hexdigest() != sha256:
                    raise _BodyMismatch(f"sha256 {h.hexdigest()} is not the committed {sha256}")

        try:
            self._with_read_retries("download", key, attempt)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)

    def _exists(self, key: str) -> bool:
        try:
            self._with_read_retries(
                "HEAD", key, lambda: self._call("HEAD", key, self.client.head_object, Bucket=self.bucket,
                                                Key=self._k(key)))
            return True
        except NotFoundError:
            return False

    def _size(self, key: str) -> int | None:
        try:
            head = self._with_read_retries(
                "HEAD", key, lambda: self._call("HEAD", key, self.client.head_object, Bucket=self.bucket,
                                                Key=self._k(key)))
            return int(head["ContentLength"])
        except (StoreError, KeyError, TypeError, ValueError):
            return None

    def _list(self, prefix: str) -> Iterator[str]:
        full = self._k(prefix) if prefix else (self.prefix + "/" if self.prefix else "")
        n = len(self.prefix) + 1 if self.prefix else 0
        paginator = self.client.get_paginator("list_objects_v2")
        pages = self._with_read_retries(
            "LIST", prefix,
            lambda: self._call("LIST", prefix, lambda: list(paginator.paginate(Bucket=self.bucket, Prefix=full))))
        for page in pages:
            for obj in page.get("Contents", []):
                yield obj["Key"][n:]

    def _delete(self, key: str) -> None:
        self._call("DELETE", key, self.client.delete_object, Bucket=self.bucket, Key=self._k(key))

    def _local_path(self, key: str) -> Path | None:
        return None
