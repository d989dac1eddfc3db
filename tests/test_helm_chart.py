"""The Helm chart: lint and render (helm-python-sdk, Helm v4), every object validated, values checked."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import helm_python as helm
import jsonschema
import kubernetes_validate
import pytest
import yaml

from xdetox.executors.argo import lint, schema

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT / "charts" / "xdetox"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))
K8S_VERSION = kubernetes_validate.utils.latest_version()
ARGO_KINDS = {"Workflow", "WorkflowTemplate", "CronWorkflow"}


_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@cache
def _render_json(values_json: str) -> str:
    with helm.Chart.load(str(CHART)) as chart:
        files = chart.render(json.loads(values_json), name="xdetox", namespace="ml", is_install=True)
    docs = []
    for path, text in files.items():
        if path.endswith(".yaml"):
            docs += [d for d in yaml.load_all(text, Loader=_LOADER) if d]  # noqa: S506 - libyaml's safe loader
    return json.dumps(docs)


def _render(values: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The chart's objects for ``values`` (cached: tests get fresh copies)."""
    return json.loads(_render_json(json.dumps(values)))


def _by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def _values(path: Path | None) -> dict[str, Any] | None:
    return yaml.safe_load(path.read_text()) if path else None


def test_chart_lints_clean() -> None:
    res = helm.lint(str(CHART))
    assert res["errors"] == []
    assert not [m for m in res["messages"] if m["severity"] > 1], res["messages"]  # info only
    for f in CI_VALUES:
        res = helm.lint(str(CHART), _values(f))
        assert res["errors"] == [], (f, res)


def test_at_least_two_ci_scenarios() -> None:
    assert len(CI_VALUES) >= 2


@pytest.mark.parametrize("values_file", [None, *CI_VALUES], ids=lambda p: p.name if p else "default")
def test_every_rendered_object_validates(values_file: Path | None) -> None:
    docs = _render(_values(values_file))
    assert docs
    for d in docs:
        if d["kind"] in ARGO_KINDS:
            assert schema.errors(d) == [], (d["kind"], d["metadata"]["name"])
            assert lint.lint(d) == []
        else:
            kubernetes_validate.validate(d, K8S_VERSION, strict=True)
        assert d["metadata"]["namespace"] == "ml"


def test_default_install() -> None:
    docs = _render(None)
    kinds = sorted(d["kind"] for d in docs)
    assert kinds == sorted(["ServiceAccount", "Role", "RoleBinding", "ConfigMap", "ConfigMap", "CronWorkflow",
                            "WorkflowTemplate", "WorkflowTemplate"])
    names = {d["metadata"]["name"] for d in _by_kind(docs, "WorkflowTemplate")}
    assert names == {"xdetox-smoke", "xdetox-nightly"}
    sem = next(d for d in docs if d["metadata"]["name"] == "xdetox-semaphores")
    assert sem["data"] == {"gpu-pods": "8", "perspective-api": "1"}


def test_rbac_is_least_privilege() -> None:
    docs = _render(None)
    (role,) = _by_kind(docs, "Role")
    assert role["rules"] == [{"apiGroups": ["argoproj.io"], "resources": ["workflowtaskresults"],
                              "verbs": ["create", "patch"]}]
    (binding,) = _by_kind(docs, "RoleBinding")
    (sa,) = _by_kind(docs, "ServiceAccount")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": sa["metadata"]["name"], "namespace": "ml"}]
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert not _by_kind(docs, "ClusterRole") and not _by_kind(docs, "Secret")


def test_cronworkflow_for_nightly() -> None:
    docs = _render(None)
    (nightly,) = [d for d in _by_kind(docs, "WorkflowTemplate") if d["metadata"]["name"] == "xdetox-nightly"]
    tasks = {t["name"]: t for t in nightly["spec"]["templates"][0]["dag"]["tasks"]}
    assert "check-nightly" in tasks, "the nightly template ends with the reference check"
    (cron,) = _by_kind(docs, "CronWorkflow")
    spec = cron["spec"]
    assert spec["concurrencyPolicy"] == "Forbid" and spec["timezone"] == "UTC"
    assert spec["successfulJobsHistoryLimit"] == 7 and spec["failedJobsHistoryLimit"] == 14
    assert spec["workflowSpec"]["workflowTemplateRef"] == {"name": "xdetox-nightly"}
    assert spec["workflowSpec"]["arguments"]["parameters"] == [{"name": "store", "value": "s3://xdetox-runs/nightly"}]


def test_values_reach_the_workflow_templates() -> None:
    values = _values(CHART / "ci" / "gpu-cluster-values.yaml")
    assert values is not None
    docs = _render(values)
    wts = {d["metadata"]["name"]: d for d in _by_kind(docs, "WorkflowTemplate")}
    assert set(wts) == {"xdetox-smoke", "xdetox-nightly", "xdetox-pref-tuning-xling", "xdetox-breaking-mbad"}
    reg, tag = values["images"]["registry"], values["images"]["tag"]
    for wt in wts.values():
        params = {p["name"]: p["value"] for p in wt["spec"]["arguments"]["parameters"]}
        assert params["store"] == values["store"]["uri"]
        for t in wt["spec"]["templates"]:
            if "container" in t:
                kind = t["metadata"]["labels"]["xdetox.io/image"]
                assert t["container"]["image"] == f"{reg}/xdetox-{kind}@{tag}"
                secrets = {e["valueFrom"]["secretKeyRef"]["name"] for e in t["container"]["env"]
                           if e["name"].startswith("AWS_")}
                assert secrets == {"minio-xdetox"}
    store_cm = next(d for d in docs if d["metadata"]["name"] == "xdetox-store")
    assert store_cm["data"]["XDETOX_S3_ENDPOINT_URL"] == values["store"]["endpointUrl"]
    assert store_cm["data"]["XDETOX_S3_ADDRESSING_STYLE"] == "path"
    assert not any("secret" in k.lower() for k in store_cm["data"])


def test_rendered_dag_is_the_golden_dag() -> None:
    """The chart installs the rendered WorkflowTemplates' DAGs unchanged."""
    (wt,) = [d for d in _by_kind(_render(None), "WorkflowTemplate") if d["metadata"]["name"] == "xdetox-smoke"]
    golden = yaml.safe_load((CHART / "files/workflowtemplates/smoke.yaml").read_text())
    assert wt["spec"]["templates"][0] == golden["spec"]["templates"][0]


def test_no_nightly_scenario() -> None:
    docs = _render(_values(CHART / "ci" / "no-nightly-values.yaml"))
    assert not _by_kind(docs, "CronWorkflow") and not _by_kind(docs, "ServiceAccount")
    (wt,) = _by_kind(docs, "WorkflowTemplate")
    assert wt["spec"]["serviceAccountName"] == "ml-workflows"


@pytest.mark.parametrize(
    ("patch", "where"),
    [
        ({"images": {"registry": "ghcr.io/xdetox", "tag": "latest"}}, "tag"),
        ({"store": {"uri": "file:///data", "region": "us-east-1", "credentialsSecret": "s"}}, "uri"),
        ({"gpu": {"maxConcurrentPods": 0}}, "maxConcurrentPods"),
        ({"nightly": {"enabled": True, "schedule": "daily", "timezone": "UTC", "store": "s3://b/n"}}, "schedule"),
        ({"nightly": {"enabled": True, "schedule": "0 3 * * *", "timezone": "Europe/Berlin", "store": "s3://b/n"}},
         "timezone"),
        ({"replicaCount": 3}, "replicaCount"),
        ({"roles": {"scorer-gpu": {"nodeSelector": {"a": "b"}}}}, "scorer-gpu"),  # no such role
        ({"roles": {"train": {"resources": {"memory": "-4Gi"}}}}, "memory"),  # negative
        ({"roles": {"cpu": {"nodeSelektor": {"a": "b"}}}}, "nodeSelektor"),
        ({"images": {"registry": "r.example", "tag": "1", "train": {"digest": "sha256:abc"}}}, "digest"),
    ],
)
def test_bad_values_fail_schema_validation(patch: dict[str, Any], where: str) -> None:
    with helm.Chart.load(str(CHART)) as chart:
        values = {**chart.values, **patch}
        with pytest.raises(helm.HelmError) as e:
            chart.validate_schema(values)
    assert where in str(e.value)
    # and the same file is a valid JSON schema that rejects it independently of Helm
    js = json.loads((CHART / "values.schema.json").read_text())
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(values, js)


def test_default_and_ci_values_pass_the_schema() -> None:
    with helm.Chart.load(str(CHART)) as chart:
        chart.validate_schema(chart.values)
        for f in CI_VALUES:
            chart.validate_schema(chart.merge_values(_values(f)))


def test_nightly_needs_its_template() -> None:
    with helm.Chart.load(str(CHART)) as chart, pytest.raises(helm.HelmError, match="nightly"):
        chart.render({"workflowTemplates": {"install": ["smoke"]}}, name="x", namespace="ml")


def test_unknown_template_fails_with_its_name() -> None:
    with helm.Chart.load(str(CHART)) as chart, pytest.raises(helm.HelmError, match="no-such-job"):
        chart.render({"workflowTemplates": {"install": ["nightly", "no-such-job"]}}, name="x", namespace="ml")


def _containers(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [t for wt in _by_kind(docs, "WorkflowTemplate") for t in wt["spec"]["templates"] if "container" in t]


def _role(t: dict[str, Any]) -> str:
    return t["metadata"]["labels"]["xdetox.io/role"]


def test_gke_example_roles_digests_workload_identity_and_hub_token() -> None:
    docs = _render(_values(CHART / "ci" / "gke-values.yaml"))
    (sa,) = _by_kind(docs, "ServiceAccount")
    assert sa["metadata"]["annotations"] == {"iam.gke.io/gcp-service-account": "xdetox@ml-project.iam.gserviceaccount.com"}
    assert all(wt["spec"]["archiveLogs"] is True for wt in _by_kind(docs, "WorkflowTemplate"))
    ts = _containers(docs)
    assert {_role(t) for t in ts} >= {"train", "generate", "cpu"}
    for t in ts:
        image = t["metadata"]["labels"]["xdetox.io/image"]
        digit = {"train": "1", "generate": "2", "score": "3"}[image]
        assert t["container"]["image"] == (
            f"europe-west4-docker.pkg.dev/ml-project/xdetox/xdetox-{image}@sha256:{digit * 64}")
        env = {e["name"]: e for e in t["container"]["env"]}
        assert not {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} & set(env)  # workload identity
        assert env["HF_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": "hf-token", "key": "token"}
        if _role(t) == "train":
            assert t["nodeSelector"] == {"cloud.google.com/gke-accelerator": "nvidia-h100-80gb"}
            assert t["priorityClassName"] == "xdetox-training"
            assert t["activeDeadlineSeconds"] == 4 * 24 * 3600
            assert t["container"]["resources"]["requests"]["memory"] == "200Gi"
            assert t["container"]["resources"]["limits"]["memory"] == "200Gi"
            assert t["container"]["resources"]["requests"]["cpu"] == "24"
        if _role(t) == "generate":
            assert len(t["tolerations"]) == 2 and t["nodeSelector"]["cloud.google.com/gke-spot"] == "true"
        if _role(t) == "cpu":
            assert t["nodeSelector"] == {"cloud.google.com/gke-nodepool": "default-pool"}
            assert t["activeDeadlineSeconds"] in (1800, 21600)  # as rendered: light task or cpu role
            assert "priorityClassName" not in t


def test_eks_example_pull_secrets_affinity_and_own_repository() -> None:
    docs = _render(_values(CHART / "ci" / "eks-values.yaml"))
    (sa,) = _by_kind(docs, "ServiceAccount")
    assert sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].endswith(":role/xdetox-s3")
    assert "annotations" not in _by_kind(_render(None), "ServiceAccount")[0]["metadata"]
    for wt in _by_kind(docs, "WorkflowTemplate"):
        assert wt["spec"]["imagePullSecrets"] == [{"name": "ecr-pull"}]
    ts = _containers(docs)
    gen = [t for t in ts if _role(t) == "generate"]
    assert gen
    for t in gen:
        assert t["container"]["image"] == ("123456789012.dkr.ecr.eu-central-1.amazonaws.com/xdetox/generate-vllm"
                                           "@sha256:" + "4" * 64)
        terms = t["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
        assert terms[0]["matchExpressions"][1]["values"] == ["eu-central-1a", "eu-central-1b"]
        assert t["container"]["resources"]["limits"]["memory"] == "48Gi"
        assert "HF_TOKEN" not in {e["name"] for e in t["container"]["env"]}  # no hub token configured
    train = [t for t in ts if _role(t) == "train"]
    assert train and all(t["container"]["image"].endswith("/xdetox/xdetox-train:0.1.0") for t in train)
    for t in ts:
        if _role(t) == "score-cpu":
            assert t["container"]["resources"]["requests"]["ephemeral-storage"] == "50Gi"


def test_default_values_keep_the_rendered_scheduling() -> None:
    golden = yaml.safe_load((CHART / "files/workflowtemplates/smoke.yaml").read_text())
    want = {t["name"]: t for t in golden["spec"]["templates"] if "container" in t}
    (wt,) = [d for d in _by_kind(_render(None), "WorkflowTemplate") if d["metadata"]["name"] == "xdetox-smoke"]
    assert "archiveLogs" not in wt["spec"]
    for t in wt["spec"]["templates"]:
        if "container" in t:
            g = want[t["name"]]
            assert t.get("nodeSelector") == g.get("nodeSelector") and t.get("tolerations") == g.get("tolerations")
            assert t["container"]["resources"] == g["container"]["resources"]
            assert t["container"]["env"] == g["container"]["env"]
