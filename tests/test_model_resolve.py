"""Model sources given as file:// URIs resolve to the folder they name, relative or absolute."""

from __future__ import annotations

from pathlib import Path

import pytest

from xdetox.models.resolve import ModelSourceError, resolve_model_source


def _model(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    return folder


def test_relative_file_uri_is_relative_to_the_working_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = _model(tmp_path / "models" / "tiny")
    monkeypatch.chdir(tmp_path)
    # urlparse would read "models" as a host and give "/tiny"
    assert resolve_model_source("file://models/tiny") == str(model.resolve())
    assert resolve_model_source("file://./models/tiny") == str(model.resolve())


def test_absolute_file_uri_and_plain_path(tmp_path: Path) -> None:
    model = _model(tmp_path / "m")
    assert resolve_model_source(f"file://{model}") == str(model.resolve())
    assert resolve_model_source(str(model)) == str(model.resolve())


def test_missing_file_uri_is_an_error_not_a_hub_id(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelSourceError, match="not a folder"):
        resolve_model_source("file://models/absent")
    assert resolve_model_source("org/name") == "org/name"  # a hub id stays one
