"""Render a plan as an Argo Workflow (and WorkflowTemplate) through Hera.

Shape of the DAG:
  publish                   writes spec, plan and manifests to the store (idempotent), and checks
                            that the image plans the spec exactly as this renderer did
  <kind>-<key>              one task per unsharded step
  <kind>-<group>            one task per shard group, fanned out with ``withItems`` over shard
                            indices (each item: shard index and that shard's step key)
  check-nightly             only when a reference is given: compares metrics, exits 1 on regression

Every step container runs ``xdetox step <store>/runs/<run-id>/steps/<key>/manifest.json``; the
runner skips committed steps, so Argo retries and resubmissions are idempotent.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

from hera.workflows import DAG, Container, Parameter, Task, Workflow, WorkflowTemplate
from hera.workflows import models as m

from xdetox.executors.argo.config import ClusterConfig, Pool
from xdetox.manifest import StepManifest, digest
from xdetox.plan import Plan
from xdetox.spec.models import ExperimentSpec, StepResources

#: which image runs which step kind (the image holds that kind's dependencies)
KIND_IMAGE: dict[str, str] = {
    "build_model": "train", "train": "train", "align": "train", "analyze": "train",
    "generate": "generate",
    "score": "score", "evaluate": "score", "report": "score",
}
#: spec.resources has entries for five kinds; the others borrow the nearest one's size
KIND_RESOURCES: dict[str, str] = {k: k for k in (
    "build_model", "train", "align", "analyze", "generate", "score", "evaluate", "report")}
#: kinds that shard: one Argo task per group, fanned out over shard indices
SHARDED = ("generate", "score")
#: kinds whose pods get a memory-backed /dev/shm (vLLM's workers; torch DataLoader workers)
SHM_KINDS = ("generate", "train")
EXIT_BAD_INPUT = "2"  # xdetox step: bad manifest / bad input (not worth retrying)

# Retry what a retry can fix (preemption, node loss, a deleted pod: status Error, or SIGTERM 143),
# never an OOM kill (137) or a bad manifest (2): those fail the same way every time.
RETRY_EXPRESSION = (
    '!(lastRetry.exitCode in ["2", "137"]) && !(lastRetry.message matches "OOMKilled") && '
    '(lastRetry.status == "Error" || lastRetry.exitCode in ["143", "-1"] || '
    'lastRetry.message matches "imminent node shutdown|pod deleted|node .* (lost|not ready)|preempt")'
)

GPU_RESOURCE = "nvidia.com/gpu"
LABEL_KIND = "xdetox.io/step-kind"
LABEL_IMAGE = "xdetox.io/image"
LABEL_RUN = "xdetox.io/run-id"


@dataclass(frozen=True)
class DagTask:
    """One DAG task: a step, or a shard group (items non-empty)."""

    name: str
    kind: str
    keys: list[str]
    deps: list[str]
    items: list[dict[str, Any]] = field(default_factory=list)


def plan_digest(plan: Plan) -> str:
    """What the publish task checks: the image must plan the spec into exactly these steps."""
    return digest({"run_id": plan.run_id, "steps": [s.key for s in plan.steps]})


def task_name(step: StepManifest) -> str:
    kind = step.kind.replace("_", "-")
    if step.kind in SHARDED and step.shard is not None:
        return f"{kind}-{step.output_prefix.rsplit('/', 1)[-1][:16]}"
    return f"{kind}-{step.key}"


def dag_tasks(plan: Plan) -> list[DagTask]:
    """Group the plan's steps into DAG tasks, in plan order, with task-level dependencies."""
    owner: dict[str, str] = {}
    order: list[str] = []
    members: dict[str, list[StepManifest]] = {}
    for step in plan.steps:
        name = task_name(step)
        owner[step.key] = name
        if name not in members:
            members[name] = []
            order.append(name)
        members[name].append(step)
    out: list[DagTask] = []
    for name in order:
        steps = members[name]
        deps: dict[str, None] = {}
        for s in steps:
            for d in s.deps():
                if owner[d] != name:
                    deps.setdefault(owner[d], None)
        sharded = steps[0].kind in SHARDED and steps[0].shard is not None
        items = [{"shard": s.shard.index, "key": s.key} for s in steps] if sharded else []  # type: ignore[union-attr]
        out.append(DagTask(name, steps[0].kind, [s.key for s in steps], list(deps), items))
    return out


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def spec_payload(spec: ExperimentSpec) -> str:
    """The spec as the publish task receives it: canonical JSON, base64 (no quoting surprises)."""
    return _b64(json.dumps(spec.model_dump(mode="json"), sort_keys=True, separators=(",", ":")))


def _security_context() -> m.SecurityContext:
    return m.SecurityContext(
        allow_privilege_escalation=False,
        read_only_root_filesystem=True,
        run_as_non_root=True,
        capabilities=m.Capabilities(drop=["ALL"]),
    )


def _pod_security_context(cfg: ClusterConfig) -> m.PodSecurityContext:
    uid = cfg.run_as_user
    return m.PodSecurityContext(
        run_as_non_root=True, run_as_user=uid, run_as_group=uid, fs_group=uid,
        seccomp_profile=m.SeccompProfile(type="RuntimeDefault"),
    )


def _env(cfg: ClusterConfig, kind: str, spec: ExperimentSpec) -> list[m.EnvVar]:
    def secret(name: str, secret_name: str, key: str, optional: bool = False) -> m.EnvVar:
        ref = m.SecretKeySelector(name=secret_name, key=key, optional=optional or None)
        return m.EnvVar(name=name, value_from=m.EnvVarSource(secret_key_ref=ref))

    st = cfg.store
    env = [
        # The root filesystem is read-only: every writable path points into an emptyDir.
        m.EnvVar(name="HOME", value="/tmp/home"),
        m.EnvVar(name="TMPDIR", value="/tmp"),
        m.EnvVar(name="XDETOX_CACHE_DIR", value="/cache/xdetox"),
        m.EnvVar(name="HF_HOME", value="/cache/huggingface"),
        m.EnvVar(name="MPLCONFIGDIR", value="/tmp/matplotlib"),
        m.EnvVar(name="PYTHONUNBUFFERED", value="1"),
        secret("AWS_ACCESS_KEY_ID", st.secret, st.access_key_id_key),
        secret("AWS_SECRET_ACCESS_KEY", st.secret, st.secret_access_key_key),
    ]
    if kind == "score" and spec.scoring.kind == "perspective":
        env.append(secret(spec.scoring.api_key_env, st.perspective_secret, st.perspective_key))
    return env


def _resources(res: StepResources) -> m.ResourceRequirements:
    requests: dict[str, Any] = {"cpu": res.cpu, "memory": res.memory}
    limits: dict[str, Any] = {"memory": res.memory}
    if res.gpu > 0:  # a pod with gpu 0 requests no GPU at all
        requests[GPU_RESOURCE] = str(res.gpu)
        limits[GPU_RESOURCE] = str(res.gpu)
    return m.ResourceRequirements(requests=requests, limits=limits)


def _volumes(cfg: ClusterConfig, kind: str) -> tuple[list[m.Volume], list[m.VolumeMount]]:
    vols = [
        m.Volume(name="tmp", empty_dir=m.EmptyDirVolumeSource(size_limit=cfg.tmp_size)),
        m.Volume(name="cache", empty_dir=m.EmptyDirVolumeSource(size_limit=cfg.cache_size)),
    ]
    mounts = [m.VolumeMount(name="tmp", mount_path="/tmp"), m.VolumeMount(name="cache", mount_path="/cache")]
    if kind in SHM_KINDS:
        vols.append(m.Volume(name="dshm", empty_dir=m.EmptyDirVolumeSource(medium="Memory", size_limit=cfg.shm_size)))
        mounts.append(m.VolumeMount(name="dshm", mount_path="/dev/shm"))
    return vols, mounts


def _tolerations(pool: Pool) -> list[m.Toleration] | None:
    out = [m.Toleration(**t.model_dump(exclude_none=True)) for t in pool.tolerations]
    return out or None


def _retry(cfg: ClusterConfig) -> m.RetryStrategy:
    r = cfg.retry
    return m.RetryStrategy(
        limit=str(r.limit),
        retry_policy="Always",
        expression=RETRY_EXPRESSION,
        backoff=m.Backoff(duration=r.backoff_duration, factor=str(r.backoff_factor), max_duration=r.backoff_max_duration),
    )


def _container(
    name: str, kind: str, image_name: str, res: StepResources, cfg: ClusterConfig, spec: ExperimentSpec,
    command: list[str], args: list[str], inputs: list[Parameter] | None = None, retry: bool = True,
) -> Container:
    vols, mounts = _volumes(cfg, kind)
    pool = cfg.gpu_pool if res.gpu > 0 else cfg.cpu_pool
    sync = None
    if res.gpu > 0:
        ref = m.ConfigMapKeySelector(name=cfg.semaphore.config_map, key=cfg.semaphore.key)
        sync = m.Synchronization(semaphores=[m.SemaphoreRef(config_map_key_ref=ref)])
    return Container(
        name=name,
        image=res.image or cfg.images.ref(image_name),
        image_pull_policy=cfg.images.pull_policy,
        command=command,
        args=args,
        inputs=inputs,
        resources=_resources(res),
        env=_env(cfg, kind, spec),
        env_from=[m.EnvFromSource(config_map_ref=m.ConfigMapEnvSource(name=cfg.store.config_map))],
        volumes=vols,
        volume_mounts=mounts,
        security_context=_security_context(),
        node_selector=pool.node_selector or None,
        tolerations=_tolerations(pool),
        retry_strategy=_retry(cfg) if retry else None,
        synchronization=sync,
        labels={LABEL_KIND: kind.replace("_", "-"), LABEL_IMAGE: image_name},
    )


@dataclass(frozen=True)
class RenderOptions:
    """What differs between a one-off run and a scheduled reproduction."""

    #: nightly: each workflow writes under <store>/<workflow name>/ so nothing is reused from a past night
    fresh_root: bool = False
    #: nightly: reference metrics (JSON text) checked by a final task
    reference_json: str | None = None


def _manifest_arg(run_id: str, key_expr: str, root: str) -> str:
    return f"{root}/runs/{run_id}/steps/{key_expr}/manifest.json"


def build(
    plan: Plan, spec: ExperimentSpec, cfg: ClusterConfig, options: RenderOptions = RenderOptions(),
    template: bool = False,
) -> Workflow:
    """The Hera object: a Workflow, or a WorkflowTemplate when ``template`` is true."""
    store = cfg.store.uri or spec.store
    if not store.startswith("s3://"):
        raise ValueError(
            f"store {store!r}: pods on a cluster share results through S3; set an s3:// store in the spec "
            "or store.uri in the cluster config"
        )
    root = "{{workflow.parameters.store}}" + ("/{{workflow.name}}" if options.fresh_root else "")
    run_id = plan.run_id
    tasks = dag_tasks(plan)
    kinds = sorted({t.kind for t in tasks})
    res_spec = spec.resources
    templates: list[Any] = []
    light = StepResources(cpu="500m", memory="1Gi")
    templates.append(_container(
        "publish", "publish", "score", light, cfg, spec,
        ["xdetox", "argo", "publish"],
        ["--store", root, "--spec-b64", "{{workflow.parameters.spec}}",
         "--expect-plan", "{{workflow.parameters.plan-digest}}"],
    ))
    for kind in kinds:
        res: StepResources = getattr(res_spec, KIND_RESOURCES[kind])
        templates.append(_container(
            f"step-{kind.replace('_', '-')}", kind, KIND_IMAGE[kind], res, cfg, spec,
            ["xdetox", "step"], [_manifest_arg(run_id, "{{inputs.parameters.key}}", root)],
            inputs=[Parameter(name="key")],
        ))
    params = [
        Parameter(name="store", value=store),
        Parameter(name="spec", value=spec_payload(spec)),
        Parameter(name="plan-digest", value=plan_digest(plan)),
    ]
    if options.reference_json is not None:
        params.append(Parameter(name="reference", value=_b64(options.reference_json)))
        templates.append(_container(
            "check-nightly", "check", "score", light, cfg, spec,
            ["xdetox", "argo", "check-nightly"],
            ["--store", root, "--run", run_id, "--reference-b64", "{{workflow.parameters.reference}}"],
            retry=False,
        ))
    dag_list: list[Task] = [Task(name="publish", template="publish")]
    for t in tasks:
        template_name = f"step-{t.kind.replace('_', '-')}"
        deps = t.deps or ["publish"]
        if t.items:
            dag_list.append(Task(
                name=t.name, template=template_name, dependencies=deps,
                arguments=[Parameter(name="key", value="{{item.key}}")], with_items=t.items,
            ))
        else:
            dag_list.append(Task(
                name=t.name, template=template_name, dependencies=deps,
                arguments=[Parameter(name="key", value=t.keys[0])],
            ))
    if options.reference_json is not None:
        report_task = next(t.name for t in tasks if plan.report_key in t.keys)
        dag_list.append(Task(name="check-nightly", template="check-nightly", dependencies=[report_task]))
    templates.insert(0, DAG(name="main", tasks=dag_list))

    labels = {"app.kubernetes.io/name": "xdetox", "app.kubernetes.io/part-of": "xdetox", LABEL_RUN: run_id}
    common: dict[str, Any] = dict(
        namespace=cfg.namespace,
        labels=labels,
        annotations={"xdetox.io/spec-digest": plan.spec_digest, "xdetox.io/plan-digest": plan_digest(plan),
                     "xdetox.io/steps": str(len(plan.steps))},
        entrypoint="main",
        arguments=params,
        templates=templates,
        service_account_name=cfg.service_account,
        security_context=_pod_security_context(cfg),
        pod_gc=m.PodGC(strategy=cfg.pod_gc),
        ttl_strategy=m.TTLStrategy(seconds_after_success=cfg.ttl_after_success_s,
                                   seconds_after_failure=cfg.ttl_after_failure_s),
        pod_metadata=m.Metadata(labels={"app.kubernetes.io/part-of": "xdetox", LABEL_RUN: run_id}),
        parallelism=cfg.parallelism,
        active_deadline_seconds=cfg.active_deadline_s,
    )
    if template:
        return WorkflowTemplate(name=f"xdetox-{run_id}", **common)
    return Workflow(generate_name=f"{run_id}-", **common)


def render(
    plan: Plan, spec: ExperimentSpec, cfg: ClusterConfig | None = None, options: RenderOptions = RenderOptions(),
) -> dict[str, Any]:
    """The plan as an Argo Workflow, a plain dict ready for YAML or the API."""
    return build(plan, spec, cfg or ClusterConfig(), options).to_dict()


def render_template(
    plan: Plan, spec: ExperimentSpec, cfg: ClusterConfig | None = None, options: RenderOptions = RenderOptions(),
) -> dict[str, Any]:
    """The same DAG as a WorkflowTemplate (what the Helm chart installs and the CronWorkflow runs)."""
    return build(plan, spec, cfg or ClusterConfig(), options, template=True).to_dict()
