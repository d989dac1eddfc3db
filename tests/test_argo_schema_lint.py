"""Argo's JSON schema (vendored, made strict at load time) and the semantic lint, with negative cases."""

from __future__ import annotations

import copy
import hashlib
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from tests.argo_fixtures import ROOT, dag, rendered, templates
from xdetox.executors.argo import goldens, lint, schema

GOLDENS = sorted((ROOT / "argo").glob("*/workflow.yaml")) + sorted((ROOT / goldens.CHART_TEMPLATES).glob("*.yaml"))
# sha256 of the upstream file: the vendored copy is never edited (patches are applied in memory)
UPSTREAM_SHA256 = hashlib.sha256(
    (ROOT / "xdetox/data/schemas/argo-workflows-v4.1.2.schema.json").read_bytes()).hexdigest()


_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@cache
def _golden(path: Path) -> dict[str, Any]:
    return yaml.load(path.read_text(), Loader=_LOADER)  # noqa: S506 - a safe loader (libyaml's)


def _wf() -> dict[str, Any]:
    return copy.deepcopy(rendered("jobs/smoke.yaml"))


def test_vendored_schema_is_upstream_with_its_licence() -> None:
    shared = Path(__file__).resolve().parents[2] / "shared" / "schemas" / "argo-workflows-v4.1.2.schema.json"
    if shared.exists():  # where the upstream copy is at hand, the vendored file must equal it
        assert hashlib.sha256(shared.read_bytes()).hexdigest() == UPSTREAM_SHA256
    assert "Apache License" in (ROOT / "xdetox/data/schemas/LICENSE-argo-workflows").read_text()


@pytest.mark.parametrize("path", [p for p in GOLDENS if p.name == "workflow.yaml"], ids=lambda p: p.parent.name)
def test_every_golden_manifest_is_schema_valid_and_lint_clean(path: Path) -> None:
    manifest = _golden(path)
    assert schema.errors(manifest) == []
    assert lint.lint(manifest) == []
    # the job's WorkflowTemplate (the chart's copy) has the same spec (validated above); check the rest of it
    wt = copy.deepcopy(_golden(ROOT / goldens.template_path(path.parent.name)))
    assert wt["spec"] == manifest["spec"]
    wt["spec"]["templates"][0]["dag"]["tasks"] = wt["spec"]["templates"][0]["dag"]["tasks"][:3]
    assert schema.errors(wt) == [] and lint.lint(wt) == []


def test_goldens_exist_for_workflow_and_template() -> None:
    kinds = {_golden(p)["kind"] for p in GOLDENS}
    assert kinds == {"Workflow", "WorkflowTemplate"}


def test_patch_accepts_integers_for_int_or_string() -> None:
    wf = _wf()
    rs = templates(wf)["step-generate"]["retryStrategy"]
    rs["limit"] = 3
    templates_list = wf["spec"]["templates"]
    gen = next(t for t in templates_list if t["name"] == "step-generate")
    gen["container"]["resources"]["requests"]["nvidia.com/gpu"] = 1
    assert schema.errors(wf) == []
    raw = schema.load_raw()
    raw["$ref"] = "#/definitions/io.argoproj.workflow.v1alpha1.Workflow"
    raw.pop("oneOf")
    unpatched = list(Draft202012Validator(raw).iter_errors(wf))
    assert unpatched, "upstream schema rejects integers there: the patch is what makes them pass"


def test_patch_rejects_unknown_keys() -> None:
    wf = _wf()
    wf["spec"]["podGc"] = {"strategy": "OnPodSuccess"}  # misspelt: the controller would ignore it
    gen = next(t for t in wf["spec"]["templates"] if t["name"] == "step-generate")
    gen["container"]["imagePullPolicyy"] = "Always"
    errs = schema.errors(wf)
    assert any("podGc" in e for e in errs) and any("imagePullPolicyy" in e for e in errs)
    raw = schema.load_raw()
    raw["$ref"] = "#/definitions/io.argoproj.workflow.v1alpha1.Workflow"
    raw.pop("oneOf")
    # upstream only complains about integers in IntOrString fields (the patch's other half), never the typos
    upstream = [e.message for e in Draft202012Validator(raw).iter_errors(wf)]
    assert not [e for e in upstream if "podGc" in e or "imagePullPolicyy" in e], "upstream schema is lax"
    assert all("is not of type 'string'" in e for e in upstream), upstream


def test_schema_rejects_wrong_types_and_unknown_kind() -> None:
    wf = _wf()
    wf["spec"]["parallelism"] = "many"
    assert any(e.startswith("spec.parallelism") for e in schema.errors(wf))
    assert schema.errors({"kind": 3}) == ["kind: missing or not a string"]
    with pytest.raises(ValueError, match="unknown Argo kind"):
        schema.errors({"kind": "Pod"})


# --------------------------------------------------------------------------- semantic lint, rule by rule
def _rule(problems: list[str], rule: str) -> list[str]:
    return [p for p in problems if p.startswith(f"[{rule}]")]


def test_lint_entrypoint() -> None:
    wf = _wf()
    wf["spec"]["entrypoint"] = "mian"
    assert _rule(lint.lint(wf), "entrypoint")


def test_lint_unique_template_names() -> None:
    wf = _wf()
    wf["spec"]["templates"].append(copy.deepcopy(wf["spec"]["templates"][1]))
    assert _rule(lint.lint(wf), "unique-template")


def test_lint_unique_task_names() -> None:
    wf = _wf()
    tasks = dag(wf)
    tasks.append(copy.deepcopy(tasks[1]))
    assert _rule(lint.lint(wf), "unique-task")


def test_lint_dependency_names_an_existing_task() -> None:
    wf = _wf()
    dag(wf)[1]["dependencies"] = ["publish", "no-such-task"]
    assert "no-such-task" in " ".join(_rule(lint.lint(wf), "dependency"))
    wf = _wf()
    dag(wf)[1].pop("dependencies")
    dag(wf)[1]["depends"] = "publish.Succeeded && ghost"
    problems = _rule(lint.lint(wf), "dependency")
    assert len(problems) == 1 and "ghost" in problems[0]


def test_lint_cycle() -> None:
    wf = _wf()
    tasks = dag(wf)
    tasks[0]["dependencies"] = [tasks[-1]["name"]]
    assert _rule(lint.lint(wf), "cycle")


def test_lint_task_template_exists() -> None:
    wf = _wf()
    dag(wf)[0]["template"] = "pubish"
    assert _rule(lint.lint(wf), "task-template")


def test_lint_workflow_parameter_declared() -> None:
    wf = _wf()
    wf["spec"]["arguments"]["parameters"] = [p for p in wf["spec"]["arguments"]["parameters"] if p["name"] != "store"]
    assert "workflow.parameters.store" in " ".join(_rule(lint.lint(wf), "param-workflow"))


def test_lint_input_parameter_declared() -> None:
    wf = _wf()
    templates(wf)["step-train"]["container"]["args"] = ["{{inputs.parameters.manifest}}"]
    assert "manifest" in " ".join(_rule(lint.lint(wf), "param-input"))


def test_lint_task_arguments_match_inputs() -> None:
    wf = _wf()
    task = next(t for t in dag(wf) if t["template"] == "step-train")
    task["arguments"]["parameters"] = [{"name": "kee", "value": "x"}]
    problems = _rule(lint.lint(wf), "task-args")
    assert any("'key'" in p and "not passed" in p for p in problems)
    assert any("'kee'" in p and "does not declare" in p for p in problems)


def test_lint_item_without_fan_out() -> None:
    wf = _wf()
    task = next(t for t in dag(wf) if "withItems" in t)
    task.pop("withItems")
    assert _rule(lint.lint(wf), "item")


def test_hera_alone_does_not_catch_these() -> None:
    """Why the lint exists: Hera builds a workflow with a dangling dependency without complaint."""
    from hera.workflows import DAG, Container, Task, Workflow

    wf = Workflow(name="x", entrypoint="nope", templates=[
        Container(name="c", image="busybox:1.37.0"),
        DAG(name="d", tasks=[Task(name="a", template="c", dependencies=["ghost"])]),
    ]).to_dict()
    problems = lint.lint(wf)
    assert _rule(problems, "entrypoint") and _rule(problems, "dependency")
