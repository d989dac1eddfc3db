"""Project rules for the step images' Dockerfiles, checked beside hadolint.

  pinned-base     every FROM names an exact tag or a digest, never ``latest`` or no tag
  non-root        the final USER exists and is not root (uid 0)
  no-secrets      no ENV/ARG whose name looks like a credential (they end up in image layers)
  entrypoint      ENTRYPOINT is exactly ``["xdetox", "step"]`` (exec form)
  pinned-pip      every ``pip install`` installs exact pins, a lock file or the local source
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

_SECRET = re.compile(r"(PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|ACCESS_KEY|CREDENTIAL|PRIVATE_KEY)", re.I)


def instructions(text: str) -> list[tuple[int, str, str]]:
    """(line, INSTRUCTION, arguments), continuation lines joined, comments dropped."""
    out: list[tuple[int, str, str]] = []
    buf, start = "", 0
    for no, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not buf and (not line or line.startswith("#")):
            continue
        if buf and line.startswith("#"):
            continue
        if not buf:
            start = no
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        buf += line
        head, _, rest = buf.partition(" ")
        out.append((start, head.upper(), rest.strip()))
        buf = ""
    return out


def _env_names(args: str) -> list[str]:
    if "=" not in args.split(" ", 1)[0]:
        return [args.split(" ", 1)[0]]  # legacy "ENV NAME value"
    return [tok.split("=", 1)[0] for tok in shlex.split(args) if "=" in tok]


def _pip_ok(cmd: str) -> bool:
    for part in re.split(r"&&|;|\|\|", cmd):
        words = shlex.split(part)
        if "pip" not in " ".join(words) or "install" not in words:
            continue
        targets = []
        skip = False
        for i, w in enumerate(words[words.index("install") + 1:]):
            if skip:
                skip = False
                continue
            if w in {"-r", "--requirement", "-c", "--constraint"}:
                skip = True
                continue
            if w.startswith("-"):
                continue
            targets.append(w)
            del i
        for t in targets:
            if not ("==" in t or t.startswith(("/", "./", "."))):
                return False
    return True


def lint_dockerfile(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    ins = instructions(text)
    problems: list[str] = []
    users: list[tuple[int, str]] = []
    entry: tuple[int, str] | None = None
    for line, op, args in ins:
        where = f"{path}:{line}"
        if op == "FROM":
            image = args.split()[0]
            if image.startswith("--platform"):
                image = args.split()[1]
            name, _, digest = image.partition("@")
            tag = name.rsplit(":", 1)[1] if ":" in name.rsplit("/", 1)[-1] else ""
            if not digest and (not tag or tag == "latest" or "$" in image):
                problems.append(f"[pinned-base] {where}: base image {image!r} is not pinned to an exact tag or digest")
        elif op == "USER":
            users.append((line, args.split(":")[0]))
        elif op in {"ENV", "ARG"}:
            for n in _env_names(args):
                if _SECRET.search(n):
                    problems.append(f"[no-secrets] {where}: {op} {n} looks like a credential; pass it at run time")
        elif op == "ENTRYPOINT":
            entry = (line, args)
        elif op == "RUN" and not _pip_ok(args):
            problems.append(f"[pinned-pip] {where}: pip install without exact pins")
    if not users or users[-1][1] in {"root", "0"}:
        problems.append(f"[non-root] {path}: the final USER must be a non-root user")
    if entry is None:
        problems.append(f"[entrypoint] {path}: no ENTRYPOINT (expected [\"xdetox\", \"step\"])")
    else:
        try:
            value = json.loads(entry[1])
        except json.JSONDecodeError:
            value = None
        if value != ["xdetox", "step"]:
            problems.append(f"[entrypoint] {path}:{entry[0]}: ENTRYPOINT must be [\"xdetox\", \"step\"] (exec form)")
    return problems
