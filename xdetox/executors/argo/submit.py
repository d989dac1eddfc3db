"""Submit rendered workflows, and read their status and logs, via the Argo Server or the Kubernetes API.

Which one: ``ARGO_SERVER`` set (``https://host:2746``, or ``host:2746`` with ``ARGO_SECURE``
deciding the scheme, as the argo CLI does) means the Argo Server through Hera's WorkflowsService,
with ``ARGO_TOKEN`` as the bearer token; otherwise the Kubernetes API through the kubeconfig (or the
in-cluster service account), creating the Workflow custom object directly. The token is read from
the environment only and never printed, logged or put in an error message.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import json
import os
import secrets
import string
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

GROUP, VERSION, PLURAL = "argoproj.io", "v1alpha1", "workflows"


class SubmitError(RuntimeError):
    """The server refused or could not be reached; the message never contains the token."""


@dataclass(frozen=True)
class Target:
    namespace: str
    server: str | None = None  # Argo Server base URL; None: the Kubernetes API
    token: str | None = field(default=None, repr=False)
    verify_ssl: bool = True
    kube_host: str | None = None  # tests and unusual setups: talk to this API server URL

    @property
    def via(self) -> str:
        return "argo-server" if self.server else "kubernetes"


def target_from_env(namespace: str, env: dict[str, str] | None = None) -> Target:
    env = dict(os.environ if env is None else env)
    ns = env.get("ARGO_NAMESPACE") or namespace
    server = env.get("ARGO_SERVER")
    if server:
        if "://" not in server:
            secure = env.get("ARGO_SECURE", "true").lower() not in {"false", "0", "no"}
            server = ("https://" if secure else "http://") + server
        verify = env.get("ARGO_INSECURE_SKIP_VERIFY", "false").lower() not in {"true", "1", "yes"}
        return Target(namespace=ns, server=server.rstrip("/") + "/", token=env.get("ARGO_TOKEN") or None,
                      verify_ssl=verify)
    return Target(namespace=ns, kube_host=env.get("XDETOX_KUBE_HOST") or None)


def _scrub(text: str, target: Target) -> str:
    if target.token:
        for t in {target.token, target.token.removeprefix("Bearer ").strip()}:
            if t:
                text = text.replace(t, "***")
    return text


def with_name(manifest: dict[str, Any]) -> dict[str, Any]:
    """Give a generateName'd manifest a concrete name (the Kubernetes path needs one to report it)."""
    meta = dict(manifest.get("metadata") or {})
    if not meta.get("name"):
        suffix = "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(5))
        meta["name"] = f"{meta.pop('generateName', 'xdetox-')}{suffix}"
    meta.pop("generateName", None)
    return {**manifest, "metadata": meta}


# --------------------------------------------------------------------------- Argo Server (Hera)
def _service(target: Target) -> Any:
    from hera.workflows import WorkflowsService

    return WorkflowsService(host=target.server, token=target.token, namespace=target.namespace,
                            verify_ssl=target.verify_ssl)


def _server_call(target: Target, fn: Any, *args: Any, **kwargs: Any) -> Any:
    from hera.exceptions import HeraException
    from pydantic import ValidationError
    from requests import RequestException

    try:
        return fn(*args, **kwargs)
    except (HeraException, RequestException, ValidationError) as e:
        raise SubmitError(_scrub(f"Argo Server {target.server}: {type(e).__name__}: {e}", target)) from None


def _dump(model: Any) -> dict[str, Any]:
    return json.loads(model.model_dump_json(exclude_none=True, by_alias=True))


# --------------------------------------------------------------------------- Kubernetes API
def _custom_api(target: Target) -> Any:
    from kubernetes import client, config

    if target.kube_host:
        cfg = client.Configuration()
        cfg.host = target.kube_host
        return client.CustomObjectsApi(client.ApiClient(cfg)), client.CoreV1Api(client.ApiClient(cfg))
    try:
        config.load_kube_config()
    except config.ConfigException as outside:
        try:
            config.load_incluster_config()
        except config.ConfigException as inside:  # neither: the user has not said where the cluster is
            raise SubmitError(f"no cluster to talk to: set ARGO_SERVER (and ARGO_TOKEN) for an Argo Server, "
                              f"or give a kubeconfig (KUBECONFIG or ~/.kube/config: {outside}; "
                              f"in-cluster: {inside})") from None
    return client.CustomObjectsApi(), client.CoreV1Api()


def _kube_call(target: Target, fn: Any, *args: Any, **kwargs: Any) -> Any:
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    try:
        # Raw response, parsed here: the generated client's deserializer skips bodies whose content
        # type carries parameters (application/json; charset=utf-8) and would return None.
        resp = fn(*args, _preload_content=False, **kwargs)
        data = resp.data
        return json.loads(data) if data.strip().startswith(b"{") else data.decode("utf-8", "replace")
    except ApiException as e:
        raise SubmitError(_scrub(f"Kubernetes API: {e.status} {e.reason}: {e.body}", target)) from None
    except HTTPError as e:
        raise SubmitError(_scrub(f"Kubernetes API: {type(e).__name__}: {e}", target)) from None


# --------------------------------------------------------------------------- operations
def submit(manifest: dict[str, Any], target: Target) -> dict[str, Any]:
    """Create the Workflow; returns the created object (name, namespace, uid as the server set them)."""
    if target.server:
        from hera.workflows.models import Workflow as ModelWorkflow
        from hera.workflows.models import WorkflowCreateRequest

        req = WorkflowCreateRequest(workflow=ModelWorkflow.model_validate(manifest), namespace=target.namespace)
        with _service(target) as svc:
            return _dump(_server_call(target, svc.create_workflow, req, namespace=target.namespace))
    body = with_name({**manifest, "metadata": {**manifest.get("metadata", {}), "namespace": target.namespace}})
    custom, _ = _custom_api(target)
    return _kube_call(target, custom.create_namespaced_custom_object, GROUP, VERSION, target.namespace, PLURAL, body)


def get(name: str, target: Target) -> dict[str, Any]:
    if target.server:
        with _service(target) as svc:
            return _dump(_server_call(target, svc.get_workflow, name, namespace=target.namespace))
    custom, _ = _custom_api(target)
    return _kube_call(target, custom.get_namespaced_custom_object, GROUP, VERSION, target.namespace, PLURAL, name)


@dataclass(frozen=True)
class Status:
    name: str
    phase: str
    progress: str
    started: str
    finished: str
    message: str
    failed: list[tuple[str, str]]  # (node display name, message)
    running: list[str]


def status_nodes(wf: dict[str, Any]) -> dict[str, Any]:
    """The workflow's node status, wherever Argo keeps it.

    Argo stores ``status.nodes`` inline; past its size limit it keeps them gzip-compressed and
    base64-encoded in ``status.compressedNodes``; past that it offloads them to its database
    (``status.offloadNodeStatusVersion``), from where only the Argo Server returns them (its GET
    hydrates them into ``nodes``). Through the Kubernetes API an offloaded status is unreadable: that
    is an error naming the fix, not an empty workflow.
    """
    st = wf.get("status") or {}
    if st.get("nodes"):
        return dict(st["nodes"])
    if st.get("compressedNodes"):
        try:
            raw = gzip.decompress(base64.b64decode(st["compressedNodes"], validate=True))
            nodes = json.loads(raw)
        except (binascii.Error, OSError, EOFError, ValueError) as e:
            raise SubmitError(f"status.compressedNodes: cannot decode ({type(e).__name__}: {e})") from None
        if not isinstance(nodes, dict):
            raise SubmitError("status.compressedNodes: not a map of nodes")
        return nodes
    if st.get("offloadNodeStatusVersion"):
        raise SubmitError(
            "the workflow's node status is offloaded to Argo's database (offloadNodeStatusVersion "
            f"{st['offloadNodeStatusVersion']}); only the Argo Server returns it: set ARGO_SERVER"
        )
    return {}


def summarize(wf: dict[str, Any]) -> Status:
    st = wf.get("status") or {}
    nodes = status_nodes(wf).values()
    failed = [(n.get("displayName") or n.get("name", "?"), n.get("message", ""))
              for n in nodes if n.get("type") == "Pod" and n.get("phase") in {"Failed", "Error"}]
    running = [n.get("displayName") or n.get("name", "?") for n in nodes
               if n.get("type") == "Pod" and n.get("phase") == "Running"]
    return Status(
        name=(wf.get("metadata") or {}).get("name", "?"), phase=st.get("phase") or "Pending",
        progress=st.get("progress") or "", started=st.get("startedAt") or "", finished=st.get("finishedAt") or "",
        message=st.get("message") or "", failed=sorted(failed), running=sorted(running),
    )


def logs(name: str, target: Target, grep: str | None = None) -> Iterator[str]:
    """Lines of every step pod's main container, each prefixed with its pod name."""
    if target.server:
        with _service(target) as svc:
            url = f"{target.server}api/v1/workflows/{target.namespace}/{name}/log"
            params = {"logOptions.container": "main", "grep": grep}
            resp = _server_call(target, svc._request, "get", url=url, params=params,
                                headers={"Authorization": svc.token}, verify=target.verify_ssl)
            if not resp.ok:
                raise SubmitError(_scrub(f"Argo Server {target.server}: {resp.status_code} {resp.text[:500]}", target))
            # The log endpoint streams one JSON object per line: {"result": {"podName", "content"}}.
            for line in resp.text.splitlines():
                if not line.strip():
                    continue
                entry = json.loads(line).get("result") or {}
                yield f"{entry.get('podName', '?')}: {entry.get('content', '')}"
        return
    custom, core = _custom_api(target)
    pods = _kube_call(target, core.list_namespaced_pod, target.namespace,
                      label_selector=f"workflows.argoproj.io/workflow={name}")
    for pod_name in sorted(p["metadata"]["name"] for p in pods.get("items") or []):
        text = _kube_call(target, core.read_namespaced_pod_log, pod_name, target.namespace, container="main")
        for line in (text if isinstance(text, str) else json.dumps(text)).splitlines():
            if grep is None or grep in line:
                yield f"{pod_name}: {line}"
