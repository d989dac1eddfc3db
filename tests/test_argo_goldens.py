"""Every spec in jobs/ has its rendered Workflow in argo/ and its WorkflowTemplate in the chart,
each stored once; the code and those files must agree."""

from __future__ import annotations

import shutil
from pathlib import Path

from xdetox.executors.argo import goldens

ROOT = goldens.repo_root()


def test_goldens_match_the_code() -> None:
    diffs = goldens.differences(ROOT)
    assert not diffs, "argo/ is out of date with the code:\n  " + "\n  ".join(diffs) + \
        f"\nRegenerate with: {goldens.REGENERATE}"


def test_every_job_has_a_workflow_and_a_chart_template_stored_once() -> None:
    names = [spec.stem for spec in goldens.job_specs(ROOT)] + [f"check-{j.stem}" for j in goldens.check_jobs(ROOT)]
    assert "nightly" in names and "smoke" in names
    for name in names:
        assert (ROOT / "argo" / name / "workflow.yaml").exists()
        assert (ROOT / "charts" / "xdetox" / "files" / "workflowtemplates" / f"{name}.yaml").exists()
    # one copy of each: nothing but the Workflow under argo/<job>/
    assert sorted(p.name for p in (ROOT / "argo").glob("*/*.yaml")) == ["workflow.yaml"] * len(names)


def test_a_second_copy_of_a_template_is_stale_and_removed(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    shutil.copy(root / goldens.template_path("smoke"), root / "argo" / "smoke" / "workflowtemplate.yaml")
    assert goldens.differences(root) == ["argo/smoke/workflowtemplate.yaml: stale (no spec in jobs/ renders it)"]
    goldens.write(root)
    assert goldens.differences(root) == []
    assert not (root / "argo" / "smoke" / "workflowtemplate.yaml").exists()


def _copy(tmp: Path) -> Path:
    """A small repository: the two small jobs, their goldens and the cluster config."""
    for name in ("smoke", "nightly"):
        (tmp / "jobs").mkdir(exist_ok=True)
        for f in (ROOT / "jobs").glob(f"{name}*"):
            shutil.copy(f, tmp / "jobs" / f.name)
        shutil.copytree(ROOT / "argo" / name, tmp / "argo" / name)
        (tmp / goldens.CHART_TEMPLATES).mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / goldens.CHART_TEMPLATES / f"{name}.yaml", tmp / goldens.CHART_TEMPLATES / f"{name}.yaml")
    shutil.copy(ROOT / "argo" / "cluster-config.yaml", tmp / "argo" / "cluster-config.yaml")
    assert goldens.differences(tmp) == []
    return tmp


def test_a_changed_spec_is_detected_and_regenerated(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    spec = root / "jobs" / "smoke.yaml"
    spec.write_text(spec.read_text().replace("generate: 2", "generate: 3"))
    diffs = goldens.differences(root)
    assert any("argo/smoke/workflow.yaml" in d for d in diffs)
    changed = goldens.write(root)
    assert Path("argo/smoke/workflow.yaml") in changed
    assert goldens.differences(root) == []


def test_a_new_spec_is_covered_and_a_removed_one_is_stale(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    shutil.copy(root / "jobs" / "smoke.yaml", root / "jobs" / "extra.yaml")
    (root / "jobs" / "extra.yaml").write_text((root / "jobs" / "extra.yaml").read_text().replace(
        "name: smoke", "name: extra"))
    (root / "jobs" / "nightly.yaml").unlink()
    diffs = goldens.differences(root)
    assert any(d.startswith("argo/extra/workflow.yaml: missing") for d in diffs)
    assert any(d.startswith("argo/nightly/workflow.yaml: stale") for d in diffs)
    goldens.write(root)
    assert goldens.differences(root) == []
    assert not (root / "argo" / "nightly").exists() or not list((root / "argo" / "nightly").glob("*.yaml"))
