"""Submission, status and logs: against a loopback Argo Server and kmock's Kubernetes API emulator."""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import kmock
import pytest
from typer.testing import CliRunner

from tests.argo_fixtures import ROOT, rendered
from xdetox.cli import app
from xdetox.executors.argo import submit as sub

TOKEN = "s3cr3t-t0ken-value"
SMOKE = str(ROOT / "jobs/smoke.yaml")
CFG = str(ROOT / "argo/cluster-config.yaml")

WORKFLOW_STATUS = {
    "phase": "Failed", "progress": "5/12", "startedAt": "2026-11-22T20:00:00Z", "finishedAt": "2026-11-22T20:09:00Z",
    "message": "child 'smoke-abcde-1' failed",
    "nodes": {
        "n1": {"id": "n1", "name": "smoke-abcde.generate-1(0:0)", "displayName": "generate-1(0)", "type": "Pod",
               "phase": "Failed", "message": "OOMKilled (exit code 137)"},
        "n2": {"id": "n2", "name": "smoke-abcde.score-1", "displayName": "score-1(1)", "type": "Pod", "phase": "Running"},
        "n3": {"id": "n3", "name": "smoke-abcde", "displayName": "smoke-abcde", "type": "DAG", "phase": "Failed"},
    },
}

# What Argo writes past its size limit: the same nodes, gzip-compressed JSON in base64 (made here
# with gzip and base64 directly, not with the code under test).
COMPRESSED_STATUS = {
    **{k: v for k, v in WORKFLOW_STATUS.items() if k != "nodes"},
    "compressedNodes": base64.b64encode(gzip.compress(json.dumps(WORKFLOW_STATUS["nodes"]).encode())).decode(),
}


class ArgoServer:
    """A loopback Argo Server: records requests, answers like argo-server's REST gateway."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.fail_with: int | None = None
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _reply(self, code: int, body: Any, ctype: str = "application/json") -> None:
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _record(self) -> dict[str, Any]:
                n = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(n)) if n else None
                rec = {"method": self.command, "path": self.path, "headers": dict(self.headers), "body": body}
                outer.requests.append(rec)
                return rec

            def do_POST(self) -> None:  # noqa: N802
                rec = self._record()
                if outer.fail_with:
                    # a server that echoes the credentials in its error: the client must not print them
                    return self._reply(outer.fail_with, {"code": 7, "message": f"denied for token {TOKEN}"})
                if self.path != "/api/v1/workflows/xdetox" or rec["headers"].get("Authorization") != f"Bearer {TOKEN}":
                    return self._reply(404, {"code": 5, "message": "not found"})
                wf = rec["body"]["workflow"]
                meta = {**wf["metadata"], "name": wf["metadata"]["generateName"] + "abcde", "namespace": "xdetox",
                        "uid": "0b7f3c1e-1111-2222-3333-444455556666"}
                meta.pop("generateName")
                return self._reply(200, {**wf, "metadata": meta, "status": {}})

            def do_GET(self) -> None:  # noqa: N802
                rec = self._record()
                if rec["headers"].get("Authorization") != f"Bearer {TOKEN}":
                    return self._reply(401, {"code": 16, "message": "unauthorized"})
                if self.path.startswith("/api/v1/workflows/xdetox/smoke-abcde/log"):
                    lines = [{"result": {"podName": "smoke-abcde-generate-1", "content": "step generate: done"}},
                             {"result": {"podName": "smoke-abcde-score-2", "content": "step score: failed"}}]
                    return self._reply(200, "\n".join(json.dumps(x) for x in lines).encode(), "application/json")
                if self.path.split("?")[0] == "/api/v1/workflows/xdetox/smoke-packed":
                    return self._reply(200, {"metadata": {"name": "smoke-packed", "namespace": "xdetox"},
                                             "spec": {"entrypoint": "main"}, "status": COMPRESSED_STATUS})
                if self.path.split("?")[0] == "/api/v1/workflows/xdetox/smoke-abcde":
                    return self._reply(200, {"metadata": {"name": "smoke-abcde", "namespace": "xdetox"},
                                             "spec": {"entrypoint": "main"}, "status": WORKFLOW_STATUS})
                return self._reply(404, {"code": 5, "message": "not found"})

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> ArgoServer:
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def argo_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[ArgoServer]:
    with ArgoServer() as srv:
        monkeypatch.setenv("ARGO_SERVER", srv.url)
        monkeypatch.setenv("ARGO_TOKEN", TOKEN)
        monkeypatch.delenv("ARGO_NAMESPACE", raising=False)
        yield srv


def test_target_from_env() -> None:
    t = sub.target_from_env("xdetox", {"ARGO_SERVER": "argo.example:2746", "ARGO_TOKEN": "Bearer abc"})
    assert t.server == "https://argo.example:2746/" and t.via == "argo-server"
    assert "abc" not in repr(t)
    t = sub.target_from_env("xdetox", {"ARGO_SERVER": "argo:2746", "ARGO_SECURE": "false", "ARGO_NAMESPACE": "ml"})
    assert t.server == "http://argo:2746/" and t.namespace == "ml"
    assert sub.target_from_env("xdetox", {}).via == "kubernetes"


def test_submit_via_argo_server(argo_server: ArgoServer) -> None:
    res = CliRunner().invoke(app, ["argo", "submit", SMOKE, "--cluster-config", CFG, "--no-publish"])
    assert res.exit_code == 0, res.output
    assert "submitted smoke-abcde in namespace xdetox via argo-server" in res.output
    assert TOKEN not in res.output
    (req,) = argo_server.requests
    assert req["method"] == "POST" and req["path"] == "/api/v1/workflows/xdetox"
    assert req["headers"]["Authorization"] == f"Bearer {TOKEN}"
    assert req["headers"]["Content-Type"] == "application/json"
    assert req["body"]["namespace"] == "xdetox"
    # the body is the rendered workflow, unchanged by the round trip through Hera's models
    assert req["body"]["workflow"] == rendered("jobs/smoke.yaml")


def test_submit_error_never_shows_the_token(argo_server: ArgoServer) -> None:
    argo_server.fail_with = 403
    res = CliRunner().invoke(app, ["argo", "submit", SMOKE, "--cluster-config", CFG, "--no-publish"])
    assert res.exit_code == 1
    assert "403" in res.output or "denied" in res.output
    assert TOKEN not in res.output


def test_status_via_argo_server(argo_server: ArgoServer) -> None:
    res = CliRunner().invoke(app, ["argo", "status", "smoke-abcde"])
    assert res.exit_code == 1, res.output  # a failed workflow: non-zero, for scripts
    assert "Failed" in res.output and "5/12" in res.output
    assert "generate-1(0): OOMKilled (exit code 137)" in res.output
    assert "running: score-1(1)" in res.output
    assert argo_server.requests[0]["path"].startswith("/api/v1/workflows/xdetox/smoke-abcde")
    assert TOKEN not in res.output


def test_status_reads_compressed_nodes(argo_server: ArgoServer) -> None:
    res = CliRunner().invoke(app, ["argo", "status", "smoke-packed"])
    assert res.exit_code == 1, res.output
    assert "generate-1(0): OOMKilled (exit code 137)" in res.output
    assert "running: score-1(1)" in res.output


def test_status_nodes_inline_compressed_offloaded_and_broken() -> None:
    inline = sub.status_nodes({"status": WORKFLOW_STATUS})
    assert sorted(inline) == ["n1", "n2", "n3"]
    assert sub.status_nodes({"status": COMPRESSED_STATUS}) == inline
    assert sub.status_nodes({"status": {"phase": "Pending"}}) == {}
    with pytest.raises(sub.SubmitError, match="offloaded.*ARGO_SERVER"):
        sub.status_nodes({"status": {"phase": "Running", "offloadNodeStatusVersion": "fnv:12345"}})
    with pytest.raises(sub.SubmitError, match="compressedNodes: cannot decode"):
        sub.status_nodes({"status": {"compressedNodes": "bm90IGd6aXA="}})  # base64 of "not gzip"


def test_logs_via_argo_server(argo_server: ArgoServer) -> None:
    res = CliRunner().invoke(app, ["argo", "logs", "smoke-abcde"])
    assert res.exit_code == 0, res.output
    assert res.output.splitlines() == ["smoke-abcde-generate-1: step generate: done",
                                       "smoke-abcde-score-2: step score: failed"]
    assert "logOptions.container=main" in argo_server.requests[0]["path"]


def test_submit_publishes_manifests_first(
    argo_server: ArgoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # an S3 endpoint nobody listens on: publishing fails, and then nothing is submitted
    monkeypatch.setenv("XDETOX_S3_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("XDETOX_S3_MAX_ATTEMPTS", "1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    res = CliRunner().invoke(app, ["argo", "submit", SMOKE, "--cluster-config", CFG])
    assert res.exit_code == 1 and "publishing manifests failed" in res.output
    assert argo_server.requests == []


@pytest.mark.s3
def test_submit_publishes_to_s3_then_submits(argo_server: ArgoServer, s3_env: Any, tmp_path: Path) -> None:
    """The default path: manifests go to the (real, loopback SeaweedFS) S3 store, then the POST."""
    from tests.conftest import new_bucket
    from xdetox.plan import plan as make_plan
    from xdetox.spec import load_spec
    from xdetox.store import open_store

    bucket = new_bucket(s3_env)
    cfg = tmp_path / "cluster.yaml"
    cfg.write_text(Path(CFG).read_text().replace("s3://xdetox-runs/xdetox", f"s3://{bucket}/team"))
    res = CliRunner().invoke(app, ["argo", "submit", SMOKE, "--cluster-config", str(cfg)])
    assert res.exit_code == 0, res.output
    p = make_plan(load_spec(SMOKE))
    rs = open_store(f"s3://{bucket}/team").child("runs/smoke")
    assert sorted(k.split("/")[1] for k in rs.list("steps") if k.endswith("/manifest.json")) == \
        sorted(s.key for s in p.steps)
    assert rs.exists("plan.json") and rs.exists("spec.yaml")
    (req,) = argo_server.requests
    params = {x["name"]: x["value"] for x in req["body"]["workflow"]["spec"]["arguments"]["parameters"]}
    assert params["store"] == f"s3://{bucket}/team"
    assert s3_env.secret_key not in res.output


# --------------------------------------------------------------------------- Kubernetes API (kmock)
class KubeAPI:
    """kmock's Kubernetes emulator on a loopback port, in a thread with its own event loop."""

    def __init__(self) -> None:
        self.ready = threading.Event()
        self.handler: Any = None
        self.url = ""

    def _run(self) -> None:
        async def main() -> None:
            self.loop = asyncio.get_running_loop()
            self.stop = asyncio.Event()
            async with kmock.KubernetesEmulator() as handler, kmock.Server(handler) as server:
                handler.resources["v1/pods"] = {}
                handler["get /api/v1/namespaces/xdetox/pods/smoke-abcde-train-1/log"] << b"step train: done\n"
                self.handler, self.url = handler, str(server.url).rstrip("/")
                self.ready.set()
                await self.stop.wait()

        asyncio.run(main())

    def __enter__(self) -> KubeAPI:
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        assert self.ready.wait(20), "kmock did not start"
        return self

    def __exit__(self, *exc: Any) -> None:
        self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join(10)


@pytest.fixture
def kube(monkeypatch: pytest.MonkeyPatch) -> Iterator[KubeAPI]:
    with KubeAPI() as api:
        monkeypatch.delenv("ARGO_SERVER", raising=False)
        monkeypatch.setenv("XDETOX_KUBE_HOST", api.url)
        yield api


def test_submit_status_logs_via_kubernetes_api(kube: KubeAPI) -> None:
    runner = CliRunner()
    res = runner.invoke(app, ["argo", "submit", SMOKE, "--cluster-config", CFG, "--no-publish"])
    assert res.exit_code == 0, res.output
    assert "via kubernetes" in res.output
    creates = [r for r in kube.handler._requests if r.action == kmock.action.CREATE]
    assert len(creates) == 1
    req = creates[0]
    assert str(req.url).endswith("/apis/argoproj.io/v1alpha1/namespaces/xdetox/workflows")
    body = req.data
    name = body["metadata"]["name"]
    assert name.startswith("smoke-") and "generateName" not in body["metadata"]
    want = rendered("jobs/smoke.yaml")
    assert body["spec"] == want["spec"] and body["kind"] == "Workflow"
    # status reads the stored object back
    res = runner.invoke(app, ["argo", "status", name])
    assert res.exit_code == 0, res.output
    assert f"{name}: Pending" in res.output
    # logs: pods of the workflow by label, then each pod's main container log
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {
        "name": "smoke-abcde-train-1", "namespace": "xdetox", "labels": {"workflows.argoproj.io/workflow": name}}}
    import requests

    assert requests.post(f"{kube.url}/api/v1/namespaces/xdetox/pods", json=pod, timeout=10).ok
    res = runner.invoke(app, ["argo", "logs", name])
    assert res.exit_code == 0, res.output
    assert "smoke-abcde-train-1: step train: done" in res.output


def test_kubernetes_api_errors_are_reported(kube: KubeAPI) -> None:
    res = CliRunner().invoke(app, ["argo", "status", "no-such-workflow"])
    assert res.exit_code == 1 and "404" in res.output


def test_bad_cluster_config_exits_2_and_submits_nothing(argo_server: ArgoServer, tmp_path: Path) -> None:
    bad = tmp_path / "cluster.yaml"
    bad.write_text("namespace: xdetox\nroles:\n  scorer-gpu:\n    node_selector: {pool: gpu}\n")
    res = CliRunner().invoke(app, ["argo", "submit", SMOKE, "--cluster-config", str(bad)])
    assert res.exit_code == 2, res.output
    assert "cluster.yaml:3: roles.scorer-gpu: no such role" in res.output.replace("\n", "")
    assert argo_server.requests == []
