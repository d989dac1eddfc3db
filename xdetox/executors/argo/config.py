"""Cluster settings for the Argo executor: what the experiment spec does not (and should not) say.

The spec says what to compute and how big each step is (``resources``); this says where it runs:
namespace, service account, images, node pools, the GPU semaphore, the store's ConfigMap and the
S3 credentials Secret. Loaded from a YAML file (``--cluster-config``; example:
``argo/cluster-config.yaml``). Unknown keys are errors naming their path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

_TAG_FORBIDDEN = {"latest", ""}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Toleration(_Strict):
    key: str | None = None
    operator: Literal["Exists", "Equal"] = "Exists"
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None


#: the five scheduling roles (the same names as the step kinds' resource roles)
ROLE_NAMES = ("train", "generate", "score-gpu", "score-cpu", "cpu")
#: a Kubernetes resource quantity, never negative (the API server would reject it after submission)
_QUANTITY = r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$"


class RoleResources(_Strict):
    """Per-role pod size; where set it replaces the spec's value (the cluster knows its nodes)."""

    cpu: str | None = Field(default=None, pattern=_QUANTITY, description="e.g. 8 or 500m")
    memory: str | None = Field(default=None, pattern=_QUANTITY, description="e.g. 64Gi")
    ephemeral_storage: str | None = Field(default=None, pattern=_QUANTITY)


class Role(_Strict):
    """Where and how pods of one role are scheduled: node pool, taints, priority, size, deadline."""

    node_selector: dict[str, str] = Field(default_factory=dict)
    tolerations: list[Toleration] = Field(default_factory=list)
    affinity: dict[str, Any] | None = Field(default=None, description="a Kubernetes Affinity object")
    priority_class_name: str | None = None
    resources: RoleResources = RoleResources()
    active_deadline_s: int = Field(default=2 * 24 * 3600, ge=1, description="per pod attempt")

    @field_validator("affinity")
    @classmethod
    def _affinity(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        if v is not None:
            from hera.workflows import models as m

            # strict: a typo such as nodeAfinity would otherwise be dropped silently
            m.Affinity.model_validate(v, strict=False)
            unknown = set(v) - {"nodeAffinity", "podAffinity", "podAntiAffinity"}
            if unknown:
                raise ValueError(f"unknown affinity key(s) {sorted(unknown)}")
        return v


_GPU_TOLERATION = Toleration(key="nvidia.com/gpu", operator="Exists", effect="NoSchedule")
_GPU_SELECTOR = {"nvidia.com/gpu.present": "true"}


def _gpu_role(deadline_s: int) -> Role:
    return Role(node_selector=_GPU_SELECTOR, tolerations=[_GPU_TOLERATION], active_deadline_s=deadline_s)


class Roles(_Strict):
    """One entry per role; a role that does not exist is an error (extra keys are forbidden)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    train: Role = _gpu_role(3 * 24 * 3600)
    generate: Role = _gpu_role(2 * 24 * 3600)
    score_gpu: Role = Field(default=_gpu_role(24 * 3600), alias="score-gpu")
    score_cpu: Role = Field(default=Role(active_deadline_s=24 * 3600), alias="score-cpu")
    cpu: Role = Role(active_deadline_s=6 * 3600)

    def get(self, name: str) -> Role:
        if name not in ROLE_NAMES:
            raise KeyError(f"no role {name!r}; roles: {', '.join(ROLE_NAMES)}")
        return getattr(self, name.replace("-", "_"))


class ImageRef(_Strict):
    """One image's own repository and digest (an exact digest pins what the chart and CI built)."""

    repository: str | None = Field(default=None, description="default: <registry>/xdetox-<name>")
    digest: str | None = Field(default=None, pattern=r"^sha256:[0-9a-f]{64}$")


class Images(_Strict):
    registry: str = "ghcr.io/xdetox"
    tag: str = "0.1.0"
    pull_policy: Literal["IfNotPresent", "Always", "Never"] = "IfNotPresent"
    pull_secrets: list[str] = Field(default_factory=list, description="imagePullSecrets of every pod")
    train: ImageRef = ImageRef()
    generate: ImageRef = ImageRef()
    score: ImageRef = ImageRef()

    @field_validator("tag")
    @classmethod
    def _tag(cls, v: str) -> str:
        if v in _TAG_FORBIDDEN:
            raise ValueError("must be an exact version tag or digest, not 'latest'")
        return v

    def ref(self, name: str) -> str:
        own: ImageRef = getattr(self, name)
        repo = own.repository or f"{self.registry.rstrip('/')}/xdetox-{name}"
        if own.digest:
            return f"{repo}@{own.digest}"
        sep = "@" if self.tag.startswith("sha256:") else ":"
        return f"{repo}{sep}{self.tag}"


class Semaphore(_Strict):
    """The ConfigMap key GPU templates take a permit from; its value (the cap) is set by the chart."""

    config_map: str = "xdetox-semaphores"
    key: str = "gpu-pods"


class StoreConfig(_Strict):
    uri: str | None = Field(default=None, description="s3://bucket/prefix the pods use; default: the spec's store")
    config_map: str = Field(default="xdetox-store", description="S3 endpoint, region, addressing style (envFrom)")
    secret: str | None = Field(
        default="xdetox-s3",
        description="Secret holding the S3 access key pair; null: no keys (workload identity: IRSA, GKE WI)")
    access_key_id_key: str = "access-key-id"
    secret_access_key_key: str = "secret-access-key"
    perspective_secret: str = Field(default="xdetox-perspective", description="Secret with the Perspective API key")
    perspective_key: str = "api-key"


class SecretKey(_Strict):
    secret: str
    key: str = "token"


class Retry(_Strict):
    limit: int = Field(default=3, ge=0)
    backoff_duration: str = "30s"
    backoff_factor: int = Field(default=2, ge=1)
    backoff_max_duration: str = "10m"
    #: an OOM-killed pod is retried with this much more memory per retry (podSpecPatch), in percent
    oom_memory_step_pct: int = Field(default=50, ge=0, le=400)


class ClusterConfig(_Strict):
    namespace: str = "xdetox"
    service_account: str = "xdetox-workflow"
    images: Images = Images()
    roles: Roles = Roles()
    semaphore: Semaphore = Semaphore()
    store: StoreConfig = StoreConfig()
    retry: Retry = Retry()
    shm_size: str = Field(default="16Gi", description="memory-backed /dev/shm for vLLM and torch workers")
    cache_size: str = Field(default="100Gi", description="emptyDir for model downloads and HF caches")
    tmp_size: str = "20Gi"
    run_as_user: int = Field(default=10001, ge=1, description="the images' non-root uid")
    pod_gc: Literal["OnPodCompletion", "OnPodSuccess", "OnWorkflowCompletion", "OnWorkflowSuccess"] = "OnPodSuccess"
    ttl_after_success_s: int = Field(default=7 * 24 * 3600, ge=0)
    ttl_after_failure_s: int = Field(default=14 * 24 * 3600, ge=0)
    parallelism: int | None = Field(default=None, ge=1, description="max pods of one workflow at once")
    active_deadline_s: int = Field(default=14 * 24 * 3600, ge=1, description="the whole workflow")
    #: false: one failed shard does not stop the other branches (their results stay in the store and a
    #: resubmission skips them); Argo's default (true) would kill every running pod at once
    fail_fast: bool = False
    #: archive pod logs to the cluster's artifact repository (needs one configured in Argo)
    archive_logs: bool = False
    hub_token: SecretKey | None = Field(default=None, description="Secret with a model-hub token, set as HF_TOKEN")

    @field_validator("namespace", "service_account")
    @classmethod
    def _dns(cls, v: str) -> str:
        import re

        if not re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", v):
            raise ValueError("must be a DNS-1123 label (lower-case letters, digits, '-')")
        return v


class ClusterConfigError(ValueError):
    pass


def _line(node: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """1-based line of the deepest YAML node on ``loc`` (a pydantic error location)."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            nxt = next(((k, v) for k, v in node.value if k.value == str(part)), None)
            if nxt is None:
                break
            line, node = nxt[0].start_mark.line + 1, nxt[1]  # the key's line names the setting
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


def load_cluster_config(path: str | Path | None) -> ClusterConfig:
    """Read a cluster config file; ``None`` gives the defaults. Errors name the file, line and key."""
    if path is None:
        return ClusterConfig()
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text) or {}
    except FileNotFoundError:
        raise ClusterConfigError(f"{p}: no such file") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{p}:{mark.line + 1}" if mark is not None else str(p)
        raise ClusterConfigError(f"{where}: YAML syntax error: {getattr(e, 'problem', e)}") from None
    if not isinstance(data, dict):
        raise ClusterConfigError(f"{p}: must be a mapping at the top level")
    try:
        return ClusterConfig.model_validate(data)
    except ValidationError as e:
        lines = []
        for er in e.errors():
            loc = tuple(er["loc"])
            line = _line(root, loc)
            where = f"{p}:{line}" if line else str(p)
            msg = er["msg"]
            if er["type"] == "string_pattern_mismatch" and "resources" in loc:
                msg = f"must be a non-negative Kubernetes quantity (e.g. 8, 500m, 64Gi), got {er['input']!r}"
            elif er["type"] == "extra_forbidden" and len(loc) == 2 and loc[0] == "roles":
                msg = f"no such role (roles: {', '.join(ROLE_NAMES)})"
            lines.append(f"{where}: {'.'.join(str(x) for x in loc)}: {msg}")
        raise ClusterConfigError("\n".join(lines)) from None
