"""The step images' Dockerfiles: the real hadolint, the project's own rules, and pinned locks."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from xdetox.executors.argo.dockerlint import lint_dockerfile

ROOT = Path(__file__).resolve().parents[1]
IMAGES = ("train", "generate", "score")
HADOLINT = Path(sys.executable).parent / "hadolint"


def _hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(HADOLINT), "--no-color", str(path)], capture_output=True, text=True, timeout=60)


def test_hadolint_binary_is_real() -> None:
    out = subprocess.run([str(HADOLINT), "--version"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and "Haskell Dockerfile Linter" in out.stdout


@pytest.mark.parametrize("name", IMAGES)
def test_hadolint_passes(name: str) -> None:
    res = _hadolint(ROOT / "images" / name / "Dockerfile")
    assert res.returncode == 0, res.stdout + res.stderr


def test_hadolint_fires_on_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM ubuntu:latest\nRUN apt-get install -y curl\nRUN pip install requests\n")
    res = _hadolint(bad)
    assert res.returncode != 0
    for rule in ("DL3007", "DL3008", "DL3013"):  # latest tag, unpinned apt, unpinned pip
        assert rule in res.stdout


@pytest.mark.parametrize("name", IMAGES)
def test_project_rules_pass(name: str) -> None:
    assert lint_dockerfile(ROOT / "images" / name / "Dockerfile") == []


GOOD = """FROM python:3.11.14-slim-bookworm
RUN pip install --no-cache-dir torch==2.13.0
USER 10001:10001
ENTRYPOINT ["xdetox", "step"]
"""


@pytest.mark.parametrize(
    ("change", "rule"),
    [
        (("FROM python:3.11.14-slim-bookworm", "FROM python:latest"), "pinned-base"),
        (("FROM python:3.11.14-slim-bookworm", "FROM python"), "pinned-base"),
        (("USER 10001:10001", "USER root"), "non-root"),
        (("USER 10001:10001\n", ""), "non-root"),
        (("USER 10001:10001", "USER 10001:10001\nENV AWS_SECRET_ACCESS_KEY=abc"), "no-secrets"),
        (("USER 10001:10001", "USER 10001:10001\nARG HF_TOKEN"), "no-secrets"),
        (('ENTRYPOINT ["xdetox", "step"]', "ENTRYPOINT xdetox step"), "entrypoint"),
        (('ENTRYPOINT ["xdetox", "step"]', 'ENTRYPOINT ["vllm", "serve"]'), "entrypoint"),
        (("torch==2.13.0", "torch"), "pinned-pip"),
    ],
)
def test_project_rules_fire(tmp_path: Path, change: tuple[str, str], rule: str) -> None:
    f = tmp_path / "Dockerfile"
    f.write_text(GOOD)
    assert lint_dockerfile(f) == []
    f.write_text(GOOD.replace(*change))
    problems = lint_dockerfile(f)
    assert any(p.startswith(f"[{rule}]") for p in problems), problems


def test_digest_pinned_base_is_accepted(tmp_path: Path) -> None:
    f = tmp_path / "Dockerfile"
    f.write_text(GOOD.replace("python:3.11.14-slim-bookworm", "python@sha256:" + "a" * 64))
    assert lint_dockerfile(f) == []


def test_generate_image_is_on_a_pinned_vllm_image() -> None:
    text = (ROOT / "images/generate/Dockerfile").read_text()
    assert re.search(r"^FROM vllm/vllm-openai:v\d+\.\d+\.\d+\s*$", text, re.M)
    lock = (ROOT / "images/generate/requirements.lock").read_text()
    # vLLM pins its own torch and transformers: the generate lock must not override them
    assert not re.search(r"^(torch|transformers|vllm)==", lock, re.M)


@pytest.mark.parametrize("name", IMAGES)
def test_locks_are_exact_pins_and_up_to_date(name: str) -> None:
    lock = (ROOT / "images" / name / "requirements.lock").read_text()
    lines = [x for x in lock.splitlines() if x and not x.startswith("#")]
    assert lines and all(re.fullmatch(r"[a-z0-9-]+==[\w.]+", x) for x in lines), lines
    names = {x.split("==")[0] for x in lines}
    assert {"boto3", "jsonschema"} <= names
    if name == "train":
        assert {"trl", "peft", "bitsandbytes", "transformers"} <= names
    if name == "score":
        assert {"pyahocorasick", "jieba", "matplotlib"} <= names
    sys.path.insert(0, str(ROOT / "images"))
    try:
        import lock as lockgen  # images/lock.py
    finally:
        sys.path.pop(0)
    assert lockgen.lock(name) == lock, "stale lock: run .venv/bin/python images/lock.py"
