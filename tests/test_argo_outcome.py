"""The onExit handler's record: what Argo passes in, what lands in the store."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from xdetox.cli import app

# {{workflow.failures}} as Argo renders it: a JSON list of the failed nodes
FAILURES = json.dumps([
    {"displayName": "generate-1(3)", "message": "OOMKilled (exit code 137)", "templateName": "step-generate",
     "phase": "Failed", "podName": "run-x-step-generate-123", "finishedAt": "2026-12-04T10:00:00Z"},
    {"displayName": "score-1(0)", "message": "Error (exit code 1)", "templateName": "step-score", "phase": "Error"},
])


def _invoke(tmp_path: Path, *extra: str) -> tuple[int, str]:
    res = CliRunner().invoke(app, ["argo", "record-outcome", "--store", tmp_path.as_uri(), "--run", "smoke",
                                   "--workflow", "smoke-abcde", *extra])
    return res.exit_code, res.output


def test_failed_workflow_records_its_failures(tmp_path: Path) -> None:
    code, out = _invoke(tmp_path, "--status", "Failed", "--failures", FAILURES, "--duration", "612.5")
    assert code == 0, out
    rec = json.loads((tmp_path / "runs/smoke/outcomes/smoke-abcde.json").read_text())
    assert rec["status"] == "Failed" and rec["workflow"] == "smoke-abcde"
    assert rec["failed_nodes"] == 2 and rec["duration_s"] == 612.5
    assert rec["failures"][0]["message"] == "OOMKilled (exit code 137)"
    assert rec["failures"][1] == {"displayName": "score-1(0)", "message": "Error (exit code 1)",
                                  "templateName": "step-score", "phase": "Error"}


def test_succeeded_workflow_and_unreplaced_placeholder(tmp_path: Path) -> None:
    # with nothing failed Argo may leave the parameter empty (or unreplaced): no failures, no crash
    code, out = _invoke(tmp_path, "--status", "Succeeded", "--failures", "{{workflow.failures}}")
    assert code == 0, out
    rec = json.loads((tmp_path / "runs/smoke/outcomes/smoke-abcde.json").read_text())
    assert rec["status"] == "Succeeded" and rec["failures"] == [] and rec["duration_s"] is None


def test_failures_that_are_not_json_are_kept_as_text(tmp_path: Path) -> None:
    code, _ = _invoke(tmp_path, "--status", "Error", "--failures", "workflow exceeded activeDeadlineSeconds")
    assert code == 0
    rec = json.loads((tmp_path / "runs/smoke/outcomes/smoke-abcde.json").read_text())
    assert rec["failures"] == [{"message": "workflow exceeded activeDeadlineSeconds"}]
