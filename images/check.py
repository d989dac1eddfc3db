"""Check that each step image can run every template that uses it (``make images-check``).

For every container template of every rendered workflow (argo/<job>/workflow.yaml), this finds
the code the template's command runs (``xdetox step`` of its step kind, ``xdetox argo <cmd>``) and,
following xdetox's own imports (including the lazy ones inside functions), every third-party
module that code imports. Then, per image:

* ``--static`` (fast; also a default-suite test): each such module's distribution is in the
  image's lock or its base's pins.
* default (slow, ``make images-check``): the lock is resolved against the base's pins with
  ``pip install --dry-run`` (it must resolve, and pull in nothing the lock lacks); for train and
  score a venv is built from CPU torch (stand-in for the CUDA wheel) + the lock + xdetox with
  ``--no-deps``, ``pip check`` must pass, and each template's modules are imported in it and its
  command is run with ``--help``. The generate image's base is vLLM's CUDA image, whose wheels
  cannot run here: its lock is resolved, not installed.

A failure names the image, the template (workflow file and template name) and the module.
The module -> distribution map comes from the project venv's metadata (hand-written only for
vllm, which is not installed there). Hand-written AST walk: no library does "lazy imports of a
package, transitively"; modulefinder only follows top-level imports.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import lock as lockgen  # noqa: E402 - images/lock.py, beside this file

ROOT = lockgen.ROOT
PKG = ROOT / "xdetox"
LABEL_IMAGE = "xdetox.io/image"
LABEL_KIND = "xdetox.io/step-kind"
_OPTIONAL_ERRORS = {"ImportError", "ModuleNotFoundError", "Exception", "BaseException"}


@dataclass(frozen=True)
class TemplateUse:
    workflow: str  # argo/<job>/workflow.yaml
    template: str
    image: str
    command: tuple[str, ...]
    entries: tuple[str, ...]  # xdetox modules the command runs

    def where(self) -> str:
        return f"image {self.image}, template {self.template} ({self.workflow})"


def _module_file(mod: str) -> Path | None:
    rel = Path(*mod.split("."))
    for cand in (ROOT / rel.with_suffix(".py"), ROOT / rel / "__init__.py"):
        if cand.is_file():
            return cand
    return None


def _catches_import_error(node: ast.Try) -> bool:
    for h in node.handlers:
        names = [h.type] if not isinstance(h.type, ast.Tuple) else list(h.type.elts)
        if h.type is None or any(isinstance(n, ast.Name) and n.id in _OPTIONAL_ERRORS for n in names):
            return True
    return False


def _command_function(tree: ast.Module, func: str) -> ast.FunctionDef:
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == func:
            return node
    raise SystemExit(f"no function {func}")


def _imports(mod: str, path: Path, func: str | None = None) -> set[str]:
    """Absolute module names the file imports (not optional ones, not TYPE_CHECKING).

    CLI modules (xdetox.cli.*) count only their top level and, for the command a template runs,
    ``func``'s body: the other commands' lazy imports are not that template's needs.
    """
    tree = ast.parse(path.read_text(encoding="utf-8"))
    if mod.startswith("xdetox.cli"):
        top = [n for n in tree.body if not isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
        if func is not None:
            top.append(_command_function(tree, func))
        tree = ast.Module(body=top, type_ignores=[])
    pkg = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.Try) and _catches_import_error(node):
            for n in node.orelse + node.finalbody:
                visit(n)
            return  # an import guarded by except ImportError is optional by design
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for n in node.orelse:
                visit(n)
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = pkg.split(".")
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)  # may be submodules
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    if "import_module" in found or any(isinstance(n, ast.Attribute) and n.attr == "import_module"
                                       for n in ast.walk(tree)):
        # importlib.import_module("xdetox.x") with literal names (the CLI's sub-command modules).
        # "module:attr" strings are entry points resolved per kind (the step registry): not followed,
        # the template's step kind names its own module.
        found.update(n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
                     and re.fullmatch(r"xdetox(\.[a-z_0-9]+)+", n.value))
    return found


@cache
def third_party(entries: tuple[str, ...]) -> dict[str, str]:
    """Top-level third-party module -> the xdetox module that imports it, over everything reachable."""
    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    todo, seen, out = list(entries), set(), {}
    while todo:
        entry = todo.pop()
        if entry in seen:
            continue
        seen.add(entry)
        mod, _, func = entry.partition(":")
        path = _module_file(mod)
        if path is None:
            continue
        parent = mod.rpartition(".")[0]
        if parent:
            todo.append(parent)  # importing a.b.c runs a/__init__ and a/b/__init__ first
        if func:
            todo.append(mod)
        for name in _imports(mod, path, func or None):
            top = name.split(".")[0]
            if top == "xdetox":
                todo.append(name)
            elif top not in stdlib:
                out.setdefault(top, mod)
    return dict(sorted(out.items()))


@cache
def _cli_commands() -> dict[tuple[str, ...], str]:
    """("argo", "publish") -> "xdetox.cli.argo.workflows:publish", read from the Typer decorators."""
    out: dict[tuple[str, ...], str] = {}
    for f in sorted((PKG / "cli").rglob("*.py")):
        mod = ".".join(f.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for node in ast.parse(f.read_text(encoding="utf-8")).body:
            if not isinstance(node, ast.FunctionDef):
                continue
            for d in node.decorator_list:
                if not (isinstance(d, ast.Call) and isinstance(d.func, ast.Attribute) and d.func.attr == "command"):
                    continue
                owner = ast.unparse(d.func.value)  # app, or <group>_app for a sub-command group
                first = d.args[0] if d.args else None
                name = first.value if isinstance(first, ast.Constant) else node.name.replace("_", "-")
                words = (name,) if owner == "app" else (owner.removesuffix("_app"), name)
                out[words] = f"{mod}:{node.name}"
    return out


def _entries(command: list[str], labels: dict[str, str], where: str) -> tuple[str, ...]:
    if command[:1] != ["xdetox"]:
        raise SystemExit(f"{where}: cannot tell what command {command} runs")
    words = [w for w in command[1:3] if not w.startswith("-")]
    cli = _cli_commands()
    target = cli.get(tuple(words[:2])) or cli.get(tuple(words[:1]))
    if target is None:
        raise SystemExit(f"{where}: `{' '.join(command)}` is no xdetox command")
    entries = ("xdetox.cli", target)
    if words[:1] == ["step"]:  # the step's kind module is resolved at run time from the manifest
        kind = labels.get(LABEL_KIND, "").replace("-", "_")
        if not (PKG / "steps" / f"{kind}.py").is_file():
            raise SystemExit(f"{where}: step kind {kind!r} has no module xdetox/steps/{kind}.py")
        entries += (f"xdetox.steps.{kind}",)
    return entries


def template_uses() -> list[TemplateUse]:
    out = []
    for wf_path in sorted((ROOT / "argo").glob("*/workflow.yaml")):
        rel = str(wf_path.relative_to(ROOT))
        wf = yaml.safe_load(wf_path.read_text(encoding="utf-8"))
        for t in wf["spec"]["templates"]:
            c = t.get("container") or t.get("script")
            if c is None:
                continue
            labels = (t.get("metadata") or {}).get("labels") or {}
            where = f"{rel}: template {t['name']}"
            if LABEL_IMAGE not in labels:
                raise SystemExit(f"{where}: no {LABEL_IMAGE} label")
            command = list(c.get("command") or [])
            out.append(TemplateUse(rel, t["name"], labels[LABEL_IMAGE], tuple(command),
                                   _entries(command, labels, where)))
    return out


@cache
def _module_dists() -> dict[str, list[str]]:
    out = {k: [lockgen.norm(d) for d in v] for k, v in metadata.packages_distributions().items()}
    out.setdefault("vllm", ["vllm"])  # not in the project venv: vLLM's image provides it
    return out


def image_dists(image: str) -> set[str]:
    """Distributions an image holds: its lock, its base's pins, what its base provides."""
    text = (lockgen.IMAGES_DIR / image / "requirements.lock").read_text(encoding="utf-8")
    have = {line.split("==")[0] for line in text.splitlines() if line and not line.startswith("#")}
    return have | set(lockgen.base_pins(image)) | {lockgen.norm(p) for p in lockgen.ROLES[image].provided} | {"xdetox"}


def static_problems() -> list[str]:
    problems = []
    dists = _module_dists()
    for use in template_uses():
        if use.image not in lockgen.ROLES:
            problems.append(f"{use.where()}: no such image")
            continue
        have = image_dists(use.image)
        for top, importer in third_party(use.entries).items():
            owners = dists.get(top)
            if not owners:
                problems.append(f"{use.where()}: {importer} imports {top!r}, which no known distribution provides")
            elif not set(owners) & have:
                problems.append(f"{use.where()}: {importer} imports {top!r} ({owners[0]}), missing from the image")
    return problems


def _pip(py: str, *args: str, timeout: int = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run([py, "-m", "pip", *args], capture_output=True, text=True, timeout=timeout)


def resolve_problems(image: str) -> list[str]:
    """Resolve lock + base pins + xdetox without installing: must work and add nothing."""
    base = lockgen.base_pins(image)
    with tempfile.TemporaryDirectory() as tmp:
        pins = Path(tmp) / "base.txt"
        pins.write_text("".join(f"{k}=={v}\n" for k, v in base.items()) or f"torch=={lockgen.TORCH_VERSION}\n")
        report = Path(tmp) / "report.json"
        res = _pip(sys.executable, "install", "--dry-run", "--ignore-installed", "--quiet", "--report", str(report),
                   "-r", str(pins), "-r", str(lockgen.IMAGES_DIR / image / "requirements.lock"), str(ROOT))
        if res.returncode != 0:
            tail = "\n".join(x for x in res.stderr.splitlines() if not x.startswith("WARNING: Location"))[-2000:]
            return [f"image {image}: lock does not resolve against its base:\n{tail}"]
        got = {lockgen.norm(i["metadata"]["name"]) for i in json.loads(report.read_text())["install"]}
    extra = sorted(got - image_dists(image))
    return [f"image {image}: resolving pulls in {p}, which the lock lacks" for p in extra]


def venv_problems(image: str, workdir: Path, uses: list[TemplateUse]) -> list[str]:
    """Build the image's env as a venv (CPU torch for CUDA torch) and run each template's imports."""
    venv = workdir / f"venv-{image}"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = str(venv / "bin" / "python")
    lockf = str(lockgen.IMAGES_DIR / image / "requirements.lock")
    steps = [  # the Dockerfile's order: torch within the lock's pins, then the lock, then xdetox
        ("install", "--quiet", "-c", lockf, f"torch=={lockgen.TORCH_VERSION}"),
        ("install", "--quiet", "--no-deps", "-r", lockf),
        ("install", "--quiet", "--no-deps", str(ROOT)),
        ("check",),
    ]
    for args in steps:
        res = _pip(py, *args)
        if res.returncode != 0:
            return [f"image {image}: pip {' '.join(args[:1])} failed:\n{(res.stdout + res.stderr)[-2000:]}"]
    problems = []
    for use in uses:
        mods = [*(e.partition(":")[0] for e in use.entries), *third_party(use.entries)]
        code = "import importlib, sys\nfor m in sys.argv[1:]:\n    importlib.import_module(m)\n"
        res = subprocess.run([py, "-c", code, *mods], capture_output=True, text=True, timeout=600, cwd=workdir,
                             env={"PATH": f"{venv}/bin", "HF_HUB_OFFLINE": "1", "HOME": str(workdir)})
        if res.returncode != 0:
            problems.append(f"{use.where()}: import failed: {res.stderr.strip().splitlines()[-1:]}")
            continue
        res = subprocess.run([str(venv / "bin" / use.command[0]), *use.command[1:], "--help"],
                             capture_output=True, text=True, timeout=300, cwd=workdir,
                             env={"PATH": f"{venv}/bin", "HOME": str(workdir)})
        if res.returncode != 0:
            problems.append(f"{use.where()}: `{' '.join(use.command)} --help` failed: {res.stderr[-500:]}")
    return problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="images-check: can each image run every template that uses it?")
    ap.add_argument("--static", action="store_true", help="only compare imports with the locks (seconds)")
    ap.add_argument("--image", action="append", choices=sorted(lockgen.ROLES), help="default: all")
    ap.add_argument("--modules", choices=sorted(lockgen.ROLES),
                    help="print the modules the image's templates import (for images/build.sh to import in the image)")
    args = ap.parse_args(argv)
    uses = template_uses()
    if args.modules:
        mods: set[str] = set()
        for use in uses:
            if use.image == args.modules:
                mods |= {e.partition(":")[0] for e in use.entries} | set(third_party(use.entries))
        print(" ".join(sorted(mods)))
        return 0
    problems = static_problems()
    images = args.image or sorted(lockgen.ROLES)
    print(f"{len(uses)} templates in {len({u.workflow for u in uses})} workflows; static import check: "
          f"{len(problems)} problem(s)")
    if not args.static:
        with tempfile.TemporaryDirectory(prefix="images-check-") as tmp:
            for image in images:
                t0 = time.monotonic()
                found = resolve_problems(image)
                mine = [u for u in uses if u.image == image]
                if not found and image != "generate":  # vLLM's CUDA wheels cannot run here: resolved only
                    found = venv_problems(image, Path(tmp), list({(u.template, u.entries): u for u in mine}.values()))
                print(f"image {image}: {len(mine)} template uses, {len(found)} problem(s), "
                      f"{time.monotonic() - t0:.0f}s")
                problems += found
    for p in problems:
        print(f"FAIL {p}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
