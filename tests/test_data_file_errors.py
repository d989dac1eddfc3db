"""Bad data files end in one message naming file, line or byte offset, and what was expected
(issue 14 item 6), through the real prompt-set loaders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from xdetox.prompts.base import PromptSetError
from xdetox.prompts.jsonl import load_jsonl
from xdetox.prompts.rtplx import load_rtplx
from xdetox.records import RecordError


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_utf8_bom_is_read_not_rejected(tmp_path: Path) -> None:
    rows = [{"prompt": "Hallo Welt", "language": "de", "id": "a"}, {"prompt": "Zweite", "language": "de", "id": "b"}]
    body = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8")
    path = _write(tmp_path / "p.jsonl", b"\xef\xbb\xbf" + body)
    items = load_jsonl(path, "jsonl:p", ["de"])
    assert [(i.prompt_id, i.prompt) for i in items] == [("a", "Hallo Welt"), ("b", "Zweite")]


def test_binary_file_names_line_and_byte_offset(tmp_path: Path) -> None:
    first = b'{"prompt": "ok", "language": "en"}\n'  # 35 bytes
    path = _write(tmp_path / "p.jsonl", first + b"\x89PNG\r\n")
    with pytest.raises(RecordError) as info:
        load_jsonl(path, "jsonl:p", ["en"])
    # line 2 starts at byte 35; 0x89 is its first byte
    assert str(info.value).startswith(f"{path}:2: not UTF-8 text at byte offset 35 (byte 0x89)")


def test_latin1_text_is_not_utf8(tmp_path: Path) -> None:
    path = _write(tmp_path / "p.jsonl", '{"prompt": "caf\u00e9", "language": "fr"}\n'.encode("latin-1"))
    with pytest.raises(RecordError, match=r":1: not UTF-8 text at byte offset 15 \(byte 0xe9\)"):
        load_jsonl(path, "jsonl:p", ["fr"])


def test_nul_bytes_are_called_binary(tmp_path: Path) -> None:
    path = _write(tmp_path / "p.jsonl", b"\x00\x00\x00\x00\n")
    with pytest.raises(RecordError, match=r":1: holds NUL bytes"):
        load_jsonl(path, "jsonl:p", ["en"])


def test_truncated_json_names_the_line(tmp_path: Path) -> None:
    path = _write(tmp_path / "p.jsonl", b'{"prompt": "ok", "language": "en"}\n{"prompt": "cut off", "lang')
    with pytest.raises(RecordError, match=r":2: not valid JSON"):
        load_jsonl(path, "jsonl:p", ["en"])


def test_empty_file_says_empty(tmp_path: Path) -> None:
    path = _write(tmp_path / "p.jsonl", b"")
    with pytest.raises(PromptSetError, match="the file is empty; expected one JSON object per line"):
        load_jsonl(path, "jsonl:p", ["en"])


def test_empty_rtplx_file_does_not_blame_redacted_prompts(tmp_path: Path) -> None:
    root = tmp_path / "rtplx"
    root.mkdir()
    _write(root / "RTP_LX_DE.json", b"\n")
    with pytest.raises(PromptSetError) as info:
        list(load_rtplx(root, "rtplx", ["de"], tmp_path / "scratch"))
    assert "RTP_LX_DE.json: the file is empty" in str(info.value)
    assert "redacted" not in str(info.value)


def test_validate_opens_the_data_the_spec_names(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from xdetox.cli import app

    good = _write(tmp_path / "good.jsonl", b'{"prompt": "hello", "language": "en"}\n')
    bad = _write(tmp_path / "bad.jsonl", b'{"prompt": "hello", "language": "en"}\n\x89PNG\n')
    template = Path("jobs/smoke.yaml").read_text(encoding="utf-8")
    assert "prompts:" in template

    def spec_with(path: Path) -> Path:
        import yaml

        doc = yaml.safe_load(template)
        doc["prompts"] = [{"id": "mine", "source": f"jsonl:{path}", "languages": ["en"]}]
        out = tmp_path / f"spec-{path.stem}.yaml"
        out.write_text(yaml.safe_dump(doc), encoding="utf-8")
        return out

    ok = CliRunner().invoke(app, ["validate", str(spec_with(good))])
    assert ok.exit_code == 0, ok.output
    res = CliRunner().invoke(app, ["validate", str(spec_with(bad))])
    assert res.exit_code == 2, res.output
    assert "prompts[0] (id 'mine'" in res.output and "bad.jsonl:2: not UTF-8 text at byte offset 38" in res.output
    missing = CliRunner().invoke(app, ["validate", str(spec_with(tmp_path / "nope.jsonl"))])
    assert missing.exit_code == 2 and "prompts[0]" in missing.output
    assert CliRunner().invoke(app, ["validate", "--no-data", str(spec_with(bad))]).exit_code == 0
