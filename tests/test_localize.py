"""One way to turn a user's path, file:// or s3:// location into a local file or folder, for
prompts, training data, probes and models alike (issue 11 item 3), against the real S3 server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from xdetox.models.resolve import ModelSourceError, resolve_model_source
from xdetox.prompts.base import PromptSetError
from xdetox.prompts.sources import localize as localize_prompts
from xdetox.store import open_store
from xdetox.store.localize import LocationError, localize
from xdetox.training.data import load_training_set
from xdetox.training.jsonl import DataFileError


def test_paths_and_file_uris(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a b.jsonl").write_text("{}\n")
    monkeypatch.chdir(tmp_path)
    assert localize("file://d/a%20b.jsonl") == Path("d/a b.jsonl")  # relative, like file://./runs
    assert localize(f"file://{tmp_path}/d") == tmp_path / "d"
    assert localize(" d ") == Path("d")
    with pytest.raises(LocationError, match="'nope' does not exist"):
        localize("nope")
    with pytest.raises(LocationError, match="unsupported URI 'http://x/y'"):
        localize("http://x/y")
    with pytest.raises(PromptSetError, match="prompts.0.source: empty path"):
        localize_prompts("  ", "prompts.0.source")


@pytest.mark.s3
def test_s3_object_and_folder_are_cached_and_refetched_when_replaced(
        s3_store_uri: str, isolated_cache: Path) -> None:
    bucket = s3_store_uri[len("s3://"):].split("/")[0]
    store = open_store(f"s3://{bucket}")
    store.put_text("data/en.jsonl", "one\n")
    store.put_text("data/de.jsonl", "eins\n")
    one = localize(f"s3://{bucket}/data/en.jsonl")
    assert one == isolated_cache / "data" / bucket / "data" / "en.jsonl" and one.read_text() == "one\n"
    folder = localize(f"s3://{bucket}/data", "models")
    assert folder == isolated_cache / "models" / bucket / "data"
    assert sorted(p.name for p in folder.iterdir()) == ["de.jsonl", "en.jsonl"]
    store.put_text("data/en.jsonl", "one, replaced\n")  # same URI, new object: not served stale
    assert localize(f"s3://{bucket}/data/en.jsonl").read_text() == "one, replaced\n"
    with pytest.raises(LocationError, match=f"no objects under s3://{bucket}/absent"):
        localize(f"s3://{bucket}/absent")


@pytest.mark.s3
def test_models_and_training_data_from_s3_use_it(s3_store_uri: str, isolated_cache: Path) -> None:
    bucket = s3_store_uri[len("s3://"):].split("/")[0]
    store = open_store(f"s3://{bucket}")
    store.put_text("m/config.json", "{}")
    assert resolve_model_source(f"s3://{bucket}/m") == str(isolated_cache / "models" / bucket / "m")
    with pytest.raises(ModelSourceError, match=f"no objects under s3://{bucket}/gone"):
        resolve_model_source(f"s3://{bucket}/gone")
    rows = [{"prompt": "p", "chosen": " c", "rejected": " r"}] * 3
    store.put_text("pairs/en.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    ts = load_training_set({"format": "pairs-jsonl", "path": f"s3://{bucket}/pairs", "languages": ["en"]}, "dpo")
    assert len(ts.rows) == 3
    with pytest.raises(DataFileError, match=f"s3://{bucket}/none: no objects under"):
        load_training_set({"format": "pairs-jsonl", "path": f"s3://{bucket}/none", "languages": ["en"]}, "dpo")
