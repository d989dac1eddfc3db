"""Cluster settings for the Argo executor: what the experiment spec does not (and should not) say.

The spec says what to compute and how big each step is (``resources``); this says where it runs:
namespace, service account, images, node pools, the GPU semaphore, the store's ConfigMap and the
S3 credentials Secret. Loaded from a YAML file (``--cluster-config``; example:
``argo/cluster-config.yaml``). Unknown keys are errors naming their path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

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


class Pool(_Strict):
    """A node pool: where pods of a kind of step are scheduled."""

    node_selector: dict[str, str] = Field(default_factory=dict)
    tolerations: list[Toleration] = Field(default_factory=list)


class Images(_Strict):
    registry: str = "ghcr.io/xdetox"
    tag: str = "0.1.0"
    pull_policy: Literal["IfNotPresent", "Always", "Never"] = "IfNotPresent"

    @field_validator("tag")
    @classmethod
    def _tag(cls, v: str) -> str:
        if v in _TAG_FORBIDDEN:
            raise ValueError("must be an exact version tag or digest, not 'latest'")
        return v

    def ref(self, name: str) -> str:
        sep = "@" if self.tag.startswith("sha256:") else ":"
        return f"{self.registry.rstrip('/')}/xdetox-{name}{sep}{self.tag}"


class Semaphore(_Strict):
    """The ConfigMap key GPU templates take a permit from; its value (the cap) is set by the chart."""

    config_map: str = "xdetox-semaphores"
    key: str = "gpu-pods"


class StoreConfig(_Strict):
    uri: str | None = Field(default=None, description="s3://bucket/prefix the pods use; default: the spec's store")
    config_map: str = Field(default="xdetox-store", description="S3 endpoint, region, addressing style (envFrom)")
    secret: str = Field(default="xdetox-s3", description="Secret holding the S3 access key pair")
    access_key_id_key: str = "access-key-id"
    secret_access_key_key: str = "secret-access-key"
    perspective_secret: str = Field(default="xdetox-perspective", description="Secret with the Perspective API key")
    perspective_key: str = "api-key"


class Retry(_Strict):
    limit: int = Field(default=3, ge=0)
    backoff_duration: str = "30s"
    backoff_factor: int = Field(default=2, ge=1)
    backoff_max_duration: str = "10m"


class ClusterConfig(_Strict):
    namespace: str = "xdetox"
    service_account: str = "xdetox-workflow"
    images: Images = Images()
    gpu_pool: Pool = Pool(
        node_selector={"nvidia.com/gpu.present": "true"},
        tolerations=[Toleration(key="nvidia.com/gpu", operator="Exists", effect="NoSchedule")],
    )
    cpu_pool: Pool = Pool()
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
    active_deadline_s: int | None = Field(default=None, ge=1)

    @field_validator("namespace", "service_account")
    @classmethod
    def _dns(cls, v: str) -> str:
        import re

        if not re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", v):
            raise ValueError("must be a DNS-1123 label (lower-case letters, digits, '-')")
        return v


class ClusterConfigError(ValueError):
    pass


def load_cluster_config(path: str | Path | None) -> ClusterConfig:
    """Read a cluster config file; ``None`` gives the defaults. Errors name the file and field."""
    if path is None:
        return ClusterConfig()
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
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
        lines = [f"{p}: {'.'.join(str(x) for x in er['loc'])}: {er['msg']}" for er in e.errors()]
        raise ClusterConfigError("\n".join(lines)) from None
