"""Malformed specs: exit 2 and a message naming the bad field (and line), never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from xdetox.cli import app

VALID = """\
name: ok
models:
  - id: tiny
    source: builtin:tiny
training:
  method: dpo
  data:
    format: paradetox
    path: bundled:paradetox
prompts:
  - id: x
    source: bundled:xling-prompts-200
    languages: [en, de]
generation:
  temperature: 0.9
"""

BAD: list[tuple[str, str, str]] = [
    # (name, spec text, expected substring in the error)
    ("negative temperature", VALID.replace("temperature: 0.9", "temperature: -1"),
     "generation.temperature: must be > 0"),
    ("zero temperature", VALID.replace("temperature: 0.9", "temperature: 0"), "generation.temperature: must be > 0"),
    ("unknown top-level field", VALID + "colour: blue\n", "colour: unknown field"),
    ("typo in nested field", VALID.replace("temperature: 0.9", "temprature: 0.9"), "generation.temprature: unknown field"),
    ("top_p above 1", VALID + "  top_p: 1.5\n", "generation.top_p: must be <= 1"),
    ("bad method", VALID.replace("method: dpo", "method: ppo"), "training.method: must be one of"),
    ("dpo without data", VALID.replace("  data:\n    format: paradetox\n    path: bundled:paradetox\n", ""),
     "training.data is required"),
    ("unknown language", VALID.replace("[en, de]", "[en, xx]"), "prompts[0].languages"),
    ("missing models", VALID.replace("models:\n  - id: tiny\n    source: builtin:tiny\n", ""), "models: field required"),
    ("bad model id", VALID.replace("id: tiny", "id: Tiny Model"), "models[0].id"),
    ("unknown builtin", VALID.replace("builtin:tiny", "builtin:huge"), "models[0].source: unknown builtin"),
    ("samples zero", VALID + "  samples: 0\n", "generation.samples: must be > 0"),
    ("bad scorer kind", VALID + "scoring:\n  kind: vibes\n", "scoring"),
    ("bad store", VALID + "store: ftp://x\n", "store: must be a file:// or s3:// URI"),
    ("matrix on unknown path", VALID + "matrix:\n  generation.temp: [0.5]\n", "matrix.generation.temp: no such field"),
    ("matrix value invalid", VALID + "matrix:\n  generation.temperature: [0.5, -2]\n",
     "generation.temperature: must be > 0 (in matrix setting"),
    ("duplicate prompt ids", VALID.replace("prompts:\n", "prompts:\n  - {id: x, source: 'bundled:xling-prompts-200', languages: [en]}\n"),
     "duplicate id x"),
    ("template without slot", VALID.replace("languages: [en, de]", "languages: [en, de]\n    template: 'Say:'"),
     "prompts[0].template: template must contain {prompt}"),
    ("shards zero", VALID + "sharding:\n  generate: 0\n", "sharding.generate: must be > 0"),
    ("not a mapping", "- a\n- b\n", "must be a mapping"),
]


@pytest.mark.parametrize(("name", "text", "expected"), BAD, ids=[b[0] for b in BAD])
def test_malformed_spec_exit_2_names_field(tmp_path: Path, name: str, text: str, expected: str) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(text)
    result = CliRunner().invoke(app, ["validate", str(spec)])
    assert result.exit_code == 2, (name, result.output)
    assert expected in result.output, (name, result.output)
    assert "Traceback" not in result.output
    assert str(spec) in result.output  # the file is named


def test_at_least_ten_malformed_specs() -> None:
    assert len(BAD) >= 10


def test_error_names_the_line(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(VALID.replace("temperature: 0.9", "temperature: -1"))
    result = CliRunner().invoke(app, ["validate", str(spec)])
    line = VALID.splitlines().index("  temperature: 0.9") + 1
    assert f"{spec}:{line}: generation.temperature" in result.output


def test_yaml_syntax_error_names_line(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text("name: ok\nmodels: [\n  - id: x\nprompts: {\n")
    result = CliRunner().invoke(app, ["validate", str(spec)])
    assert result.exit_code == 2
    assert "YAML syntax error" in result.output and f"{spec}:" in result.output


def test_valid_spec_exit_0_and_schema(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(VALID)
    assert CliRunner().invoke(app, ["validate", str(spec)]).exit_code == 0
    result = CliRunner().invoke(app, ["schema"])
    schema = json.loads(result.output)
    assert schema["additionalProperties"] is False and "generation" in schema["properties"]


def test_jobs_specs_validate() -> None:
    # The paper jobs name data in the operator's bucket (s3://YOUR-BUCKET/...): check the specs alone.
    for spec in sorted(Path("jobs").glob("*.yaml")):
        result = CliRunner().invoke(app, ["validate", "--no-data", str(spec)])
        assert result.exit_code == 0, (spec, result.output)


def test_console_script_exit_code(tmp_path: Path) -> None:
    """The real process, not the test runner: exit status 2 and no traceback on stderr."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(VALID + "colour: blue\n")
    proc = subprocess.run([sys.executable, "-m", "xdetox.cli.main", "validate", str(spec)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "colour: unknown field" in proc.stderr and "Traceback" not in proc.stderr
