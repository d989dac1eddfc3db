"""Golden Argo manifests for every spec in jobs/, each stored once, checked by tests.

For each ``jobs/<name>.yaml``, rendered with ``argo/cluster-config.yaml``: the Workflow in
``argo/<name>/workflow.yaml`` and the WorkflowTemplate in the Helm chart,
``charts/xdetox/files/workflowtemplates/<name>.yaml`` (the chart installs it, and Helm's ``.Files``
reads only files inside the chart, so that is where the one copy lives). Each
``jobs/checks/<name>.yaml`` (a scorer check) likewise as ``check-<name>``. A spec with a
``jobs/<name>-reference.json`` is a nightly reproduction: it writes to a fresh root per workflow
and ends with a ``check-nightly`` task.

Regenerate: ``xdetox argo render-goldens`` (or ``python -m xdetox.executors.argo.goldens``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

from xdetox.executors.argo.config import ClusterConfig, load_cluster_config
from xdetox.executors.argo.render import RenderOptions, render, render_template
from xdetox.executors.argo.scorer_check import load_job, render_check, render_check_template
from xdetox.plan import plan as make_plan
from xdetox.spec import load_spec

REGENERATE = "xdetox argo render-goldens  (or: python -m xdetox.executors.argo.goldens)"
CHART_TEMPLATES = Path("charts/xdetox/files/workflowtemplates")
WORKFLOWS = Path("argo")


def workflow_path(name: str) -> Path:
    """The golden Workflow of job ``name`` (relative to the repository root)."""
    return WORKFLOWS / name / "workflow.yaml"


def template_path(name: str) -> Path:
    """The golden WorkflowTemplate of job ``name``: the chart's copy, the only one."""
    return CHART_TEMPLATES / f"{name}.yaml"


def repo_root() -> Path:
    return Path(__file__).resolve().parents[3]


def dump(obj: object, source: str) -> str:
    header = f"# Generated from {source} by `{REGENERATE.split('  ')[0]}`. Do not edit.\n"
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml: ~10x faster on the big specs
    return header + yaml.dump(obj, Dumper=dumper, sort_keys=False, width=120, allow_unicode=True)


def options_for(spec_path: Path) -> RenderOptions:
    ref = spec_path.with_name(f"{spec_path.stem}-reference.json")
    if ref.exists():
        return RenderOptions(fresh_root=True, reference_json=ref.read_text(encoding="utf-8"))
    return RenderOptions()


def job_specs(root: Path) -> list[Path]:
    return sorted(p for p in (root / "jobs").glob("*.yaml"))


def check_jobs(root: Path) -> list[Path]:
    return sorted(p for p in (root / "jobs" / "checks").glob("*.yaml"))


def expected(root: Path, cfg: ClusterConfig | None = None) -> dict[Path, str]:
    """Every golden file (path relative to ``root``) and its content."""
    cfg = cfg or load_cluster_config(root / WORKFLOWS / "cluster-config.yaml")
    out: dict[Path, str] = {}
    for spec_path in job_specs(root):
        spec = load_spec(spec_path)
        plan = make_plan(spec)
        opts = options_for(spec_path)
        source = f"jobs/{spec_path.name}"
        out[workflow_path(spec_path.stem)] = dump(render(plan, spec, cfg, opts), source)
        out[template_path(spec_path.stem)] = dump(render_template(plan, spec, cfg, opts), source)
    for job_path in check_jobs(root):  # scorer checks: one pod each (xdetox argo submit-check)
        job = load_job(job_path)
        source = f"jobs/checks/{job_path.name}"
        out[workflow_path(f"check-{job_path.stem}")] = dump(render_check(job, cfg), source)
        out[template_path(f"check-{job_path.stem}")] = dump(render_check_template(job, cfg), source)
    return out


def managed(root: Path) -> list[Path]:
    """Golden files now on disk (to find stale ones, such as a second copy of a template in argo/)."""
    found = [p.relative_to(root) for p in (root / WORKFLOWS).glob("*/*.yaml")]
    found += [p.relative_to(root) for p in (root / CHART_TEMPLATES).glob("*.yaml")]
    return sorted(found)


def differences(root: Path) -> list[str]:
    want = expected(root)
    problems = []
    for rel, text in want.items():
        p = root / rel
        if not p.exists():
            problems.append(f"{rel}: missing")
        elif p.read_text(encoding="utf-8") != text:
            problems.append(f"{rel}: differs from what the code renders")
    for rel in managed(root):
        if rel not in want:
            problems.append(f"{rel}: stale (no spec in jobs/ renders it)")
    return problems


def write(root: Path) -> list[Path]:
    want = expected(root)
    for rel in managed(root):
        if rel not in want:
            (root / rel).unlink()
    changed = []
    for rel, text in want.items():
        p = root / rel
        if not p.exists() or p.read_text(encoding="utf-8") != text:
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(text, encoding="utf-8")
            changed.append(rel)
    return changed


def main() -> int:
    changed = write(repo_root())
    for rel in changed:
        print(f"wrote {rel}")
    print(f"{len(changed)} file(s) changed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
