"""Shared fixtures: offline Hugging Face, a real S3 server, and stores of both kinds."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

# Never reach a model hub from tests (a hub name otherwise takes ~50 s to fail offline).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from tests.s3_server import S3Server, seaweedfs  # noqa: E402


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    with seaweedfs(tmp_path_factory.mktemp("seaweedfs")) as server:
        yield server


@pytest.fixture
def s3_env(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Server:
    for k, v in s3_server.env().items():
        monkeypatch.setenv(k, v)
    return s3_server


def new_bucket(server: S3Server) -> str:
    from xdetox.store.s3 import S3Settings, make_client

    name = f"xdetox-{uuid.uuid4().hex[:12]}"
    make_client(S3Settings(endpoint_url=server.endpoint, addressing_style="path")).create_bucket(Bucket=name)
    return name


@pytest.fixture
def s3_store_uri(s3_env: S3Server) -> str:
    return f"s3://{new_bucket(s3_env)}/prefix"


@pytest.fixture(params=["file", "s3"])
def store_uri(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store URI of each kind: every store contract test runs against both."""
    if request.param == "file":
        return (tmp_path / "store").as_uri()
    return request.getfixturevalue("s3_store_uri")


@pytest.fixture
def isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("XDETOX_CACHE_DIR", str(cache))
    return cache
