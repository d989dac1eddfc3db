"""Rendering a plan as an Argo Workflow: DAG shape, shard fan-out, resources, retries, security."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests import toy_steps
from tests.argo_fixtures import ROOT, cluster_config, dag, planned, rendered, simulate, templates
from xdetox.cli import app
from xdetox.executors.argo.config import ClusterConfigError, load_cluster_config
from xdetox.executors.argo.publish import PublishError, publish_from_payload, publish_manifests
from xdetox.executors.argo.render import (
    GPU_RESOURCE,
    RETRY_EXPRESSION,
    RenderOptions,
    dag_tasks,
    plan_digest,
    render,
    spec_payload,
)
from xdetox.manifest import StepManifest
from xdetox.plan import plan as make_plan
from xdetox.spec import load_spec_text
from xdetox.steps.runner import is_committed
from xdetox.store import open_store

SMOKE = "jobs/smoke.yaml"
NIGHTLY = "jobs/nightly.yaml"


@pytest.fixture
def toys():  # type: ignore[no-untyped-def]
    toy_steps.install()
    yield
    toy_steps.uninstall()


def _spec(extra: str = "", sharding: int = 3) -> str:
    return f"""
name: gpu-test
store: s3://bucket/prefix
models: [{{id: m, source: builtin:tiny}}]
training: {{method: dpo, data: {{format: paradetox, path: bundled:paradetox}}}}
prompts: [{{id: p, source: bundled:xling-prompts-200, languages: [en, de]}}]
sharding: {{generate: {sharding}}}
resources:
  train: {{gpu: 2, cpu: "8", memory: 64Gi}}
  generate: {{gpu: 1, cpu: "4", memory: 32Gi}}
  score: {{gpu: 0, cpu: "2", memory: 8Gi}}
{extra}
"""


def _render_text(text: str, **kw: Any) -> tuple[dict[str, Any], Any]:
    spec = load_spec_text(text)
    p = make_plan(spec)
    return render(p, spec, cluster_config(), **kw), p


def test_one_task_per_step_and_one_per_shard_group() -> None:
    wf, p = _render_text(_spec())
    tasks = {t["name"]: t for t in dag(wf)}
    by_key = p.by_key()
    covered: list[str] = []
    for t in tasks.values():
        if t["name"] in {"publish"}:
            continue
        if "withItems" in t:
            items = t["withItems"]
            # fanned out over shard indices, never over prompts: one item per shard, in order
            assert [i["shard"] for i in items] == list(range(3))
            kinds = {by_key[i["key"]].kind for i in items}
            assert kinds <= {"generate", "score"} and len(kinds) == 1
            assert {by_key[i["key"]].shard.index for i in items} == {0, 1, 2}  # type: ignore[union-attr]
            assert t["arguments"]["parameters"] == [{"name": "key", "value": "{{item.key}}"}]
            covered += [i["key"] for i in items]
        else:
            key = t["arguments"]["parameters"][0]["value"]
            assert by_key[key].shard is None
            covered.append(key)
    assert sorted(covered) == sorted(by_key), "every plan step is run by exactly one task or item"
    n_groups = len({(s.kind, s.output_prefix) for s in p.steps if s.shard})
    n_single = sum(1 for s in p.steps if s.shard is None)
    assert len(tasks) == 1 + n_groups + n_single


def test_task_dependencies_follow_the_plan() -> None:
    wf, p = _render_text(_spec())
    owner = {}
    for t in dag_tasks(p):
        for k in t.keys:
            owner[k] = t.name
    tasks = {t["name"]: t for t in dag(wf)}
    for s in p.steps:
        want = {owner[d] for d in s.deps()} - {owner[s.key]}
        got = set(tasks[owner[s.key]].get("dependencies", []))
        assert want <= got
        if not s.deps():
            assert got == {"publish"}
    # a score group waits for its generate group
    score = next(t for t in dag(wf) if t["name"].startswith("score-"))
    assert all(d.startswith("generate-") for d in score["dependencies"])


def test_gpu_requests_semaphore_and_node_pools_per_kind() -> None:
    wf, _ = _render_text(_spec())
    tm = templates(wf)
    cfg = cluster_config()
    train, gen, score = tm["step-train"], tm["step-generate"], tm["step-score"]
    assert train["container"]["resources"]["limits"][GPU_RESOURCE] == "2"
    assert train["container"]["resources"]["requests"][GPU_RESOURCE] == "2"
    assert gen["container"]["resources"]["limits"][GPU_RESOURCE] == "1"
    # gpu 0: no GPU requested at all, no semaphore, CPU pool
    assert GPU_RESOURCE not in score["container"]["resources"].get("limits", {})
    assert GPU_RESOURCE not in score["container"]["resources"].get("requests", {})
    assert "synchronization" not in score
    assert score["nodeSelector"] == cfg.roles.score_cpu.node_selector == {"xdetox.io/pool": "cpu"}
    assert score["metadata"]["labels"]["xdetox.io/role"] == "score-cpu"
    assert train["metadata"]["labels"]["xdetox.io/role"] == "train"
    assert gen["metadata"]["labels"]["xdetox.io/role"] == "generate"
    assert "tolerations" not in score
    for t in (train, gen):
        sem = t["synchronization"]["semaphores"][0]["configMapKeyRef"]
        assert sem == {"name": cfg.semaphore.config_map, "key": cfg.semaphore.key}
        assert t["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
        assert t["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert gen["container"]["resources"]["requests"] == {"cpu": "4", "memory": "32Gi", GPU_RESOURCE: "1"}


def test_generate_gets_memory_backed_dev_shm() -> None:
    wf, _ = _render_text(_spec())
    gen = templates(wf)["step-generate"]
    vols = {v["name"]: v for v in gen["volumes"]}
    assert vols["dshm"]["emptyDir"]["medium"] == "Memory"
    assert {"name": "dshm", "mountPath": "/dev/shm"} in gen["container"]["volumeMounts"]
    assert "dshm" not in {v["name"] for v in templates(wf)["step-score"]["volumes"]}


def _expr_allows(expr: str, exit_code: str, status: str, message: str) -> bool:
    """Evaluate the retry expression (a small subset of expr-lang) the way Argo would."""
    py = expr.replace("&&", " and ").replace("||", " or ")
    py = re.sub(r"!\(", " not (", py)
    py = re.sub(r'lastRetry\.message matches "([^"]*)"', lambda m: repr(bool(re.search(m.group(1), message))), py)
    py = py.replace("lastRetry.exitCode", repr(exit_code)).replace("lastRetry.status", repr(status))
    return bool(eval(py, {}, {}))  # noqa: S307 - test-only, on our own constant


@pytest.mark.parametrize(
    ("exit_code", "status", "message", "retry"),
    [
        ("-1", "Error", "pod deleted", True),  # node loss / pod deleted
        ("143", "Failed", "Pod was terminated due to imminent node shutdown", True),  # spot preemption
        ("137", "Failed", "OOMKilled (exit code 137)", True),  # OOM: retried with more memory
        ("137", "Error", "OOMKilled", True),
        ("75", "Failed", "Error (exit code 75)", True),  # a step's own "transient, retry me"
        ("2", "Failed", "invalid manifest", False),  # bad manifest
        ("2", "Error", "invalid manifest", False),
        ("1", "Failed", "ValueError", False),  # a bug: retrying does not help
    ],
)
def test_retry_strategy_retries_transient_and_oom_not_bad_manifest(
    exit_code: str, status: str, message: str, retry: bool
) -> None:
    wf = rendered(SMOKE)
    rs = templates(wf)["step-generate"]["retryStrategy"]
    assert rs["expression"] == RETRY_EXPRESSION and rs["retryPolicy"] == "Always"
    assert int(rs["limit"]) == cluster_config().retry.limit
    assert _expr_allows(rs["expression"], exit_code, status, message) is retry


def test_security_context_env_and_secrets() -> None:
    wf = rendered(SMOKE)
    spec = wf["spec"]
    assert spec["securityContext"]["runAsNonRoot"] is True and spec["securityContext"]["runAsUser"] > 0
    assert spec["serviceAccountName"] == "xdetox-workflow"
    assert spec["podGC"]["strategy"] == "OnPodSuccess"
    assert spec["ttlStrategy"]["secondsAfterSuccess"] > 0 and spec["ttlStrategy"]["secondsAfterFailure"] > 0
    for t in spec["templates"]:
        if "container" not in t:
            continue
        c = t["container"]
        sc = c["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True
        assert sc["capabilities"]["drop"] == ["ALL"]
        mounts = {m["mountPath"] for m in c["volumeMounts"]}
        assert {"/tmp", "/cache"} <= mounts  # writable places on a read-only root
        assert c["envFrom"] == [{"configMapRef": {"name": "xdetox-store"}}]
        env = {e["name"]: e for e in c["env"]}
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            assert "value" not in env[name], "credentials are never inline"
            assert env[name]["valueFrom"]["secretKeyRef"]["name"] == "xdetox-s3"
        assert ":latest" not in c["image"]


def test_perspective_scoring_is_one_cpu_pod_at_a_time_for_the_whole_namespace() -> None:
    # the spec asks a GPU for score pods, but Perspective waits on the network: CPU pod, no GPU
    # permit, and the one perspective-api permit (the quota is the key's, not the pod's)
    text = _spec("scoring: {kind: perspective}").replace('score: {gpu: 0, cpu: "2"', 'score: {gpu: 1, cpu: "2"')
    score = templates(_render_text(text)[0])["step-score"]
    assert GPU_RESOURCE not in score["container"]["resources"]["requests"]
    assert score["metadata"]["labels"]["xdetox.io/role"] == "score-cpu"
    assert score["synchronization"]["semaphores"] == [
        {"configMapKeyRef": {"name": "xdetox-semaphores", "key": "perspective-api"}}]
    # with perplexity the score pod is still a CPU pod with the API permit only; perplexity runs
    # in its own GPU pod, with the GPU permit and not the API's (paper 1's spec: both at once)
    ppl = text + "metrics: {perplexity: {reference: self}}\n"
    ts = templates(_render_text(ppl)[0])
    score, perp = ts["step-score"], ts["step-perplexity"]
    assert GPU_RESOURCE not in score["container"]["resources"]["requests"]
    assert [s["configMapKeyRef"]["key"] for s in score["synchronization"]["semaphores"]] == ["perspective-api"]
    assert perp["container"]["resources"]["requests"][GPU_RESOURCE] == "1"
    assert perp["metadata"]["labels"]["xdetox.io/role"] == "score-gpu"
    assert [s["configMapKeyRef"]["key"] for s in perp["synchronization"]["semaphores"]] == ["gpu-pods"]
    assert "PERSPECTIVE_API_KEY" not in {e["name"] for e in perp["container"]["env"]}


def test_perspective_key_comes_from_a_secret() -> None:
    wf, _ = _render_text(_spec("scoring: {kind: perspective, api_key_env: MY_KEY}"))
    env = {e["name"]: e for e in templates(wf)["step-score"]["container"]["env"]}
    assert env["MY_KEY"]["valueFrom"]["secretKeyRef"] == {"name": "xdetox-perspective", "key": "api-key"}
    assert "MY_KEY" not in {e["name"] for e in templates(wf)["step-generate"]["container"]["env"]}


def test_step_containers_run_xdetox_step_on_the_manifest_uri() -> None:
    wf = rendered(SMOKE)
    for name, t in templates(wf).items():
        if name.startswith("step-"):
            assert t["container"]["command"] == ["xdetox", "step"]
            assert t["container"]["args"] == [
                "{{workflow.parameters.store}}/runs/smoke/steps/{{inputs.parameters.key}}/manifest.json"]
    params = {p["name"]: p["value"] for p in wf["spec"]["arguments"]["parameters"]}
    assert params["store"] == "s3://xdetox-runs/xdetox"
    spec, p = planned(SMOKE)
    assert params["plan-digest"] == plan_digest(p)
    assert json.loads(base64.b64decode(params["spec"]))["name"] == "smoke"


def test_workflow_template_form() -> None:
    wt = rendered(SMOKE, template=True)
    wf = rendered(SMOKE)
    assert wt["kind"] == "WorkflowTemplate" and wt["metadata"]["name"] == "xdetox-smoke"
    assert "generateName" not in wt["metadata"] and wf["metadata"]["generateName"] == "smoke-"
    assert wt["spec"] == wf["spec"]


def test_nightly_mode_fresh_root_and_final_check_task() -> None:
    opts = RenderOptions(fresh_root=True, reference_json='{"spec": "x", "source": "y", "checks": []}')
    wf = rendered(NIGHTLY, opts)
    tasks = {t["name"]: t for t in dag(wf)}
    spec, p = planned(NIGHTLY)
    report = next(t for t in dag_tasks(p) if p.report_key in t.keys)
    assert tasks["check-nightly"]["dependencies"] == [report.name]
    check = templates(wf)["check-nightly"]
    assert "retryStrategy" not in check  # a regression must fail, not be retried
    assert check["container"]["command"] == ["xdetox", "argo", "check-nightly"]
    step = templates(wf)["step-train"]["container"]["args"][0]
    assert step.startswith("{{workflow.parameters.store}}/{{workflow.name}}/runs/nightly/")


def test_file_store_is_refused_for_a_cluster() -> None:
    spec = load_spec_text(_spec().replace("s3://bucket/prefix", "file://./runs"))
    with pytest.raises(ValueError, match="s3://"):
        render(make_plan(spec), spec)


def test_cluster_config_errors_name_file_and_field(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("images:\n  tag: latest\nnamepsace: x\n")
    with pytest.raises(ClusterConfigError) as e:
        load_cluster_config(f)
    assert f"{f}:2: images.tag" in str(e.value) and f"{f}:3: namepsace" in str(e.value)


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("roles:\n  train:\n    resources:\n      memory: -4Gi\n", ":4: roles.train.resources.memory: must be a non-negative"),
        ("roles:\n  cpu: {}\n  gpu-big:\n    node_selector: {a: b}\n", ":3: roles.gpu-big: no such role"),
        ("roles:\n  score-cpu:\n    affinity: {nodeAfinity: {}}\n", ":3: roles.score-cpu.affinity"),
        ("images:\n  train: {digest: 'sha256:xyz'}\n", ":2: images.train.digest"),
        ("store:\n  sekret: x\n", ":2: store.sekret: Extra inputs"),
    ],
)
def test_bad_cluster_config_names_line_and_key(tmp_path: Path, text: str, want: str) -> None:
    f = tmp_path / "c.yaml"
    f.write_text(text)
    with pytest.raises(ClusterConfigError) as e:
        load_cluster_config(f)
    assert f"{f}{want}" in str(e.value), str(e.value)


def test_publish_manifests_writes_every_manifest(tmp_path: Path) -> None:
    spec, p = planned(SMOKE)
    rs = publish_manifests(p, open_store(tmp_path.as_uri()), spec)
    assert rs.uri.endswith("/runs/smoke")
    for s in p.steps:
        m = StepManifest.model_validate_json((tmp_path / "runs/smoke/steps" / s.key / "manifest.json").read_text())
        assert m == s
    assert (tmp_path / "runs/smoke/plan.json").exists() and (tmp_path / "runs/smoke/spec.yaml").exists()


def test_in_cluster_publish_refuses_version_skew(tmp_path: Path) -> None:
    spec, p = planned(SMOKE)
    with pytest.raises(PublishError, match="version differs"):
        publish_from_payload(tmp_path.as_uri(), spec_payload(spec), "0000000000000000")
    assert not (tmp_path / "runs").exists(), "nothing is written when the plan differs"
    res = CliRunner().invoke(app, ["argo", "publish", "--store", tmp_path.as_uri(), "--spec-b64", "not base64!"])
    assert res.exit_code == 2 and "spec" in res.output


def test_rendered_workflow_runs_end_to_end_under_a_simulated_argo(tmp_path: Path, toys: None) -> None:
    """The rendered DAG, executed pod by pod as Argo would, commits every step of the plan."""
    spec, p = planned(SMOKE)
    wf = rendered(SMOKE)
    store = tmp_path.as_uri()
    runner = CliRunner()

    def invoke(argv: list[str]) -> int:
        assert argv[0] == "xdetox"
        return runner.invoke(app, argv[1:]).exit_code

    ran = simulate(wf, {"store": store}, invoke)
    assert all(rc == 0 for _, rc in ran), ran
    rs = open_store(store).child("runs/smoke")
    assert all(is_committed(rs, s.key) for s in p.steps)
    assert len(ran) == 1 + len(p.steps)  # publish + one pod per step (shards fanned out)
    # resubmitting is idempotent: every step is skipped as committed
    again = simulate(wf, {"store": store}, invoke)
    assert all(rc == 0 for _, rc in again)


def test_simulated_nightly_fails_visibly_when_metrics_regress(tmp_path: Path, toys: None) -> None:
    ref = {"spec": "jobs/nightly.yaml", "spec_digest": "d", "xdetox_version": "0.1.0", "source": "test",
           "seeds": [1, 2, 3, 4, 5],
           "figures": [{"path": "a.b", "name": "tuned rate", "kind": "noisy", "values": [0.5] * 5}]}
    wf = rendered(NIGHTLY, RenderOptions(fresh_root=True, reference_json=json.dumps(ref)))
    runner = CliRunner()
    ran = simulate(wf, {"store": tmp_path.as_uri()}, lambda argv: runner.invoke(app, argv[1:]).exit_code,
                   workflow_name="nightly-x1")
    assert ran[-1] == ("check-nightly", 1), "toy steps write no metrics: the check must fail the workflow"
    report = (tmp_path / "nightly-x1/runs/nightly/results/nightly-check.md").read_text()
    assert "FAIL" in report and "tuned rate" in report and "missing" in report


def test_cli_render_writes_both_forms(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["argo", "render", str(ROOT / SMOKE), "-o", str(tmp_path),
                                   "--cluster-config", str(ROOT / "argo/cluster-config.yaml")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "workflow.yaml").read_text().count("kind: Workflow") == 1
    assert "kind: WorkflowTemplate" in (tmp_path / "workflowtemplate.yaml").read_text()
    bad = CliRunner().invoke(app, ["argo", "render", str(ROOT / SMOKE), "-o", str(tmp_path)])
    assert bad.exit_code == 2 and "s3://" in bad.output


def test_oom_retry_bumps_memory_per_retry() -> None:
    """podSpecPatch over Argo's ``retries``: 32Gi = 32768Mi, +50% (16384Mi) per retry."""
    wf, _ = _render_text(_spec())
    gen = templates(wf)["step-generate"]
    patch = json.loads(gen["podSpecPatch"])
    (c,) = patch["containers"]
    assert c["name"] == "main"
    expr = c["resources"]["limits"]["memory"]
    assert expr == c["resources"]["requests"]["memory"] == "{{=sprig.int(retries) * 16384 + 32768}}Mi"
    for retries, want in ((0, 32768), (1, 49152), (2, 65536)):  # 32Gi, 48Gi, 64Gi by hand
        got = eval(expr[3:-4].replace("sprig.int(retries)", str(retries)))  # noqa: S307 - our own constant
        assert got == want


def test_deadlines_fail_fast_exit_handler_and_pod_gc() -> None:
    wf, _ = _render_text(_spec())
    spec = wf["spec"]
    cfg = cluster_config()
    assert spec["activeDeadlineSeconds"] == cfg.active_deadline_s == 14 * 24 * 3600
    main = next(t for t in spec["templates"] if t["name"] == "main")
    assert main["dag"]["failFast"] is False
    tm = templates(wf)
    assert tm["step-train"]["activeDeadlineSeconds"] == 3 * 24 * 3600
    assert tm["step-generate"]["activeDeadlineSeconds"] == 2 * 24 * 3600
    assert tm["step-score"]["activeDeadlineSeconds"] == 24 * 3600
    assert tm["publish"]["activeDeadlineSeconds"] == 1800
    assert all("activeDeadlineSeconds" in t for t in tm.values() if "container" in t)
    assert spec["onExit"] == "record-outcome"
    c = tm["record-outcome"]["container"]
    assert c["command"] == ["xdetox", "argo", "record-outcome"]
    assert "{{workflow.status}}" in c["args"] and "{{workflow.failures}}" in c["args"]
    assert spec["podGC"]["strategy"] == "OnPodSuccess"
    assert "archiveLogs" not in spec  # only with an artifact repository (cluster config archive_logs)


def test_roles_pull_secrets_hub_token_and_workload_identity(tmp_path: Path) -> None:
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text(
        "images:\n  registry: r.example/ml\n  tag: '1.0'\n  pull_secrets: [regcred]\n"
        "  generate: {repository: other.example/gen, digest: 'sha256:" + "ab" * 32 + "'}\n"
        "roles:\n  generate:\n    priority_class_name: gpu-batch\n"
        "    node_selector: {cloud.google.com/gke-accelerator: nvidia-h100-80gb}\n"
        "    affinity: {nodeAffinity: {requiredDuringSchedulingIgnoredDuringExecution: {nodeSelectorTerms:"
        " [{matchExpressions: [{key: zone, operator: In, values: [a]}]}]}}}\n"
        "    resources: {memory: 80Gi, cpu: '12'}\n"
        "store: {secret: null}\nhub_token: {secret: hub, key: token}\narchive_logs: true\n"
    )
    spec = load_spec_text(_spec())
    wf = render(make_plan(spec), spec, load_cluster_config(cfg_file))
    tm = templates(wf)
    gen = tm["step-generate"]
    assert gen["priorityClassName"] == "gpu-batch"
    assert gen["nodeSelector"] == {"cloud.google.com/gke-accelerator": "nvidia-h100-80gb"}
    assert gen["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert gen["container"]["resources"]["requests"] == {"cpu": "12", "memory": "80Gi", GPU_RESOURCE: "1"}
    assert gen["container"]["image"] == "other.example/gen@sha256:" + "ab" * 32
    assert tm["step-train"]["container"]["image"] == "r.example/ml/xdetox-train:1.0"
    assert wf["spec"]["imagePullSecrets"] == [{"name": "regcred"}]
    assert wf["spec"]["archiveLogs"] is True
    for t in tm.values():
        if "container" not in t:
            continue
        env = {e["name"]: e for e in t["container"]["env"]}
        assert "AWS_ACCESS_KEY_ID" not in env and "AWS_SECRET_ACCESS_KEY" not in env
        assert env["HF_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": "hub", "key": "token"}


@pytest.mark.parametrize("spec_path", ["jobs/pref-tuning-xling.yaml", "jobs/pref-tuning-xling-5seeds.yaml"])
def test_paper1_gpu_pods_never_hold_the_perspective_permit_or_key(spec_path: str) -> None:
    """Issue 15 item 2: Perspective scoring pods are CPU pods. The neuron analysis decodes on a GPU
    and its continuations are scored by analyze_score, a CPU pod holding the API permit and key."""
    spec, _ = planned(spec_path)
    assert spec.scoring.kind == "perspective"  # paper 1 scores with Perspective
    key_env = spec.scoring.api_key_env  # type: ignore[union-attr]
    ts = templates(rendered(spec_path))
    perspective_holders = set()
    for name, t in ts.items():
        if "container" not in t:
            continue
        sems = {s["configMapKeyRef"]["key"] for s in (t.get("synchronization") or {}).get("semaphores", [])}
        env = {e["name"] for e in t["container"].get("env", [])}
        if GPU_RESOURCE in t["container"]["resources"].get("requests", {}):
            assert "perspective-api" not in sems, name
            assert key_env not in env, name
        if "perspective-api" in sems:
            perspective_holders.add(name)
    assert perspective_holders == {"step-score", "step-analyze-score"}
    analyze, scoring = ts["step-analyze"], ts["step-analyze-score"]
    assert analyze["container"]["resources"]["requests"][GPU_RESOURCE] == "1"  # it decodes: a GPU pod
    assert GPU_RESOURCE not in scoring["container"]["resources"]["requests"]
    assert scoring["metadata"]["labels"]["xdetox.io/role"] == "score-cpu"
    assert [s["configMapKeyRef"]["key"] for s in scoring["synchronization"]["semaphores"]] == ["perspective-api"]
    env = {e["name"]: e for e in scoring["container"]["env"]}
    assert env[key_env]["valueFrom"]["secretKeyRef"]["name"] == "xdetox-perspective"


def test_perspective_beside_a_gpu_classifier_scores_on_a_cpu_pod() -> None:
    """Issue 15 item 2 with several scorers: the score pod holding the Perspective permit never
    requests a GPU, even when a compare classifier (a GPU scorer on its own) shares the pod."""
    def score_template(scoring: str) -> dict[str, Any]:
        text = f"""
name: mixed
store: s3://bucket/prefix
models: [{{id: m, source: builtin:tiny}}]
training: {{method: dpo, data: {{format: paradetox, path: bundled:paradetox}}}}
prompts: [{{id: p, source: bundled:xling-prompts-200, languages: [en, de]}}]
scoring: {scoring}
"""
        return templates(_render_text(text)[0])["step-score"]

    classifier = "{kind: classifier, model: /models/xlmr-tox, toxic_label: toxic}"
    alone = score_template(classifier)  # the classifier alone: a GPU pod, no API permit
    assert alone["container"]["resources"]["requests"][GPU_RESOURCE] == "1"
    assert "perspective-api" not in str(alone.get("synchronization"))
    mixed = score_template(f"[{{kind: perspective}}, {classifier}]")
    assert GPU_RESOURCE not in mixed["container"]["resources"]["requests"]
    assert [s["configMapKeyRef"]["key"] for s in mixed["synchronization"]["semaphores"]] == ["perspective-api"]
    assert mixed["metadata"]["labels"]["xdetox.io/role"] == "score-cpu"
