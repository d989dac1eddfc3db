"""Render a plan as an Argo Workflow (and WorkflowTemplate) through Hera.

Shape of the DAG:
  publish                   writes spec, plan and manifests to the store (idempotent), and checks
                            that the image plans the spec exactly as this renderer did
  <kind>-<key>              one task per unsharded step
  <kind>-<group>            one task per shard group, fanned out with ``withItems`` over shard
                            indices (each item: shard index and that shard's step key)
  check-nightly             only when a reference is given: compares metrics, exits 1 on regression
  record-outcome            the onExit handler: writes runs/<run-id>/outcomes/<workflow>.json

Survival on a real cluster: every pod template retries what a retry can fix (see RETRY_EXPRESSION),
an OOM-killed pod comes back with more memory (podSpecPatch over ``retries``), each template has
its role's activeDeadlineSeconds and the workflow its own, the DAG does not fail fast (one failed
shard leaves the other branches running; their results stay in the store), pods are garbage
collected by the cluster config's podGC strategy and logs archived when ``archive_logs`` is set.

Every step container runs ``xdetox step <store>/runs/<run-id>/steps/<key>/manifest.json``; the
runner skips committed steps, so Argo retries and resubmissions are idempotent.
"""

from __future__ import annotations

import base64
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from hera.workflows import DAG, Container, Parameter, Task, Workflow, WorkflowTemplate
from hera.workflows import models as m

from xdetox.executors.argo.config import ClusterConfig, Role
from xdetox.exit_codes import EXIT_INVALID, EXIT_RETRIABLE
from xdetox.kinds import scorers as scorer_kinds
from xdetox.kinds import steps as step_kinds
from xdetox.manifest import StepManifest, digest
from xdetox.plan import Plan
from xdetox.spec.models import ExperimentSpec, StepResources

# Retry what a retry can fix: preemption, node loss, a deleted pod (status Error, SIGTERM 143, -1),
# an OOM kill (137: retried with more memory, see _memory_patch) and exit 75, which a step returns
# for a transient failure (network, store). Never a bad manifest (2), and not a step error (1):
# those fail the same way every time.
RETRY_EXPRESSION = (
    f'!(lastRetry.exitCode in ["{EXIT_INVALID}"]) && '
    f'(lastRetry.status == "Error" || lastRetry.exitCode in ["137", "143", "{EXIT_RETRIABLE}", "-1"] || '
    'lastRetry.message matches "OOMKilled|imminent node shutdown|pod deleted|node .* (lost|not ready)|preempt")'
)
#: publish, check-nightly and the exit handler: small, quick, on the cpu role
LIGHT_DEADLINE_S = 1800

GPU_RESOURCE = "nvidia.com/gpu"
LABEL_KIND = "xdetox.io/step-kind"
LABEL_IMAGE = "xdetox.io/image"
LABEL_RUN = "xdetox.io/run-id"
LABEL_ROLE = "xdetox.io/role"


def role_for(kind: str, res: StepResources) -> str:
    """The scheduling role of a step kind's pods (train, generate, score-gpu, score-cpu, cpu).

    Each step kind declares its GPU and CPU roles; a kind that asks for no GPU runs on its CPU role
    (smoke and nightly runs train on CPU). The workflow's own tasks (publish, check, outcome) run on cpu.
    """
    if kind not in step_kinds.names():
        return "cpu"
    return step_kinds.get(kind).role(res.gpu)


_BINARY = {"Ki": 1, "Mi": 2**10, "Gi": 2**20, "Ti": 2**30, "Pi": 2**40}
_DECIMAL = {"k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "": 1}


def mebibytes(quantity: str) -> int:
    """A Kubernetes memory quantity in Mi, rounded up (for the OOM retry's memory patch)."""
    m_ = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)([KMGTP]i|[kMGTP]?)", quantity)
    if m_ is None:
        raise ValueError(f"memory {quantity!r}: not a Kubernetes quantity")
    num, unit = float(m_.group(1)), m_.group(2)
    if unit in _BINARY:
        return math.ceil(num * _BINARY[unit] / 1024)
    return math.ceil(num * _DECIMAL[unit] / 2**20)


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


def _sharded(kind: str) -> bool:
    return step_kinds.get(kind).sharded


def task_name(step: StepManifest) -> str:
    kind = step.kind.replace("_", "-")
    if _sharded(step.kind) and step.shard is not None:
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
        sharded = _sharded(steps[0].kind) and steps[0].shard is not None
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


def _env(cfg: ClusterConfig, kind: str, scorers: list[Any]) -> list[m.EnvVar]:
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
    ]
    if st.secret is not None:  # none: workload identity (IRSA, GKE WI) gives boto3 its credentials
        env += [secret("AWS_ACCESS_KEY_ID", st.secret, st.access_key_id_key),
                secret("AWS_SECRET_ACCESS_KEY", st.secret, st.secret_access_key_key)]
    if cfg.hub_token is not None:  # gated models (Llama): the hub token, from a Secret, never a value
        env.append(secret("HF_TOKEN", cfg.hub_token.secret, cfg.hub_token.key))
    declared = step_kinds.get(kind) if kind in step_kinds.names() else None
    if declared is not None and declared.runs_scorer:  # the scorer kind's secrets
        names = [n for sc in scorers for n in scorer_kinds.get(sc.kind).secret_env(sc)]
        for name in dict.fromkeys(names):
            env.append(secret(name, st.perspective_secret, st.perspective_key))
    return env


def _sized(res: StepResources, role: Role) -> StepResources:
    """The spec's size, with what the cluster config's role sets in its place."""
    over = {k: v for k, v in (("cpu", role.resources.cpu), ("memory", role.resources.memory)) if v is not None}
    return res.model_copy(update=over) if over else res


def _resources(res: StepResources, role: Role) -> m.ResourceRequirements:
    requests: dict[str, Any] = {"cpu": res.cpu, "memory": res.memory}
    limits: dict[str, Any] = {"memory": res.memory}
    if role.resources.ephemeral_storage is not None:
        requests["ephemeral-storage"] = limits["ephemeral-storage"] = role.resources.ephemeral_storage
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
    if kind in step_kinds.names() and step_kinds.get(kind).shm:
        vols.append(m.Volume(name="dshm", empty_dir=m.EmptyDirVolumeSource(medium="Memory", size_limit=cfg.shm_size)))
        mounts.append(m.VolumeMount(name="dshm", mount_path="/dev/shm"))
    return vols, mounts


def _tolerations(role: Role) -> list[m.Toleration] | None:
    out = [m.Toleration(**t.model_dump(exclude_none=True)) for t in role.tolerations]
    return out or None


def _memory_patch(memory: str, step_pct: int) -> str | None:
    """podSpecPatch raising the memory by step_pct of the spec's per retry (Argo's ``retries``)."""
    if step_pct == 0:
        return None
    base = mebibytes(memory)
    step = max(1, base * step_pct // 100)
    mem = f"{{{{=sprig.int(retries) * {step} + {base}}}}}Mi"  # integer arithmetic: a valid quantity
    res = {"requests": {"memory": mem}, "limits": {"memory": mem}}
    return json.dumps({"containers": [{"name": "main", "resources": res}]}, separators=(",", ":"))


def _retry(cfg: ClusterConfig) -> m.RetryStrategy:
    r = cfg.retry
    return m.RetryStrategy(
        limit=str(r.limit),
        retry_policy="Always",
        expression=RETRY_EXPRESSION,
        backoff=m.Backoff(duration=r.backoff_duration, factor=str(r.backoff_factor), max_duration=r.backoff_max_duration),
    )


def _score_pod(res: StepResources, spec: ExperimentSpec) -> tuple[StepResources, str | None]:
    """What the scorer kind's declaration says about its score pods: GPU or not, and its semaphore."""
    decls = [scorer_kinds.get(sc.kind) for sc in spec.all_scorers()]  # several scorers share one pod
    semaphore = next((d.semaphore for d in decls if d.semaphore), None)
    # perplexity is its own step kind: a pod of CPU scorers needs no GPU. A pod that holds a
    # rate-limited API's permit (Perspective) is a CPU pod too, even beside a GPU scorer (a compare
    # classifier then runs on the pod's CPU): a GPU would idle for days waiting on the API quota
    # (issue 15: Perspective scoring pods are CPU pods, never GPU pods).
    if semaphore is not None or all(d.resources == "score-cpu" for d in decls):
        res = res.model_copy(update={"gpu": 0})
    return res, semaphore


def _container(
    name: str, kind: str, image_name: str, res: StepResources, cfg: ClusterConfig, scorers: list[Any],
    command: list[str], args: list[str], inputs: list[Parameter] | None = None, retry: bool = True,
    semaphore: str | None = None,
) -> Container:
    """One pod template; ``scorers``: the scorer specs whose secrets a scoring pod gets."""
    vols, mounts = _volumes(cfg, kind)
    role_name = role_for(kind, res)
    role = cfg.roles.get(role_name)
    res = _sized(res, role)
    keys = ([cfg.semaphore.key] if res.gpu > 0 else []) + ([semaphore] if semaphore else [])
    sync = m.Synchronization(semaphores=[
        m.SemaphoreRef(config_map_key_ref=m.ConfigMapKeySelector(name=cfg.semaphore.config_map, key=k))
        for k in keys]) if keys else None
    return Container(
        name=name,
        image=res.image or cfg.images.ref(image_name),
        image_pull_policy=cfg.images.pull_policy,
        command=command,
        args=args,
        inputs=inputs,
        resources=_resources(res, role),
        env=_env(cfg, kind, scorers),
        env_from=[m.EnvFromSource(config_map_ref=m.ConfigMapEnvSource(name=cfg.store.config_map))],
        volumes=vols,
        volume_mounts=mounts,
        security_context=_security_context(),
        node_selector=role.node_selector or None,
        tolerations=_tolerations(role),
        affinity=m.Affinity.model_validate(role.affinity) if role.affinity else None,
        priority_class_name=role.priority_class_name,
        active_deadline_seconds=LIGHT_DEADLINE_S if kind in LIGHT_KINDS else role.active_deadline_s,
        retry_strategy=_retry(cfg) if retry else None,
        pod_spec_patch=_memory_patch(res.memory, cfg.retry.oom_memory_step_pct) if retry else None,
        synchronization=sync,
        labels={LABEL_KIND: kind.replace("_", "-"), LABEL_IMAGE: image_name, LABEL_ROLE: role_name},
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


#: tasks that are not steps: they take the light size and deadline
LIGHT_KINDS = ("publish", "check", "outcome")


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
    for i, sc in enumerate(spec.all_scorers()):
        uri = getattr(sc, "calibration", None)
        if uri and not uri.startswith("s3://"):
            field = "scoring" if i == 0 else f"compare_scorers[{i - 1}]"
            raise ValueError(f"{field}.calibration {uri!r}: score pods read only the bucket; copy the map to "
                             "s3:// and name that URI")
    root = "{{workflow.parameters.store}}" + ("/{{workflow.name}}" if options.fresh_root else "")
    run_id = plan.run_id
    tasks = dag_tasks(plan)
    kinds = sorted({t.kind for t in tasks})
    res_spec = spec.resources
    templates: list[Any] = []
    scorers = spec.all_scorers()
    light = StepResources(cpu="500m", memory="1Gi")
    templates.append(_container(
        "publish", "publish", "score", light, cfg, scorers,
        ["xdetox", "argo", "publish"],
        ["--store", root, "--spec-b64", "{{workflow.parameters.spec}}",
         "--expect-plan", "{{workflow.parameters.plan-digest}}"],
    ))
    for kind in kinds:
        declared = step_kinds.get(kind)
        res: StepResources = declared.pod_resources(res_spec)
        semaphore = None
        if declared.runs_scorer:
            res, semaphore = _score_pod(res, spec)
        templates.append(_container(
            f"step-{kind.replace('_', '-')}", kind, declared.image, res, cfg, scorers,
            ["xdetox", "step"], [_manifest_arg(run_id, "{{inputs.parameters.key}}", root)],
            inputs=[Parameter(name="key")], semaphore=semaphore,
        ))
    params = [
        Parameter(name="store", value=store),
        Parameter(name="spec", value=spec_payload(spec)),
        Parameter(name="plan-digest", value=plan_digest(plan)),
    ]
    if options.reference_json is not None:
        params.append(Parameter(name="reference", value=_b64(options.reference_json)))
        templates.append(_container(
            "check-nightly", "check", "score", light, cfg, scorers,
            ["xdetox", "argo", "check-nightly"],
            ["--store", root, "--run", run_id, "--reference-b64", "{{workflow.parameters.reference}}"],
            retry=False,
        ))
    templates.append(_container(
        "record-outcome", "outcome", "score", light, cfg, scorers,
        ["xdetox", "argo", "record-outcome"],
        ["--store", root, "--run", run_id, "--workflow", "{{workflow.name}}", "--status", "{{workflow.status}}",
         "--failures", "{{workflow.failures}}", "--duration", "{{workflow.duration}}"],
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
    templates.insert(0, DAG(name="main", tasks=dag_list, fail_fast=cfg.fail_fast))

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
        on_exit="record-outcome",
        archive_logs=cfg.archive_logs or None,
        image_pull_secrets=[m.LocalObjectReference(name=n) for n in cfg.images.pull_secrets] or None,
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
